#!/usr/bin/python3
"""A test DNS server (python3-dnslib) on a loopback UDP port, for the DNS discovery tests.

Usage: dns_test_server.py PORT ANSWERS_JSON QUERY_LOG

ANSWERS_JSON is re-read on every query, so a test changes the answer by rewriting it:
  {"app.test.": {"a": ["127.0.0.2", "127.0.0.3"], "ttl": 1}}
A name not listed gets NXDOMAIN. Each query appends "<monotonic seconds> <name>" to QUERY_LOG.
Prints "ready" on stdout once the socket is bound.
"""
import json
import socket
import sys
import time

from dnslib import A, AAAA, QTYPE, RCODE, RR, DNSRecord


def main():
    port, answers_path, log_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    print("ready", flush=True)
    while True:
        data, peer = sock.recvfrom(4096)
        try:
            request = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001 - garbage is ignored, as a server would
            continue
        name = str(request.q.qname)
        with open(log_path, "a") as log:
            log.write(f"{time.monotonic():.3f} {name} {QTYPE[request.q.qtype]}\n")
        try:
            with open(answers_path) as f:
                answers = json.load(f)
        except (OSError, ValueError):
            answers = {}
        reply = request.reply()
        entry = answers.get(name.lower())
        if entry is None:
            reply.header.rcode = RCODE.NXDOMAIN
        else:
            ttl = int(entry.get("ttl", 1))
            if request.q.qtype == QTYPE.A:
                for address in entry.get("a", []):
                    reply.add_answer(RR(name, QTYPE.A, rdata=A(address), ttl=ttl))
            elif request.q.qtype == QTYPE.AAAA:
                for address in entry.get("aaaa", []):
                    reply.add_answer(RR(name, QTYPE.AAAA, rdata=AAAA(address), ttl=ttl))
        sock.sendto(reply.pack(), peer)


if __name__ == "__main__":
    main()
