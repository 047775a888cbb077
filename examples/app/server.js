'use strict';
// The Express app of the 502 story: an ordinary Node upstream with Node's default keep-alive
// behaviour (server.keepAliveTimeout 5000 ms, which Node 20 enforces about 1 s late, and a
// `Keep-Alive: timeout=5` hint). A proxy that reuses its idle connections past that age meets a
// FIN or RST on its next request; needle must not.
//
// Environment:
//   PORT                   listen port on 127.0.0.1 (default 3000)
//   KEEP_ALIVE_TIMEOUT_MS  overrides server.keepAliveTimeout (Node's default when unset)
//
// Routes:
//   GET  /hello          "hello\n"
//   POST /orders         JSON body in, 201 {"ok":true,"id":N} out
//   GET|POST|PUT /echo   the request body back, raw, streamed, same Content-Type
//   GET  /slow?ms=N      answers "slow N\n" after N ms
//   GET  /bytes?n=N      N bytes ('x'), with Content-Length
//   GET  /stats          {"connections":N,"requests":M,"open":K}
//
// /stats describes the traffic apart from its own observation: `requests` leaves out /stats
// requests, and `connections` (TCP connections accepted, counted on 'connection') leaves out
// connections that so far carried only /stats requests. `open` is the number open right now.
// One log line per request goes to stdout.

const http = require('http');
const express = require('express');

const port = Number.parseInt(process.env.PORT || '3000', 10);
const keepAliveTimeoutMs = process.env.KEEP_ALIVE_TIMEOUT_MS;

const MAX_SLOW_MS = 10 * 60 * 1000;
const MAX_BYTES = 1024 * 1024 * 1024;
const BYTES_CHUNK = Buffer.alloc(64 * 1024, 'x');

let connectionsAccepted = 0;
let statsOnlyConnections = 0;  // accepted connections whose every request so far was /stats
let openConnections = 0;
let requests = 0;
let nextOrderId = 1;

const app = express();
app.disable('x-powered-by');
app.disable('etag');

// Counting and the access line come first so every route, 404s included, is seen.
app.use((req, res, next) => {
  const socket = req.socket;
  socket.needleRequests += 1;
  if (req.path === '/stats') {
    if (socket.needleRequests === 1) {
      socket.needleStatsOnly = true;
      statsOnlyConnections += 1;
    }
  } else {
    requests += 1;
    if (socket.needleStatsOnly) {
      socket.needleStatsOnly = false;
      statsOnlyConnections -= 1;
    }
  }
  const started = process.hrtime.bigint();
  res.on('finish', () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    console.log(`${new Date().toISOString()} conn=${socket.needleId} req=${socket.needleRequests} ` +
                `${req.method} ${req.originalUrl} ${res.statusCode} ${ms.toFixed(1)}ms`);
  });
  next();
});

app.get('/hello', (req, res) => {
  res.type('text/plain').send('hello\n');
});

app.post('/orders', express.json({ limit: '1mb' }), (req, res) => {
  res.status(201).json({ ok: true, id: nextOrderId++ });
});

function echo(req, res) {
  res.status(200);
  res.setHeader('Content-Type', req.headers['content-type'] || 'application/octet-stream');
  if (req.headers['content-length'] !== undefined) {
    res.setHeader('Content-Length', req.headers['content-length']);
  }
  req.pipe(res);
}
app.get('/echo', echo);
app.post('/echo', echo);
app.put('/echo', echo);

function boundedInt(value, fallback, max) {
  const n = Number.parseInt(value === undefined ? '' : String(value), 10);
  if (!Number.isFinite(n) || n < 0) return fallback;
  return Math.min(n, max);
}

app.get('/slow', (req, res) => {
  const ms = boundedInt(req.query.ms, 1000, MAX_SLOW_MS);
  const timer = setTimeout(() => res.type('text/plain').send(`slow ${ms}\n`), ms);
  res.on('close', () => clearTimeout(timer));
});

app.get('/bytes', (req, res) => {
  let left = boundedInt(req.query.n, 0, MAX_BYTES);
  res.status(200);
  res.setHeader('Content-Type', 'application/octet-stream');
  res.setHeader('Content-Length', String(left));
  if (req.method === 'HEAD') return res.end();
  // Bounded memory: write 64 KiB at a time, waiting for 'drain' when the socket is full.
  const pump = () => {
    while (left > 0) {
      const chunk = left >= BYTES_CHUNK.length ? BYTES_CHUNK : BYTES_CHUNK.subarray(0, left);
      left -= chunk.length;
      if (!res.write(chunk)) return res.once('drain', pump);
    }
    res.end();
  };
  pump();
});

app.get('/stats', (req, res) => {
  res.json({
    connections: connectionsAccepted - statsOnlyConnections,
    requests,
    open: openConnections,
  });
});

const server = http.createServer(app);
if (keepAliveTimeoutMs !== undefined && keepAliveTimeoutMs !== '') {
  const ms = Number.parseInt(keepAliveTimeoutMs, 10);
  if (!Number.isFinite(ms) || ms < 0) {
    console.error(`KEEP_ALIVE_TIMEOUT_MS must be a non-negative integer, got "${keepAliveTimeoutMs}"`);
    process.exit(2);
  }
  server.keepAliveTimeout = ms;
}

server.on('connection', (socket) => {
  connectionsAccepted += 1;
  openConnections += 1;
  socket.needleId = connectionsAccepted;
  socket.needleRequests = 0;
  socket.needleStatsOnly = false;
  socket.on('close', () => {
    openConnections -= 1;
  });
});

server.on('error', (err) => {
  console.error(`listen 127.0.0.1:${port}: ${err.message}`);
  process.exit(1);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`app listening on http://127.0.0.1:${port} keepAliveTimeout=${server.keepAliveTimeout}ms`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
