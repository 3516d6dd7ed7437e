"""What each endpoint says back, as text (SPEC §1).  Pure: strings in, strings out.

The formats are part of the contract and are tested to the character.  This
module builds payloads only; wrapping them in ``websocket.send`` events and
sending them is :mod:`asgi_ws.websocket`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

__all__ = ["broadcast_text", "json_reply", "stream_payloads", "ws_reply"]


def ws_reply(text: str) -> str:
    """``/ws``: text ``t`` is answered with ``Message text was: t``."""
    return f"Message text was: {text}"


def broadcast_text(text: str) -> str:
    """``/ws_broadcast``: what every *other* client receives."""
    return f"New message: {text}"


def json_reply(text: str) -> str:
    """``/ws_json``: the parsed value wrapped, or an error object if ``text`` is not JSON.

    Invalid JSON is an answer, not a close: the connection stays open.
    """
    try:
        value = json.loads(text)
    # JSONDecodeError for bad syntax, RecursionError for "[[[[..." nested past the
    # interpreter's limit: a 64 KiB message can do that.
    except (ValueError, RecursionError) as exc:
        return json.dumps({"error": "invalid_json", "detail": str(exc)})
    # ensure_ascii=False: non-ASCII comes back as itself, not as \\u escapes.
    try:
        return json.dumps({"message": "Received JSON data", "data": value}, ensure_ascii=False)
    except (ValueError, RecursionError) as exc:  # lone surrogates; nesting near the limit
        return json.dumps({"error": "invalid_json", "detail": str(exc)})


def stream_payloads(request: str, count: int) -> Iterator[str]:
    """``/stream``: the ``count`` messages that one request starts, in order.

    If ``request`` is a JSON object with a string ``"message"`` m, message i is
    ``{"message": "m - i", "number": i}``; otherwise it is the text ``i``.
    A generator, so a million-message stream costs one message of memory.
    """
    label = _stream_label(request)
    if label is None:
        for number in range(1, count + 1):
            yield str(number)
    else:
        for number in range(1, count + 1):
            yield json.dumps({"message": f"{label} - {number}", "number": number}, ensure_ascii=False)


def _stream_label(request: str) -> str | None:
    try:
        value = json.loads(request)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        label: str = value["message"]
        return label
    return None
