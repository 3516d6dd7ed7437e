"""uvicorn --http zttp --http2 advertises WebSockets over HTTP/2 (RFC 8441), then serves their CONNECT as HTTP.

Seen with uvicorn 0.55.0, zttp 0.0.35 and h2 4.4.1.  Serve this file's app, then run the file:

    uvicorn --http zttp --http2 uvicorn_http2_rfc8441:app --port 8000
    python uvicorn_http2_rfc8441.py 127.0.0.1 8000

It prints what the server's first SETTINGS say, then sends the extended CONNECT a
browser sends for ``new WebSocket("ws://127.0.0.1:8000/ws")`` once it has seen them,
and prints the answer.  Expected (RFC 8441 §4-5): the app is called with a
``websocket`` scope, accepts, and the stream is answered ``:status 200``.  Got: the
app is called with an ``http`` scope whose method is ``CONNECT`` (it answers 404
with what it saw), so every browser WebSocket to an HTTP/2 page of the server
fails.  Chromium 156 over TLS shows the same: its WebSockets fail, and uvicorn
logs ``"CONNECT /ws HTTP/2" 404``.

The setting comes from zttp's HTTP/2 connection, which advertises it since
Kludex/zttp#277; uvicorn/protocols/http/zttp_h2_impl.py, ``ZttpH2Protocol.handle_request``,
makes an ``http`` scope of every request, ``:protocol`` or not.  Either not
advertising it or mapping ``:protocol: websocket`` to a ``websocket`` scope would fix it.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
    elif scope["type"] == "http":
        body = f"the app got an http scope: {scope['method']} {scope['path']}".encode()
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})


def main(host: str, port: int) -> None:
    sock = socket.create_connection((host, port), timeout=10)
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    sock.sendall(connection.data_to_send())
    request = [
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "http"),
        (":path", "/ws"),
        (":authority", f"{host}:{port}"),
        ("sec-websocket-version", "13"),
    ]
    sent = False
    while True:
        for event in connection.receive_data(sock.recv(65536)):
            if isinstance(event, h2.events.RemoteSettingsChanged) and not sent:
                advertised = connection.remote_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL, 0)
                print(f"SETTINGS_ENABLE_CONNECT_PROTOCOL = {advertised}")
                connection.send_headers(1, request)
                sent = True
            elif isinstance(event, h2.events.ResponseReceived):
                print(f"CONNECT /ws answered {dict(event.headers)[b':status'].decode()}")
            elif isinstance(event, h2.events.DataReceived):
                if event.data:
                    print(event.data.decode())
                connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                sock.close()
                return
        sock.sendall(connection.data_to_send())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 8000)
