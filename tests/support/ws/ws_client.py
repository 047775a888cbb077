#!/usr/bin/python3
"""WebSocket client for needle's tunnel tests (python3-websockets, Debian's 10.x API).

Usage: ws_client.py SCENARIO URL [ARG]. Prints one line per fact the test checks and exits 0
when the scenario went as expected, 1 (with a reason on stderr) when not.

  echo URL            a text and a binary message come back unchanged
  big URL BYTES       one binary message of BYTES bytes comes back unchanged (sha256 compared)
  many URL N FLAG     N tunnels at once, one echo each; prints "opened N", waits until the file
                      FLAG exists, closes them all and prints "closed N"
  hold URL            one echo, prints "connected", then waits (up to 60 s) for the other end
                      to close and prints "closed after MS ms" (echoing a ping every 100 ms while
                      open, so the tunnel is busy unless ARG is "quiet")
"""
import asyncio
import hashlib
import os
import sys
import time

import websockets


def fail(why):
    print(why, file=sys.stderr, flush=True)
    sys.exit(1)


async def echo(url):
    async with websockets.connect(url) as ws:
        await ws.send("hello through needle")
        got = await asyncio.wait_for(ws.recv(), 10)
        if got != "hello through needle":
            fail(f"text echo: got {got!r}")
        payload = bytes(range(256)) * 4
        await ws.send(payload)
        got = await asyncio.wait_for(ws.recv(), 10)
        if got != payload:
            fail(f"binary echo: got {len(got)} bytes of type {type(got).__name__}")
    print("echo ok", flush=True)


async def big(url, size):
    payload = os.urandom(size)
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(payload)
        got = await asyncio.wait_for(ws.recv(), 60)
    if hashlib.sha256(got).digest() != hashlib.sha256(payload).digest():
        fail(f"big echo: {len(got)} bytes came back, not the {size} sent")
    print(f"big ok {size}", flush=True)


async def many(url, n, flag):
    async def one(i):
        ws = await websockets.connect(url, open_timeout=30)
        await ws.send(f"tunnel {i}")
        got = await asyncio.wait_for(ws.recv(), 30)
        if got != f"tunnel {i}":
            fail(f"tunnel {i}: got {got!r}")
        return ws
    conns = []
    # Opened in batches, so the listener's backlog is never the limit being tested.
    for start in range(0, n, 100):
        conns += await asyncio.gather(*(one(i) for i in range(start, min(n, start + 100))))
    print(f"opened {len(conns)}", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(flag):
        if time.monotonic() > deadline:
            fail("the release flag never appeared")
        await asyncio.sleep(0.05)
    await asyncio.gather(*(ws.close() for ws in conns))
    print(f"closed {len(conns)}", flush=True)


async def hold(url, quiet):
    async with websockets.connect(url, ping_interval=None) as ws:
        await ws.send("first")
        if await asyncio.wait_for(ws.recv(), 10) != "first":
            fail("first echo differs")
        print("connected", flush=True)
        start = time.monotonic()
        try:
            while time.monotonic() - start < 60:
                if quiet:
                    await ws.recv()
                else:
                    await ws.send("tick")
                    await asyncio.wait_for(ws.recv(), 10)
                    await asyncio.sleep(0.1)
        except (websockets.ConnectionClosed, ConnectionError, asyncio.TimeoutError):
            pass
        print(f"closed after {int((time.monotonic() - start) * 1000)} ms", flush=True)


def main():
    if len(sys.argv) < 3:
        fail(__doc__)
    scenario, url = sys.argv[1], sys.argv[2]
    if scenario == "echo":
        asyncio.run(echo(url))
    elif scenario == "big":
        asyncio.run(big(url, int(sys.argv[3])))
    elif scenario == "many":
        asyncio.run(many(url, int(sys.argv[3]), sys.argv[4]))
    elif scenario == "hold":
        asyncio.run(hold(url, len(sys.argv) > 3 and sys.argv[3] == "quiet"))
    else:
        fail(f"unknown scenario {scenario}")


if __name__ == "__main__":
    main()
