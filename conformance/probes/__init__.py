"""The server probes (contract §5): how each server implements the raw ASGI WebSocket protocol.

Importing this package registers the probes with :func:`conformance.checks.probe`.
They all run against :mod:`conformance.probe_app`, whose paths each do one
thing the ASGI spec leaves open or servers get wrong, and they record, as
normalised transcripts, what the client saw on the wire and what the app saw.
Comparing the transcripts between servers gives the "ASGI WebSocket server
divergence matrix".

Modules, in the order of a connection's life:

- :mod:`.handshake`: the scope, the request headers line by line, percent-encoded
  paths, refusing before accept, app failures around accept, subprotocols
  (offered or not, on several header lines), accept headers, permessage-deflate,
  a handshake that never ends;
- :mod:`.messages`: receive event shapes, the server's size limit (one frame
  or many), invalid UTF-8;
- :mod:`.closing`: close codes and reasons in both directions;
- :mod:`.lifecycle`: send and receive after a disconnect, keepalive pings,
  SIGTERM with an open socket;
- :mod:`.lifespan`: the lifespan protocol around the connections: startup and
  its spec_version, shutdown at SIGTERM, a startup that fails;
- :mod:`.misuse`: an app that breaks the order or shape of the send events
  (send after its own close, send before accept, a second accept, a send with
  both or neither of text and bytes);
- :mod:`.http2`: WebSockets over HTTP/2 where they have no HTTP/1.1 twin: what
  the server offers, CONNECTs with another protocol or none, multiplexing,
  resets, closes with data queued, deflate, a reader that stops.

:mod:`._support` holds the clients and the views of the wire they share;
what the app saw is read by :mod:`conformance.views`.
"""

from __future__ import annotations

from . import closing, handshake, http2, lifecycle, lifespan, messages, misuse

__all__ = ["closing", "handshake", "http2", "lifecycle", "lifespan", "messages", "misuse"]
