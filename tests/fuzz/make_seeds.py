#!/usr/bin/env python3
# Regenerates tests/fuzz/corpus/{request,response} from tests/corpus (the .http format of
# tests/corpus/README.md, decoded to raw bytes; payloads over 8 KiB are skipped).
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
print("ok")
