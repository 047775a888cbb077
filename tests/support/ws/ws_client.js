// WebSocket client on the `ws` package for needle's tunnel tests (NODE_PATH=examples/app/
// node_modules). Usage: node ws_client.js URL — sends a text and a binary message, checks that
// both come back unchanged (type included), prints "echo ok" and exits 0; exits 1 otherwise.
'use strict';
const WebSocket = require('ws');

const ws = new WebSocket(process.argv[2]);
const text = 'hello from the ws client';
const binary = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 251));
const expected = [[text, false], [binary, true]];
const fail = (why) => {
  console.error(why);
  process.exit(1);
};
setTimeout(() => fail('timed out'), 15000).unref();
ws.on('error', (e) => fail(`error: ${e.message}`));
ws.on('open', () => {
  ws.send(text);
  ws.send(binary);
});
ws.on('message', (data, isBinary) => {
  const [want, wantBinary] = expected.shift();
  if (isBinary !== wantBinary || !Buffer.from(data).equals(Buffer.from(want))) {
    fail(`echo differs: ${data.length} bytes, binary ${isBinary}`);
  }
  if (expected.length === 0) ws.close(1000);
});
ws.on('close', () => {
  if (expected.length !== 0) fail('closed before every echo');
  console.log('echo ok');
  process.exit(0);
});
