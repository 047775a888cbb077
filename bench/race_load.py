#!/usr/bin/env python3
"""Load generator for bench/race.sh: virtual users that hit the keep-alive close race.

Each virtual user (VU) holds one keep-alive client connection to the proxy and sends one
request per round, GET and POST alternating (by VU and round). Rounds alternate between a short
gap (50-300 ms: the proxy's pool is exercised at small idle ages) and a long gap swept across
[close - sweep_before, close + sweep_after] ms, where `close` is the upstream's measured idle
close time: after a round every pooled upstream connection has just been used, so the next
round puts many of them back on the wire at an idle age right at the upstream's timeout.
A round starts when every VU has its previous response, so the gap is the proxy's idle age.

Standard library only. Prints one JSON object with the counts.
"""
import argparse
import http.client
import json
import random
import socket
import sys
import threading
import time


def classify(exc):
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "reset"
    if isinstance(exc, socket.timeout):
        return "timeout"
    if isinstance(exc, (http.client.RemoteDisconnected, http.client.IncompleteRead,
                        http.client.BadStatusLine, ConnectionAbortedError)):
        return "closed"
    return type(exc).__name__


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--vus", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=64)
    ap.add_argument("--close-ms", type=float, required=True, help="upstream idle close, ms")
    ap.add_argument("--sweep-before", type=float, default=20.0)
    ap.add_argument("--sweep-after", type=float, default=8.0)
    ap.add_argument("--get-path", default="/hello")
    ap.add_argument("--post-path", default="/orders")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--label", default="")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    long_rounds = (args.rounds + 1) // 2
    sweep = [args.close_ms - args.sweep_before +
             (args.sweep_before + args.sweep_after) * i / max(1, long_rounds - 1)
             for i in range(long_rounds)]
    rng.shuffle(sweep)
    gaps = []
    for r in range(args.rounds):
        gaps.append(rng.uniform(50, 300) if r % 2 == 0 else sweep[r // 2])

    lock = threading.Lock()
    counts = {"requests": 0, "ok_2xx": 0, "non_2xx": 0, "client_errors": 0}
    statuses = {}
    errors = {}
    failures_by_method = {"GET": 0, "POST": 0}
    round_start = [time.monotonic()]

    def set_round_start():
        round_start[0] = time.monotonic()

    barrier = threading.Barrier(args.vus, action=set_round_start)
    body = json.dumps({"item": "needle", "qty": 1})

    def vu(index):
        conn = None
        for r in range(args.rounds):
            barrier.wait()
            target = round_start[0] + gaps[r] / 1000.0
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=10)
            method = "POST" if (index + r) % 2 else "GET"
            outcome = None
            try:
                if method == "POST":
                    conn.request("POST", args.post_path, body=body,
                                 headers={"Content-Type": "application/json"})
                else:
                    conn.request("GET", args.get_path)
                resp = conn.getresponse()
                resp.read()
                outcome = resp.status
                if resp.will_close:
                    conn.close()
                    conn = None
            except Exception as exc:  # any failure to get a whole response
                outcome = classify(exc)
                try:
                    conn.close()
                except Exception:
                    pass
                conn = None
            with lock:
                counts["requests"] += 1
                if isinstance(outcome, int):
                    statuses[outcome] = statuses.get(outcome, 0) + 1
                    if 200 <= outcome < 300:
                        counts["ok_2xx"] += 1
                    else:
                        counts["non_2xx"] += 1
                        failures_by_method[method] += 1
                else:
                    counts["client_errors"] += 1
                    errors[outcome] = errors.get(outcome, 0) + 1
                    failures_by_method[method] += 1
        if conn is not None:
            conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=vu, args=(i,), daemon=True) for i in range(args.vus)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = dict(counts)
    out.update({"label": args.label, "statuses": {str(k): v for k, v in sorted(statuses.items())},
                "errors": errors, "failed_get": failures_by_method["GET"],
                "failed_post": failures_by_method["POST"],
                "seconds": round(time.monotonic() - started, 1)})
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
