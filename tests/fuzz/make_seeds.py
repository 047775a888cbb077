#!/usr/bin/env python3
# Regenerates tests/fuzz/corpus/{request,response,session} from tests/corpus (the .http format of
# tests/corpus/README.md, decoded to raw bytes; payloads over 8 KiB are skipped) and from the
# whole-session scenarios below (fuzz_session's input format, see fuzz_session.cc).
# Usage: python3 tests/fuzz/make_seeds.py [repo root]
import os, re, sys, hashlib
root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")
def decode(s):
    s = s.replace("\n", "")
    out = bytearray(); i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode("latin-1") if ord(c) < 256 else c.encode(); i += 1; continue
        e = s[i+1]
        if e in "rnt\\]": out += {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\", "]": b"]"}[e]; i += 2
        elif e == "x": out.append(int(s[i+2:i+4], 16)); i += 4
        elif e == "|": i += 2
        elif e == "[":
            colon = s.index(":", i); n = int(s[i+2:colon]); j = colon + 1
            while not (s[j] == "]" and s[j-1] != "\\"): j += 1
            out += decode(s[colon+1:j]) * n; i = j + 1
        else: raise ValueError(e)
    return bytes(out)
def payload(path):
    text = open(path, encoding="utf-8").read()
    lines = text.split("\n"); k = 0
    while k < len(lines) and lines[k].strip(): k += 1
    return decode("\n".join(lines[k+1:]))
for sub, target in (("requests", "request"), ("responses", "response")):
    d = os.path.join(root, "tests/corpus", sub)
    outd = os.path.join(root, "tests/fuzz/corpus", target)
    os.makedirs(outd, exist_ok=True)
    for f in sorted(os.listdir(d)):
        data = payload(os.path.join(d, f))
        if len(data) > 8192: continue  # keep the seed corpus small; the limit cases are in the test
        open(os.path.join(outd, f[:-5]), "wb").write(data)

# fuzz_session: <client bytes>[\n#upstream#\n<response>[\n#next#\n<response>...]]
UP, NEXT = b"\n#upstream#\n", b"\n#next#\n"
GET = b"GET /case HTTP/1.1\r\nHost: a.test\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
scenarios = {
    "s01-get": GET,
    "s02-pipelined-three": GET * 3,
    "s03-keepalive-two-responses": GET * 2 + UP + OK + NEXT + b"HTTP/1.1 204 No Content\r\n\r\n",
    "s04-head": b"HEAD / HTTP/1.1\r\nHost: a.test\r\n\r\n" + UP +
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
    "s05-post-cl": b"POST /orders HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello",
    "s06-post-chunked": b"POST /orders HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n" + UP +
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    "s07-expect-continue": b"PUT /x HTTP/1.1\r\nHost: a.test\r\nExpect: 100-continue\r\n"
        b"Content-Length: 3\r\n\r\nabc",
    "s08-streamed-body": b"POST /big HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3000\r\n\r\n" +
        b"x" * 3000,
    "s09-streamed-chunked": b"POST /big HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"800\r\n" + b"y" * 2048 + b"\r\n0\r\n\r\n",
    "s10-upstream-closes-mid-body": GET + UP + b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
    "s11-upstream-close-delimited": GET + UP + b"HTTP/1.1 200 OK\r\n\r\nuntil close",
    "s12-upstream-garbage-then-retry": GET + UP + b"garbage\r\n\r\n" + NEXT + OK,
    "s13-upstream-none-then-ok": GET + UP + NEXT + OK,
    "s14-upstream-interim": GET + UP + b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK,
    "s15-upstream-extra-response": GET + UP + OK + OK,
    "s16-connection-close": b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n" + GET,
    "s17-http10-keepalive": b"GET / HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\n\r\n" +
        GET + UP + b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok" + NEXT + OK,
    "s18-no-route": b"GET /none HTTP/1.1\r\nHost: other.test\r\n\r\n" + GET,
    "s19-bad-then-good": b"GET / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + GET,
    "s20-upstream-5xx": GET + UP + b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
    "s21-upstream-304-with-cl": GET + UP + b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n" +
        NEXT + OK,
    "s22-absolute-form": b"GET http://a.test/x?y=1 HTTP/1.1\r\nHost: a.test\r\n\r\n",
    "s23-keepalive-hint": GET * 2 + UP + b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\n"
        b"Content-Length: 0\r\n\r\n" + NEXT + OK,
    "s24-idempotency-key": b"POST /p HTTP/1.1\r\nHost: a.test\r\nIdempotency-Key: k1\r\n"
        b"Content-Length: 2\r\n\r\nhi" + UP + NEXT + OK,
    "s25-trailers": b"POST /t HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1\r\na\r\n0\r\nX-Sum: 1\r\n\r\n" + UP +
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\nX-T: 2\r\n\r\n",
}
outd = os.path.join(root, "tests/fuzz/corpus/session")
os.makedirs(outd, exist_ok=True)
for name, data in scenarios.items():
    open(os.path.join(outd, name), "wb").write(data)
# Every request case against the default upstream, every response case after a GET.
for f in sorted(os.listdir(os.path.join(root, "tests/corpus/requests"))):
    data = payload(os.path.join(root, "tests/corpus/requests", f))
    if len(data) <= 8192: open(os.path.join(outd, "q-" + f[:-5]), "wb").write(data)
for f in sorted(os.listdir(os.path.join(root, "tests/corpus/responses"))):
    data = payload(os.path.join(root, "tests/corpus/responses", f))
    if len(data) <= 8192: open(os.path.join(outd, "p-" + f[:-5]), "wb").write(GET + UP + data)
print("ok")
