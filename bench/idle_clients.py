#!/usr/bin/env python3
"""Holds N idle keep-alive client connections to 127.0.0.1:PORT for bench/memory.sh.

Each connection sends one GET and reads its whole response (Content-Length), then stays open
and silent. At most --batch connections are being set up at once. When all are set up it
prints "ready OK FAILED" and then answers commands on stdin, one a line:
  check   prints "open K": how many of the OK connections the server has not closed
  quit    (or end of input, or --hold seconds without a command) closes them all and exits
Standard library only (selectors). The whole set-up is bounded by --timeout.
"""
import argparse
import selectors
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--path", default="/12b")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--timeout", type=float, default=300.0, help="set-up bound, seconds")
    ap.add_argument("--hold", type=float, default=300.0, help="longest wait for a command")
    args = ap.parse_args()

    request = f"GET {args.path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    idle = []
    failed = 0
    started = 0
    in_flight = 0
    deadline = time.monotonic() + args.timeout

    def start_one():
        nonlocal started, in_flight, failed
        started += 1
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", args.port))
        except BlockingIOError:
            pass
        except OSError:
            failed += 1
            s.close()
            return
        sel.register(s, selectors.EVENT_WRITE, [b""])
        in_flight += 1

    def finish(s, ok):
        nonlocal in_flight, failed
        sel.unregister(s)
        in_flight -= 1
        if ok:
            idle.append(s)
        else:
            failed += 1
            s.close()

    while started < args.connections or in_flight:
        if time.monotonic() > deadline:
            print(f"idle_clients: set-up timed out with {in_flight} in flight", file=sys.stderr)
            break
        while started < args.connections and in_flight < args.batch:
            start_one()
        for key, events in sel.select(timeout=1.0):
            s, state = key.fileobj, key.data
            if events & selectors.EVENT_WRITE:
                try:
                    s.send(request)  # a few dozen bytes: one send on a fresh socket
                except OSError:
                    finish(s, False)
                    continue
                sel.modify(s, selectors.EVENT_READ, state)
                continue
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                finish(s, False)
                continue
            state[0] += data
            buf = state[0]
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                continue
            length = 0
            for line in buf[:head_end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(buf) >= head_end + 4 + length:
                finish(s, buf.startswith(b"HTTP/1.1 200"))

    print(f"ready {len(idle)} {failed}", flush=True)
    check = selectors.DefaultSelector()
    for s in idle:
        check.register(s, selectors.EVENT_READ)
    stdin = selectors.DefaultSelector()
    stdin.register(sys.stdin, selectors.EVENT_READ)
    while stdin.select(timeout=args.hold):
        line = sys.stdin.readline()
        if not line or line.strip() == "quit":
            break
        if line.strip() == "check":
            closed = len(check.select(timeout=0))  # readable while idle = EOF or reset
            print(f"open {len(idle) - closed}", flush=True)
    for s in idle:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
