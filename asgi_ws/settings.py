"""The one typed settings object, and where its values come from (contract §3).

Every policy knob lives on :class:`Settings`.  Each field can be set from an
``ASGI_WS_*`` environment variable and from a ``--flag`` of ``asgi-ws serve``;
the flag wins.  A value that does not parse fails at startup with
:class:`SettingsError`, whose message names the variable or flag and the bad
value, so nothing runs half-configured.

This module owns parsing and validation.  It does not apply the settings: the
app reads them once, when it is built (``asgi_ws.app.create_app``).

Why the defaults:

- ``max_message_size`` 64 KiB is below every supported server's own limit
  (uvicorn and hypercorn default to 16 MiB), so the app, not the server, decides
  what "too big" means and answers it the same way everywhere: close 4413.
- ``rate_limit`` 100/s with a burst of 200 is well above what a person typing
  or a UI sends, and well below what one client needs to starve others.
- ``idle_timeout`` 300 s: five minutes with no message in either direction
  means the client has gone quiet for good.  Dead peers are found sooner by the
  servers' own keepalive pings, which the app never sees.
- ``outbox_size`` 1024 messages lets a healthy client absorb a burst of a
  thousand broadcasts; beyond that it is not reading and is closed with 4503.
- ``outbox_bytes`` 1 MiB of queued payload, whichever bound comes first: 1024
  messages of up to 64 KiB would otherwise be 64 MiB held for one client that
  is not reading.  Centrifugo closes a slow reader at the same default
  (``client.queue_max_size``, formerly ``client_queue_max_size``: 1048576
  bytes since v3, 10 MiB in v1; centrifugal.dev server configuration).
- ``max_pending_pushes`` 4: a ``/stream`` request sent while a push runs waits
  its turn, and four waiting is more than a client that reads its pushes ever
  needs.  Each waiting request costs its text in a queue, no task; the next one
  closes the connection with 4429 ``too many requests``.  0 refuses any request
  made while a push runs.
- ``history_size`` 1000 messages per feed room and ``history_ttl`` 300 s after
  the room's last message: a client that reconnects within five minutes, or
  after missing fewer than a thousand messages, gets everything it missed.
  Five minutes matches ``idle_timeout``, the longest a live client may be
  silent.
- ``history_bytes`` 64 MiB: the memory broker's budget for all feed rooms
  together (text plus a fixed cost per message and per room).  A thousand
  full rooms of 64-byte chat lines fit in it many times over; a client that
  fills rooms with 64 KiB messages evicts the oldest messages first instead
  of growing the process.  Redis keeps its own history, trimmed per room by
  ``history_size`` and expired by ``history_ttl``.
- ``dedupe_window`` 120 s: a feed publish with an id is numbered once, and a
  resend of that id within the window is acked with the first one's number.
  Two minutes is NATS JetStream's default ``duplicate_window``; a client
  resends within seconds of reconnecting.
- ``dedupe_ids`` 100,000: the memory broker's bound on ids remembered for all
  rooms together, about 40 MB at most (384 bytes each).  Past it the oldest
  are forgotten early.  Redis expires each id after the window on its own.
- ``presence_ttl`` 30 s: with the Redis broker, the members of a process that
  died leave the other processes' rooms within this.  Each process refreshes
  its entries every 10 s, so a live process is never taken for dead by a
  hiccup shorter than 10 s; Phoenix's presence tracker waits about as long
  (``down_period``, 30 s) before it counts a node as gone.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = ["DEFAULTS", "ENV_PREFIX", "Settings", "SettingsError", "add_arguments"]

ENV_PREFIX = "ASGI_WS_"

_LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
LOG_FORMATS = ("text", "json")  # key=value lines, or one JSON object per line


class SettingsError(ValueError):
    """A setting has a value that cannot be used.  The message names both."""


# Parsers: raw string in, typed value out, or ValueError saying what was expected.


def _integer_from(minimum: int, expected: str) -> Callable[[str], int]:
    """A parser of integers no smaller than ``minimum``; ``expected`` says so when one is not."""

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(expected) from None
        if value < minimum:
            raise ValueError(expected)
        return value

    return parse


_positive_int = _integer_from(1, "expected a positive integer")
_non_negative_int = _integer_from(0, "expected an integer >= 0")


def _non_negative_float(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("expected a number >= 0 (0 turns it off)") from None
    if not value >= 0 or value == float("inf"):  # also rejects NaN
        raise ValueError("expected a number >= 0 (0 turns it off)")
    return value


def _positive_float(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("expected a number > 0") from None
    if not 0 < value < float("inf"):  # also rejects NaN
        raise ValueError("expected a number > 0")
    return value


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(_normalise_origin(part) for part in raw.split(",") if part.strip())
    for origin in origins:
        if origin != "*" and "://" not in origin:
            raise ValueError(f"expected origins like https://example.com or *, got {origin!r}")
    return origins


def _normalise_origin(origin: str) -> str:
    """Origins compare case-insensitively and without a trailing slash."""
    return origin.strip().rstrip("/").lower()


def _broker(raw: str) -> str:
    url = raw.strip()
    expected = "expected memory:// or redis://host:port/db (rediss:// for TLS)"
    parts = urlsplit(url)
    if url == "memory://":
        return url
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(expected)
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise ValueError(f"{expected}: the port is not a number from 0 to 65535") from None
    if parts.path.strip("/") and not parts.path.strip("/").isdigit():
        raise ValueError(f"{expected}: the database must be a number, not {parts.path.strip('/')!r}")
    return url


def _log_format(raw: str) -> str:
    log_format = raw.strip().lower()
    if log_format not in LOG_FORMATS:
        raise ValueError(f"expected one of {', '.join(LOG_FORMATS)}")
    return log_format


def _log_level(raw: str) -> str:
    level = raw.strip().lower()
    if level not in _LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(_LOG_LEVELS)}")
    return level


def _switch(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise ValueError("expected 1 or 0 (also true/false, yes/no, on/off)")


# RFC 7518 §3.2: an HS256 key must be at least as long as the hash, 256 bits.
_MIN_SECRET_BYTES = 32


def _token_secret(raw: str) -> str:
    if raw and len(raw.encode()) < _MIN_SECRET_BYTES:
        raise ValueError(f"expected at least {_MIN_SECRET_BYTES} bytes: an HS256 key is 256 bits or more (RFC 7518)")
    if raw:
        try:
            import jwt  # noqa: F401 - only a secret needs it: tokens are an extra
        except ImportError:
            raise ValueError("access tokens need PyJWT: pip install 'asgi-ws[tokens]'") from None
    return raw


def _setting(default: Any, parse: Callable[[str], Any], help: str, *, secret: bool = False) -> Any:
    """A dataclass field that also knows how to parse itself and how to explain itself.

    A ``secret`` is left out of the repr and shown as ``***`` in errors, so that no log carries it.
    """
    return field(default=default, repr=not secret, metadata={"parse": parse, "help": help, "secret": secret})


@dataclass(frozen=True, slots=True)
class Settings:
    """Every policy of contract §3, typed and validated.  Immutable once built."""

    allowed_origins: tuple[str, ...] = _setting(
        (), _origins, "comma-separated extra origins allowed to connect; * allows any"
    )
    max_message_size: int = _setting(64 * 1024, _positive_int, "largest message accepted, in bytes")
    rate_limit: float = _setting(100.0, _non_negative_float, "messages per second per connection; 0 turns it off")
    rate_burst: int = _setting(200, _positive_int, "messages a connection may send at once before the rate applies")
    idle_timeout: float = _setting(300.0, _non_negative_float, "seconds without a message either way; 0 turns it off")
    max_connections: int = _setting(10_000, _positive_int, "open WebSocket connections per process")
    outbox_size: int = _setting(1024, _positive_int, "messages queued for one client before it counts as slow")
    outbox_bytes: int = _setting(
        1024 * 1024, _positive_int, "payload bytes queued for one client before it counts as slow"
    )
    max_pending_pushes: int = _setting(
        4, _non_negative_int, "/stream requests that may wait behind a running push; 0 refuses them all"
    )
    history_size: int = _setting(1000, _positive_int, "messages kept per feed room for clients that resume")
    history_ttl: float = _setting(
        300.0, _positive_float, "seconds a feed room's history is kept after its last message"
    )
    history_bytes: int = _setting(
        64 * 1024 * 1024, _positive_int, "bytes of feed history for all rooms together (memory broker)"
    )
    dedupe_window: float = _setting(
        120.0, _positive_float, "seconds a feed publish id is remembered: a resend within it is acked, not numbered"
    )
    dedupe_ids: int = _setting(
        100_000, _positive_int, "publish ids remembered for all feed rooms together (memory broker)"
    )
    presence_ttl: float = _setting(
        30.0, _positive_float, "seconds within which a dead process's room members leave (Redis broker)"
    )
    broker: str = _setting(
        "memory://", _broker, "where rooms and broadcast run: memory:// (one process) or redis://host:port/db"
    )
    log_level: str = _setting("info", _log_level, f"one of {', '.join(_LOG_LEVELS)}")
    log_format: str = _setting("text", _log_format, "text (key=value) or json, one line per event")
    token_secret: str = _setting(
        "",
        _token_secret,
        "the HS256 secret of access tokens; set, chat, feed and broadcast need ?token= (empty: no tokens)",
        secret=True,
    )
    token_all: bool = _setting(False, _switch, "1: every WebSocket endpoint needs a token, not only the rooms")

    def __post_init__(self) -> None:
        # Values built in code (tests, create_app(Settings(...))) pass the same checks
        # as strings from the environment, through the same parsers, and are kept as
        # the parsers normalise them: Settings(allowed_origins=("https://App.example.com/",))
        # must allow the same origins as ASGI_WS_ALLOWED_ORIGINS=https://App.example.com/.
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            raw = ",".join(value) if isinstance(value, tuple) else str(value)
            try:
                normalised = spec.metadata["parse"](raw)
            except ValueError as exc:
                shown = "***" if spec.metadata["secret"] else repr(value)
                raise SettingsError(f"{spec.name} = {shown}: {exc}") from None
            object.__setattr__(self, spec.name, normalised)  # frozen: the one place it is set

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``ASGI_WS_*`` variables, defaults for the rest."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            name = env_name(spec.name)
            if name in environ:
                values[spec.name] = _parse(spec, environ[name], source=name)
        return cls(**values)

    @classmethod
    def from_sources(cls, args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
        """Environment first, then every ``--flag`` given on the command line on top."""
        settings = cls.from_env(environ)
        overrides: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            raw = getattr(args, spec.name, None)
            if raw is not None:
                overrides[spec.name] = _parse(spec, raw, source=flag_name(spec.name))
        return dataclasses.replace(settings, **overrides)

    def to_env(self) -> dict[str, str]:
        """The ``ASGI_WS_*`` variables that rebuild these settings in another process.

        ``asgi-ws serve`` uses this to hand its flags to server worker processes,
        which import ``asgi_ws.app:app`` and so read the environment.
        """
        env = {}
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, bool):
                value = int(value)  # "1" or "0", as a person would set it
            env[env_name(spec.name)] = str(value)
        return env

    @property
    def python_log_level(self) -> int:
        """``log_level`` as the number the ``logging`` module uses."""
        level: int = getattr(logging, self.log_level.upper())
        return level


def env_name(field_name: str) -> str:
    """``max_message_size`` -> ``ASGI_WS_MAX_MESSAGE_SIZE``."""
    return ENV_PREFIX + field_name.upper()


def flag_name(field_name: str) -> str:
    """``max_message_size`` -> ``--max-message-size``."""
    return "--" + field_name.replace("_", "-")


def _parse(spec: dataclasses.Field[Any], raw: str, *, source: str) -> Any:
    try:
        return spec.metadata["parse"](raw)
    except ValueError as exc:
        shown = "***" if spec.metadata["secret"] else repr(raw)
        raise SettingsError(f"{source}={shown}: {exc}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one ``--flag`` per setting.  Unset flags stay ``None`` so the environment shows through."""
    group = parser.add_argument_group("app settings (each also read from its ASGI_WS_* variable)")
    for spec in dataclasses.fields(Settings):
        default = spec.default
        shown = ",".join(default) if isinstance(default, tuple) else default
        if spec.metadata["secret"]:
            continue  # a flag would show it in ps and in shell history: the environment only
        group.add_argument(
            flag_name(spec.name),
            dest=spec.name,
            metavar=env_name(spec.name).removeprefix(ENV_PREFIX),
            default=None,
            help=f"{spec.metadata['help']} (env {env_name(spec.name)}, default {shown!r})",
        )


# Every setting at its default: what parts built without a Settings (a broker in a test) use.
DEFAULTS = Settings()
