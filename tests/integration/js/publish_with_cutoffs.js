// Drives asgi_ws/static/feed.js under Node against a running server (tests/integration/test_feed_js.py).
//
//   node publish_with_cutoffs.js FEED_URL COUNT CUTOFFS
//
// A reader follows the room from the start. A sender publishes COUNT messages with feed.js,
// and CUTOFFS times, at random points, its connection is cut with no close frame (ws's
// terminate(): the socket is destroyed) right after a publish: half the time at once, half the
// time once the server has numbered it and its ack is lost on the way. feed.js
// reconnects and resends what has no ack. Once every publish is acked and the reader has as many
// messages as the room's top offset, one line of JSON goes to stdout: what the reader got, and
// what the sender saw. Node 20 has no WebSocket of its own: npm's ws (Debian's node-ws) serves.
"use strict";

const path = require("path");
const WebSocket = require("ws");
const { FeedClient } = require(path.join(__dirname, "..", "..", "..", "asgi_ws", "static", "feed.js"));

const [url, count, cutoffs] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const PATIENCE_MS = 60000;

function until(condition, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      if (condition()) {
        clearInterval(poll);
        resolve();
      } else if (Date.now() - started > PATIENCE_MS) {
        clearInterval(poll);
        reject(new Error("still waiting after " + PATIENCE_MS + " ms for " + what));
      }
    }, 5);
  });
}

async function main() {
  const read = [];
  const reader = new FeedClient(url, { WebSocket, onMessage: (message) => read.push(message) });
  let opened = 0;
  reader.on.state = (state) => { if (state === "open") opened += 1; };
  reader.start();
  await until(() => opened === 1, "the reader to connect");

  const acks = [];
  let sender_opens = 0;
  const sender = new FeedClient(url, {
    WebSocket,
    baseMs: 20,
    capMs: 200,
    onAck: (ack) => acks.push(ack),
    onState: (state) => { if (state === "open") sender_opens += 1; },
  });
  sender.start();
  await until(() => sender_opens === 1, "the sender to connect");

  const cutAt = new Set();
  while (cutAt.size < cutoffs) cutAt.add(1 + Math.floor(Math.random() * count));
  let cut = 0;
  const open = () => sender.socket !== null && sender.socket.readyState === WebSocket.OPEN;
  for (let number = 1; number <= count; number += 1) {
    if (cutAt.has(number)) await until(open, "the sender to reconnect before the next cut-off");
    sender.publish("m" + number);
    if (cutAt.has(number)) {
      // Either the publish is cut off on its way (at once), or the server numbers it and the
      // ack is lost: the socket stops handing messages to the client, and is cut a moment later.
      // The resend of the second kind is the one a server without ids would number twice.
      if (cut % 2 === 1) {
        sender.socket.onmessage = () => {};
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      sender.socket.terminate();
      cut += 1;
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await until(() => sender.unacked.size === 0, "every publish to be acked");
  const top = Math.max(...acks.map((ack) => ack.offset));
  await until(() => read.length >= top, "the reader to have every numbered message");
  sender.stop();
  reader.stop();
  process.stdout.write(JSON.stringify({
    read: read.map((message) => ({ offset: message.offset, data: message.data })),
    acks: acks.length,
    acked_ids: new Set(acks.map((ack) => ack.ack)).size,
    cutoffs: cut,
    sender_connections: sender_opens,
  }) + "\n");
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack || error) + "\n");
  process.exit(1);
});
