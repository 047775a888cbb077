#!/usr/bin/env python3
"""A bounded keep-alive HTTP/1.1 load: exactly --requests GETs over --connections connections.

Each connection sends one request at a time (no pipelining) and reads the whole response
(Content-Length or chunked) before the next. Standard library only (selectors), one thread,
so the request count is exact and the run ends by itself: a connection that errors is counted
and not replaced, and --timeout bounds the whole run. Prints one JSON object:
{"requests": N ok or not, "ok": 2xx count, "non_2xx": ..., "errors": ..., "seconds": ...}.
Exit status 1 if any request failed.
"""
import argparse
import json
import selectors
import socket
import sys
import time


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.pending = b""

    def response_end(self):
        """Index just past the first complete response in buf, or -1; the status code."""
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return -1, 0
        head = self.buf[:head_end].decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        length = None
        chunked = False
        for line in head[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        pos = head_end + 4
        if not chunked:
            end = pos + (length or 0)
            return (end if len(self.buf) >= end else -1), status
        while True:  # chunked: walk chunk sizes
            eol = self.buf.find(b"\r\n", pos)
            if eol < 0:
                return -1, status
            size = int(self.buf[pos:eol].split(b";")[0], 16)
            pos = eol + 2
            if size == 0:
                trailer_end = self.buf.find(b"\r\n\r\n", pos - 2)
                return (trailer_end + 4 if trailer_end >= 0 else -1), status
            pos += size + 2
            if pos > len(self.buf):
                return -1, status


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/12b")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--timeout", type=float, default=600.0, help="whole run, seconds")
    args = ap.parse_args()

    request = f"GET {args.path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    counts = {"requests": 0, "ok": 0, "non_2xx": 0, "errors": 0}
    issued = 0
    started = time.monotonic()
    deadline = started + args.timeout

    def send_next(conn):
        nonlocal issued
        if issued >= args.requests:
            sel.unregister(conn.sock)
            conn.sock.close()
            return
        issued += 1
        conn.sock.sendall(request)

    for _ in range(min(args.connections, args.requests)):
        s = socket.create_connection(("127.0.0.1", args.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        conn = Conn(s)
        sel.register(s, selectors.EVENT_READ, conn)
        s.setblocking(True)
        send_next(conn)
        s.setblocking(False)

    while sel.get_map():
        if time.monotonic() > deadline:
            print("http_load: timeout", file=sys.stderr)
            break
        for key, _ in sel.select(timeout=1.0):
            conn = key.data
            try:
                data = conn.sock.recv(262144)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                counts["requests"] += 1
                counts["errors"] += 1
                sel.unregister(conn.sock)
                conn.sock.close()
                continue
            conn.buf += data
            end, status = conn.response_end()
            if end < 0:
                continue
            conn.buf = conn.buf[end:]
            counts["requests"] += 1
            counts["ok" if 200 <= status < 300 else "non_2xx"] += 1
            conn.sock.setblocking(True)
            send_next(conn)
            if conn.sock.fileno() >= 0:
                conn.sock.setblocking(False)
    counts["seconds"] = round(time.monotonic() - started, 3)
    print(json.dumps(counts))
    return 0 if counts["ok"] == args.requests else 1


if __name__ == "__main__":
    sys.exit(main())
