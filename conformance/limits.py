"""What the conformance run cannot promise: the checks that race, and what no check covers.

A check whose outcome depends on timing registers with ``racy="..."``, saying
what races and how the check still gives one transcript whichever way the race
goes (it records a coarse boolean, tolerates both outcomes, or waits the race
out).  :data:`NOT_TESTED` lists what no check covers.  Both go into the report's
"Honest limits" section.
"""

from __future__ import annotations

from .checks import CHECKS, Check

__all__ = ["NOT_TESTED", "racy_checks"]

NOT_TESTED: tuple[str, ...] = (
    "TLS over HTTP/1.1 (`wss://`): the HTTP/1.1 columns run every server on plain TCP on 127.0.0.1; TLS comes "
    "in with the HTTP/2 columns and probes, and `tests/integration/test_tls.py` serves `/healthz` and an echo "
    "over TLS under every server.",
    "HTTP/2 without TLS (h2c, prior knowledge): the matrix's HTTP/2 column is TLS with ALPN h2, as browsers use "
    "it; `--transports h2c` runs the scenarios over h2c, and `tests/integration/test_h2.py` checks what each "
    "server offers there. HTTP/3 (RFC 9220) is not driven.",
    "Over HTTP/2, the scenarios that write their own frames over TCP (`http1_only`): they run over HTTP/1.1 only.",
    "IPv6 and Unix-socket listeners.",
    "Servers behind a proxy: `X-Forwarded-*` and proxy-headers handling in the scope.",
    "Multi-worker servers in the matrix: every check runs one worker process (the integration tests cover "
    "`--workers 2` with Redis apart).",
    "Permessage-deflate beyond the handshake: compressed frames are negotiated by some servers but the echo "
    "checks send uncompressed frames; Autobahn's cases 12 and 13 are run as a sample only.",
    "Long-running behaviour: memory growth over hours and keepalive over minutes (see bench/SOAK.md for soaks).",
    "Server timers longer than a check can wait: daphne closes every WebSocket one day after it opened, however "
    "active (daphne 4.2.3, daphne/ws_protocol.py, WebSocketProtocol.check_timeouts: serverClose() once "
    "duration() passes websocket_timeout, 86400 s by default in daphne/server.py, Server.__init__, checked every "
    "2 s by Server.timeout_checker). Probing it with a shorter --websocket_timeout would test the flag, not the "
    "default, so no check does; an app under daphne should expect that close and a client reconnect.",
    "Load: the checks use at most a few hundred connections; bench/ measures throughput and bench/soak.py 10,000 "
    "connections.",
    "Every Python version: the published matrix comes from one interpreter (the line at the top); tox runs the "
    "integration tests on 3.11, 3.12 and 3.13 under uvicorn and hypercorn.",
)


def racy_checks() -> list[Check]:
    """The registered checks that declare a race, in registration order."""
    return [check for check in CHECKS.values() if check.racy is not None]
