// A client for asgi-ws feed rooms (docs/feed.md, contract §8): it loses nothing and doubles nothing.
//
// - Resume: it keeps the epoch and offset of the last message it saw, and reconnects with
//   ?since=EPOCH:OFFSET after every close it did not ask for, so the server replays what it missed.
// - Ids and acks: publish() sends {"id": ID, "data": text} and keeps the text until the server's
//   {"ack": ID, ...} comes back. After every reconnect it sends again, with the same ids, whatever
//   has no ack yet: the server numbers an id once (contract §8.1), so nothing is doubled.
// - Backoff: the wait before each reconnect is random, up to a ceiling that doubles from baseMs
//   to capMs ("full jitter"), so that clients of a server that restarts do not all come back at
//   once. It starts again from baseMs once a connection opens.
//
// No dependencies. In a browser it is the global FeedClient (<script src="/feed.js">); in Node,
// require("./feed.js").FeedClient, given a WebSocket class (Node 22's global, or npm's ws).
(function (root) {
  "use strict";

  class FeedClient {
    // url: ws://host/ws/feed/ROOM. options: token (an access token, contract §10), presence (true:
    // ?presence=1), WebSocket (the class to use; the global one by default), baseMs, capMs, and the
    // callbacks onMessage(message), onResume(control), onAck(ack), onEvent(event) for presence
    // events, and onState(state, detail): "connecting" and "open" with the address, "closed" with
    // {code, reason, retryIn}, the milliseconds until it reconnects (null once stopped).
    constructor(url, options = {}) {
      this.url = url;
      this.token = options.token || null;
      this.presence = Boolean(options.presence);
      this.WebSocket = options.WebSocket || root.WebSocket;
      this.baseMs = options.baseMs ?? 250;
      this.capMs = options.capMs ?? 5000;
      this.on = {
        message: options.onMessage || (() => {}),
        resume: options.onResume || (() => {}),
        ack: options.onAck || (() => {}),
        event: options.onEvent || (() => {}),
        state: options.onState || (() => {}),
      };
      this.epoch = null;        // the last message seen: its epoch (null: none yet, connect live) ...
      this.offset = 0;          // ... and its offset
      this.unacked = new Map(); // id -> text, in the order they were published: resent until acked
      this.socket = null;       // the open (or opening) connection, if any
      this.attempt = 0;         // reconnects since a connection last opened
      this.stopped = true;      // stop() was called: no reconnect
      this.timer = null;        // the pending reconnect
      this.replay = null;       // the resume in progress: {top, count}
      this.prefix = Math.random().toString(36).slice(2, 10);  // this client's ids: PREFIX-1, PREFIX-2, ...
      this.counter = 0;
    }

    start() {
      this.stopped = false;
      this.connect();
    }

    stop() {
      this.stopped = true;
      clearTimeout(this.timer);
      if (this.socket) this.socket.close(1000);
      this.socket = null;
    }

    // Send `text` to the room, once: its id is returned, and kept until its ack comes.
    publish(text) {
      this.counter += 1;
      const id = this.prefix + "-" + this.counter;
      this.unacked.set(id, text);
      this.sendPublish(id, text);
      return id;
    }

    sendPublish(id, text) {
      const socket = this.socket;
      if (socket && socket.readyState === 1) socket.send(JSON.stringify({ id, data: text }));  // 1: OPEN
    }

    address() {
      const query = [];
      if (this.epoch) query.push("since=" + this.epoch + ":" + this.offset);
      if (this.presence) query.push("presence=1");
      if (this.token) query.push("token=" + encodeURIComponent(this.token));
      return this.url + (query.length ? "?" + query.join("&") : "");
    }

    connect() {
      clearTimeout(this.timer);
      const socket = new this.WebSocket(this.address());
      this.socket = socket;
      this.replay = null;
      this.on.state("connecting", this.address());
      socket.onopen = () => {
        this.attempt = 0;
        this.on.state("open", this.address());
        for (const [id, text] of this.unacked) this.sendPublish(id, text);  // the same ids: never doubled
      };
      socket.onmessage = (event) => this.receive(JSON.parse(event.data));
      socket.onclose = (event) => {
        if (this.socket !== socket) return;  // one this client replaced or stopped
        this.socket = null;
        const retryIn = this.stopped ? null : this.reconnectLater();
        this.on.state("closed", { code: event.code, reason: event.reason, retryIn });
      };
    }

    // Reconnect after a random wait up to the doubled ceiling ("full jitter"); the wait, in ms.
    reconnectLater() {
      const ceiling = Math.min(this.capMs, this.baseMs * 2 ** this.attempt);
      const delay = Math.round(Math.random() * ceiling);
      this.attempt += 1;
      this.timer = setTimeout(() => this.connect(), delay);
      return delay;
    }

    receive(message) {
      if ("recovered" in message) {  // a resume's first message; the missed ones follow
        if (!message.recovered) this.offset = message.offset;  // gone: go on from the room's newest
        this.epoch = message.epoch;
        this.replay = message.recovered ? { top: message.offset, count: 0 } : null;
        this.on.resume(message);
      } else if ("ack" in message) {
        this.unacked.delete(message.ack);
        this.on.ack(message);
      } else if ("offset" in message) {
        if (this.replay && message.offset <= this.replay.top) this.replay.count += 1;
        this.epoch = message.epoch;
        this.offset = message.offset;
        this.on.message(message);
      } else {  // {"presence": [...]}, {"join": S}, {"leave": S}
        this.on.event(message);
      }
    }
  }

  if (typeof module === "object" && module.exports) module.exports = { FeedClient };
  else root.FeedClient = FeedClient;
})(typeof globalThis !== "undefined" ? globalThis : this);
