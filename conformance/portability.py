"""The portability guide: what an ASGI app must do to behave the same under every server.

Each rule is backed by checks whose outcomes (rows of the report's "What each
server does" table) show what goes wrong when an app relies on one server's
behaviour.  The report prints each rule with those rows and the servers that
depart in them, so a rule whose proof no longer holds can be seen at once.
asgi-ws follows every rule; the code comments at each place say which.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RULES", "Rule"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of the guide."""

    rule: str  # the rule, imperative, one line
    why: str  # one or two sentences: what differs between servers
    checks: tuple[str, ...]  # the checks whose outcome rows prove it


RULES: tuple[Rule, ...] = (
    Rule(
        "Always send `websocket.close` before returning after accept.",
        "An app that returns or raises leaves the ending to the server, and each server ends differently: "
        "no close frame, 1011, a close frame with no code, or (daphne, after a return) the socket left open.",
        ("probe-return-after-accept", "probe-raise-after-accept"),
    ),
    Rule(
        "Close with 1000 or a code from 3000 to 4999 only.",
        "Other codes the RFC allows an endpoint to send (1001, 1008, 1011) are refused by some servers, and the "
        "codes it forbids on the wire (1005, 1006, 1015, below 1000, 5000 and up) are passed on, rewritten or "
        "refused, each server its own way.",
        (
            "probe-app-close-code-1001",
            "probe-app-close-code-1011",
            "probe-app-close-code-1005",
            "probe-app-close-code-999",
        ),
    ),
    Rule(
        "Keep close reasons to 123 bytes of UTF-8, and do not rely on them arriving.",
        "A longer reason does not fit in a close frame; servers cut it, refuse it, fail, or (pyvoy) send a close "
        "frame longer than the RFC allows. Some servers drop the reason altogether.",
        ("probe-app-close-long-reason", "probe-app-close-code-reason"),
    ),
    Rule(
        "Do not use empty messages.",
        "daphne never sends an empty text or binary message the app sends, though it delivers the empty "
        "messages a client sends to the app.",
        ("echo-empty-messages", "probe-send-shapes"),
    ),
    Rule(
        "Read `text` and `bytes` with `message.get(key) is not None`.",
        "Servers differ on whether the key that is not used is absent or None.",
        ("probe-receive-shapes",),
    ),
    Rule(
        "Do not wait for an exception from `send()` to learn that the client is gone, and do not take one "
        "as proof that it is.",
        "After a disconnect, servers raise different exceptions (their own, OSError, RuntimeError), or return "
        "as if the message had been sent. And an exception can come while the socket is still open: daphne's "
        "`websocket.close` with 1001 (or 1008, 1011) raises and sends nothing, so an app that takes that for a "
        "disconnect and returns leaves the client connected.",
        ("probe-send-after-disconnect-unseen", "probe-send-after-disconnect-seen", "probe-app-close-code-1001"),
    ),
    Rule(
        "Never call `receive()` again after `websocket.disconnect`.",
        "The reference answers once more and then never; some servers answer with another disconnect every "
        "time, others never answer. Two servers cancel an app left waiting, and the others let it wait on: "
        "daphne 10 s after the disconnect (daphne/server.py, Server.application_checker), gunicorn 3 s after "
        "the TCP connection ends (gunicorn/asgi/protocol.py, ASGIProtocol.connection_lost). Return once "
        "the disconnect has come, and expect a `CancelledError` if you do not.",
        ("probe-receive-after-disconnect", "probe-receive-after-disconnect-repeated"),
    ),
    Rule(
        "Do not rely on the code in `websocket.disconnect`.",
        "Some servers report a client's clean close as 1006, or pass no reason on (a non-ASCII one included), "
        "and a connection that ends without a close frame, by a reset or a FIN, is 1005 on some servers, 1006 "
        "on others, and never told at all under pyvoy. A malformed close frame from the client is told as 1002 "
        "by most servers, as 1006 by some, and as the client's own invalid code (999) by gunicorn.",
        (
            "probe-client-close-code-reason",
            "probe-client-close-no-code",
            "probe-client-close-non-ascii-reason",
            "echo-reset-after-message",
            "probe-client-fin-no-close",
            "probe-client-close-malformed-999",
        ),
    ),
    Rule(
        "Refuse a handshake with `websocket.http.response` only where the scope's extensions list it, and send "
        "its body in one message; otherwise send `websocket.close` before accept.",
        "Servers without the extension turn every refusal into a 403, whatever the app meant. granian lists the "
        "extension, but a body sent in several chunks raises RuntimeError on the first and only the last "
        "reaches the client.",
        ("probe-denial-response", "probe-close-before-accept"),
    ),
    Rule(
        "Send nothing before `websocket.accept`, nothing after `websocket.close`, and accept once.",
        "Out-of-order events raise a different exception on each server (RuntimeError, "
        "UnexpectedMessageError, ValueError, AttributeError), and some servers return silently and drop the "
        "message.",
        ("probe-send-before-accept", "probe-send-after-close", "probe-accept-twice"),
    ),
    Rule(
        "Send exactly one of `text` and `bytes`, the other absent.",
        "An event with both, or with neither, is sent, dropped or refused with a different exception on each server.",
        ("probe-invalid-send-shapes",),
    ),
    Rule(
        'Accept only a subprotocol from `scope["subprotocols"]`.',
        "Accepting one the client did not offer gives a 101 that the client must refuse on some servers, an "
        "exception and no response on others, and a hung handshake on one.",
        ("probe-subprotocol-not-offered", "probe-subprotocol-two-lines"),
    ),
    Rule(
        "Answer `websocket.connect` promptly.",
        "A server may end an unanswered handshake after 5 s (daphne) or 10 s (uvicorn's legacy websockets "
        "implementation), or wait for ever; and an accept that comes after the server gave up still returns "
        "without an error: only the next `receive()` says the client has gone.",
        ("probe-accept-never", "probe-late-accept"),
    ),
    Rule(
        "Put nothing required in accept headers.",
        "Some servers drop the headers an app passes with `websocket.accept`.",
        ("probe-accept-headers", "probe-accept-set-cookie"),
    ),
    Rule(
        "Enforce your own message-size limit, below every server's.",
        "daphne refuses a message over 1 MiB and the others one over 16 MiB, except that granian's and pyvoy's "
        "16 MiB is a limit per frame: a message sent in smaller fragments reaches the app up to 64 MiB. The "
        "client is told "
        "in different ways, and a client that writes a whole oversized frame before reading has its writes "
        "reset by most servers: only if it still reads after that does it get the close frame.",
        (
            "probe-size-1mib-plus-1",
            "probe-size-16mib-plus-1",
            "probe-size-fragmented-16mib-plus-1",
            "probe-size-fragmented-64mib-plus-1",
        ),
    ),
    Rule(
        "Set keepalive on the server's command line, and close idle connections in the app.",
        "Servers ping at different intervals by default, and some not at all.",
        ("probe-keepalive-server-default", "probe-keepalive-default"),
    ),
    Rule(
        "Expect the server, not the app, to choose the close code at shutdown, and its timing.",
        "On SIGTERM servers close open sockets with 1012, 1011 or no close frame at all; gunicorn keeps them "
        "open, and goes on running, for its 30 s graceful timeout.",
        ("probe-sigterm", "shutdown-idle-sockets"),
    ),
    Rule(
        "Do not rely on `send()` to slow you down when a client reads slowly: bound what you queue yourself. "
        "Nor on leaving `receive()` uncalled to slow a client that writes too fast: close it instead.",
        "Most servers make `send()` wait while the client's socket is full, so a slow client is noticed; "
        "daphne buffers every message without limit and `send()` returns at once. The other way round, every "
        "server but daphne stops reading from a client whose messages the app has not taken; daphne reads on "
        "into a queue with no bound, so only closing the connection stops it.",
        ("slow-consumer-4503", "slow-consumer-late-reader", "probe-receive-backpressure"),
    ),
    Rule(
        "Read the scope defensively: `.get()` with a default for every key the spec calls optional, and "
        "headers as a list in which a name may repeat, in any order, or be missing.",
        "`asgi.spec_version` is 2.5, 2.4, 2.3 or absent (daphne, whose scope also lacks `http_version`, "
        "`scheme`, `extensions` and `state`). Repeated header lines come as sent, joined into one (daphne) or "
        "gathered at the first one's place (granian, pyvoy); a name with an underscore is dropped by daphne and "
        "gunicorn, and uvicorn's wsproto implementation leaves the extensions and subprotocol lines out. From "
        "two `Sec-WebSocket-Protocol` lines `subprotocols` holds every offer, the first line's only (gunicorn) "
        "or the last line's (hypercorn, anycorn).",
        ("probe-scope", "probe-header-fidelity", "probe-subprotocol-two-lines"),
    ),
    Rule(
        "After refusing a handshake with `websocket.close` before accept, return.",
        "The `receive()` after a refusal gets a disconnect with 1006, 1000 or 1005, or (pyvoy) nothing at all; "
        "and granian sends its 403 only when the app returns, so an app that goes on working keeps the client "
        "waiting for its answer.",
        ("probe-after-refusal-receive", "probe-after-refusal-return-late"),
    ),
    Rule(
        "Do not depend on the lifespan protocol running once, or at all.",
        "daphne never calls it (and serves an app whose startup would have failed), hypercorn's trio worker "
        "in one process sends no `lifespan.shutdown`, and pyvoy starts it twice in one process. Where it runs, "
        "a failed startup stops the server, with exit code 3 or 1.",
        ("probe-lifespan", "probe-lifespan-startup-failed"),
    ),
)
