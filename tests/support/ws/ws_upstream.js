// WebSocket upstream for needle's tunnel tests, on the `ws` package (examples/app's dev
// dependency; run with NODE_PATH=examples/app/node_modules). Usage: node ws_upstream.js PORT
// Paths: /echo echoes every message (text stays text, binary stays binary); /hello sends
// "hello" right after the handshake; /refuse answers the upgrade with 400; /close-mid closes
// the TCP connection after the first message. Any other plain request: 200 "plain <path>".
// GET /stats: {"upgrades": n, "open": n} (tunnel sockets seen and still open).
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
let upgrades = 0;
let open = 0;

const server = http.createServer((req, res) => {
  if (req.url === '/stats') {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ upgrades, open }));
    return;
  }
  res.setHeader('Content-Type', 'text/plain');
  res.end(`plain ${req.url}\n`);
});
const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 * 1024 });

server.on('upgrade', (req, socket, head) => {
  ++upgrades;
  ++open;
  socket.on('close', () => --open);
  if (req.url === '/refuse') {
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n' +
               'Connection: close\r\n\r\nrefused\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (req.url === '/hello') ws.send('hello');
    ws.on('message', (data, isBinary) => {
      if (req.url === '/close-mid') {
        socket.destroy();
        return;
      }
      ws.send(data, { binary: isBinary });
    });
  });
});

server.listen(port, '127.0.0.1', () => console.log(`ws upstream listening ${port}`));
process.on('SIGTERM', () => process.exit(0));
