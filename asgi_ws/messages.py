"""What each endpoint says back (contract §1).  Pure: strings in, strings and events out.

The formats are part of the contract and are tested to the character.  This
module builds the payloads, and the ``websocket.send`` events that carry them
(:func:`text_event`, :func:`bytes_event`), the one place such an event is
written; sending them is :mod:`asgi_ws.session`.

JSON here is strict RFC 8259 in both directions:

- ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON.  Python's ``json``
  accepts and writes them by default, and a browser's ``JSON.parse`` then fails
  on the reply, so they are refused on the way in (``invalid_json``) and can
  never be written on the way out.
- ``"\\ud800"`` *is* valid JSON, but decodes to a lone surrogate, which has no
  UTF-8 encoding, so a text frame cannot carry it raw.  A reply that holds one is
  written with ``\\u`` escapes instead (``ensure_ascii``), which is still the
  same JSON value.  Everything else non-ASCII is sent as itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asgiref.typing import WebSocketSendEvent

__all__ = ["broadcast_text", "bytes_event", "from_text", "json_reply", "stream_payloads", "text_event", "ws_reply"]


def text_event(text: str) -> WebSocketSendEvent:
    """The ``websocket.send`` event of a text message: exactly one of ``text`` and ``bytes`` is not None."""
    return {"type": "websocket.send", "bytes": None, "text": text}


def bytes_event(data: bytes) -> WebSocketSendEvent:
    """The ``websocket.send`` event of a binary message."""
    return {"type": "websocket.send", "bytes": data, "text": None}


def ws_reply(text: str) -> str:
    """``/ws``: text ``t`` is answered with ``Message text was: t``."""
    return f"Message text was: {text}"


def broadcast_text(text: str) -> str:
    """``/ws_broadcast``: what every *other* client receives."""
    return f"New message: {text}"


def from_text(sender: str | None, text: str) -> str:
    """A chat or broadcast text as its room receives it: as it is, or, with access tokens, with who sent it.

    ``{"from": SUBJECT, "data": text}``, the subject taken from the sender's
    token, never from the client (contract §8.2).
    """
    return text if sender is None else dump_json({"from": sender, "data": text})


def json_reply(text: str) -> str:
    """``/ws_json``: the parsed value wrapped, or an error object if ``text`` is not JSON.

    Invalid JSON is an answer, not a close: the connection stays open.
    """
    try:
        value = parse_json(text)
    # JSONDecodeError (a ValueError) for bad syntax, RecursionError for "[[[[..."
    # nested past the interpreter's limit: a 64 KiB message can do that.
    except (ValueError, RecursionError) as exc:
        return dump_json({"error": "invalid_json", "detail": str(exc)})
    try:
        return dump_json({"message": "Received JSON data", "data": value})
    # ValueError: a number like 1e999 parses to inf, which JSON cannot write back.
    # RecursionError: nesting just under the limit, plus our wrapper.
    except (ValueError, RecursionError) as exc:
        return dump_json({"error": "invalid_json", "detail": str(exc)})


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
        ascii_only = not _utf8_safe(label)  # decided once, not per message
        for number in range(1, count + 1):
            message = {"message": f"{label} - {number}", "number": number}
            yield (_ASCII if ascii_only else _UTF8).encode(message)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# Made once: ``json.loads`` and ``json.dumps`` build a new decoder or encoder on every call that
# passes an option, which was a fifth of a JSON echo's cost in the app.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
_UTF8 = json.JSONEncoder(ensure_ascii=False, allow_nan=False)
_ASCII = json.JSONEncoder(allow_nan=False)


def parse_json(text: str) -> Any:
    """``json.loads``, refusing the ``NaN`` and ``Infinity`` that RFC 8259 does not allow."""
    if text.startswith("\ufeff"):  # as json.loads says it
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _DECODER.decode(text)


def dump_json(value: Any) -> str:
    """Compact-enough JSON that a text frame can carry: non-ASCII as itself unless it can't be."""
    encoded = _UTF8.encode(value)
    return encoded if _utf8_safe(encoded) else _ASCII.encode(value)


def _utf8_safe(text: str) -> bool:
    """True unless ``text`` holds a lone surrogate, the one thing UTF-8 cannot encode."""
    if text.isascii():  # the common case, and much cheaper than encoding
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _stream_label(request: str) -> str | None:
    try:
        value = parse_json(request)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        label: str = value["message"]
        return label
    return None
