#!/usr/bin/python3
"""HTTP/1.1 keep-alive upstreams on several loopback addresses with one port, for the DNS
discovery tests (each resolved address is a host of its own).

Usage: http_test_upstreams.py PORT ADDRESS...
Every GET is answered 200 with the header "X-Upstream: ADDRESS" and body "ADDRESS\n".
Prints "ready" on stdout once every address listens.
"""
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's naming
        body = (self.server.server_address[0] + "\n").encode()
        self.send_response(200)
        self.send_header("X-Upstream", self.server.server_address[0])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1])
    servers = []
    for address in sys.argv[2:]:
        server = ThreadingHTTPServer((address, port), Handler)
        server.daemon_threads = True
        servers.append(server)
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
