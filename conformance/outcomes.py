"""What each server actually does: the behaviour-by-server table, in a few words per cell.

The matrices say *whether* a server departs from the reference; this table
says *what it does*, so that "the reason key is missing" and "the socket is
left open forever" do not look alike.  Each :class:`Behaviour` names one check,
what the ASGI spec (2.5) or RFC 6455 says, which side of the transcript it
describes, and a function that turns the check's recorded transcript into a
few words.  The cells are generated from the transcripts of the run, never
written by hand; a cell that departs from the reference links to the entry
that explains it, and carries a severity of its own (:meth:`Behaviour.severity`); the
row's severity is its worst cell's.

The describing functions read the views that :mod:`conformance.probes._support`,
:mod:`conformance.scenarios.helpers` and :mod:`conformance.views` record.  They
are written to never raise: a shape they do not know reads as "?", which a test catches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .checks import Transcript
from .launcher import STOP_GRACE
from .runner import SERVER_EXITED
from .verdicts import Cell, Divergence, Side, cells_by_check

REFERENCE = "uvicorn"  # the server whose words every other cell is compared with

__all__ = ["BEHAVIOURS", "Behaviour", "OutcomeRow", "ServerOutcome", "cell_words", "outcome_rows"]

Severity = Literal["cosmetic", "app-visible", "client-visible", "crash or hang"]
SEVERITIES: tuple[Severity, ...] = ("cosmetic", "app-visible", "client-visible", "crash or hang")  # mildest first
SERVER_DIED = "the server process exits"  # the words of a cell whose check ended the whole server
# Words a describer uses for something that never ends (a socket left open, a call that never returns),
# and for a server that died.
HANG_WORDS = ("left open", "blocks", "still running", "did not finish", "never returned", SERVER_DIED)
# Words an app-side describer adds for what the client then sees on the wire.
WIRE_WORDS = ("a frame follows the close", "the message still goes out", "the message is lost")
Describe = Callable[[Transcript], str]


# Words for the views that transcripts are made of


def ending(view: Any) -> str:
    """How a connection ended, from a closing view: "1011", "1000 'bye'", "no close frame", "left open"."""
    if not isinstance(view, Mapping):
        return "?"
    if "status" in view and view.get("status") != 101:
        return handshake(view)
    if "then" in view:
        return ending(view["then"])
    if "protocol_error" in view:
        return "invalid close frame"
    close = view.get("close")
    end = view.get("end")
    if close is None:
        return "left open ≥ 5 s" if end == "still open" else "no close frame"
    words = close_words(close)
    return f"{words}, TCP left open" if end == "still open" else words


def close_words(close: Any) -> str:
    """A close frame's code and reason: "1000", "4001 'client reason'", "close, no code"."""
    if close == "eof without close frame":
        return "no close frame"
    if close == "still open":
        return "left open"
    if not isinstance(close, Mapping):
        return "?"
    code = close.get("code")
    words = "close, no code" if code is None else str(code)
    reason = close.get("reason")
    if reason and close.get("reason_bytes", 0) > 30:
        words += f", {close['reason_bytes']}-byte reason"
    elif reason:
        words += f" '{_short(reason)}'"
    return words


def _short(text: str) -> str:
    return text if len(text) <= 16 else text[:14] + "…"


def handshake(view: Any) -> str:
    """A handshake response: "101", "403", "no response", "closed at once"."""
    if not isinstance(view, Mapping):
        return "?"
    status = view.get("status")
    if status is not None:
        return str(status)
    failure = view.get("failure", "?")
    if failure == "closed without a response":
        return "TCP closed, no response" if view.get("at once", True) else "TCP closed after a delay"
    return str(failure)


def disconnect(app: Any) -> str:
    """The code and reason of the app's ``websocket.disconnect``: "1000", "1006, no reason", "4001 'bye'"."""
    if not isinstance(app, Mapping):
        return "?"
    events = [app.get("disconnect"), *(app.get("received") or [])]
    for event in events:
        if isinstance(event, Mapping) and event.get("type", "websocket.disconnect") == "websocket.disconnect":
            if "code" not in event:
                continue  # a shape summary ({"keys": ...}), not the event itself
            words = str(event["code"])
            if event.get("reason"):
                words += f" '{_short(event['reason'])}'"
            elif "reason" not in event:
                words += ", no reason"
            return words
    return "no disconnect"


def raised(value: Any, silent: str = "returns") -> str:
    """An exception name as "raises X", or ``silent`` when none was raised."""
    return silent if value in (None, "", False) else f"raises {value}"


def at(path: Sequence[str], describe: Callable[[Any], str]) -> Describe:
    """A describer of the value found at ``path`` in the transcript."""

    def words(transcript: Transcript) -> str:
        value: Any = transcript
        for key in path:
            if not isinstance(value, Mapping) or key not in value:
                return "?"
            value = value[key]
        return describe(value)

    return words


# The table


@dataclass(frozen=True, slots=True)
class Behaviour:
    """One row of the table: a behaviour, the check that shows it, and how to describe what happened."""

    title: str  # the behaviour, a few words
    check: str  # the check whose transcripts the cells come from
    spec: str  # what the ASGI spec or RFC 6455 says, a few words
    # How far a departure in this row reaches at least: "cosmetic", or the side it shows on.
    # A departing cell that hangs where the reference does not is worse (see severity()).
    reaches: Severity
    describe: Describe  # transcript -> a few words

    @property
    def side(self) -> Side:
        """The side of the transcript the words describe: the app's for app-visible rows, else the client's."""
        return "app" if self.reaches == "app-visible" else "client"

    def severity(self, words: str, reference: str) -> Severity:
        """How far a cell reading ``words`` reaches, where the reference's cell reads ``reference``.

        "crash or hang" when the cell says something never ends and the
        reference's does not; "client-visible" when it says what the client
        then sees on the wire (an app-side row); otherwise what any departure
        in this row reaches.
        """
        if any(word in words and word not in reference for word in HANG_WORDS):
            return "crash or hang"
        if self.reaches == "app-visible" and any(word in words for word in WIRE_WORDS):
            return "client-visible"
        return self.reaches


@dataclass(frozen=True, slots=True)
class ServerOutcome:
    """One cell: what the server did, and the entry that explains it where it departs from the reference."""

    words: str
    departs: bool  # the words differ from the reference's
    explained_by: Divergence | None = None  # the entry that explains the departure
    severity: Severity | None = None  # how far the departure reaches; None where the cell does not depart


@dataclass(slots=True)
class OutcomeRow:
    """A row as the report shows it."""

    title: str
    check: str
    spec: str
    cells: dict[str, ServerOutcome] = field(default_factory=dict)  # by server

    @property
    def severity(self) -> Severity | None:
        """The worst severity of the row's departing cells; None where every server does what the reference does."""
        found = [cell.severity for cell in self.cells.values() if cell.severity is not None]
        return max(found, key=SEVERITIES.index) if found else None

    @property
    def anchor(self) -> str:
        """The id of this row in the Markdown report, for links from the portability guide."""
        return "o-" + "".join(char if char.isalnum() else "-" for char in self.title.lower()).strip("-")

    def departing(self) -> list[str]:
        """The servers that do something other than the reference does."""
        return [server for server, cell in self.cells.items() if cell.departs]

    def to_json(self) -> dict[str, Any]:
        return {
            "behaviour": self.title,
            "anchor": self.anchor,
            "check": self.check,
            "spec": self.spec,
            "severity": self.severity,
            "servers": {
                server: {
                    "outcome": cell.words,
                    "departs": cell.departs,
                    "severity": cell.severity,
                    "explained_by": cell.explained_by.anchor if cell.explained_by else None,
                }
                for server, cell in self.cells.items()
            },
        }


def outcome_rows(cells: Iterable[Cell], servers: Sequence[str]) -> list[OutcomeRow]:
    """The table for this run: one row per behaviour whose check ran, cells in ``servers`` order."""
    table = cells_by_check(cells)
    rows = []
    for behaviour in BEHAVIOURS:
        by_server = table.get(behaviour.check)
        if not by_server:
            continue
        row = OutcomeRow(behaviour.title, behaviour.check, behaviour.spec)
        reference = by_server.get(REFERENCE)
        expected = cell_words(behaviour, reference) if reference is not None else None
        for server in servers:
            cell = by_server.get(server)
            if cell is None:
                continue
            words = cell_words(behaviour, cell)
            if expected is None or words == expected:
                row.cells[server] = ServerOutcome(words, departs=False)
                continue
            explanation = cell.explanation(behaviour.side) or cell.divergence
            row.cells[server] = ServerOutcome(words, True, explanation, behaviour.severity(words, expected))
        rows.append(row)
    return rows


def cell_words(behaviour: Behaviour, cell: Cell) -> str:
    """What ``cell`` shows in ``behaviour``'s row: its transcript described, or why there is none."""
    if cell.observed is None:
        return SERVER_DIED if (cell.error or "").startswith(SERVER_EXITED) else "did not finish"
    try:
        return behaviour.describe(cell.observed)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError):
        return "?"


# Describers of particular checks


def _app_ended(transcript: Transcript) -> str:
    return ending(transcript.get("client"))


def _refused(transcript: Transcript) -> str:
    client = transcript.get("client", {})
    words = handshake(client)
    if client.get("status") not in (None, 101) and client.get("body"):
        words += " with a body"
    return words


def _denial(transcript: Transcript) -> str:
    app = transcript.get("app", {})
    probe = app.get("probe", {})
    words = _refused(transcript)
    if probe.get("advertised") is False:
        return f"not advertised; {words}"
    client = transcript.get("client", {})
    if client.get("body") and client.get("body") != "denied: two chunks":
        words += f" '{_short(client['body'])}' only"
    failed = [error for error in probe.get("send_raised", []) if error]
    if failed:
        words += f"; a body chunk raises {failed[0]}"
    return words


def _app_closed(transcript: Transcript) -> str:
    words = ending(transcript.get("client"))
    failure = transcript.get("app", {}).get("close_raised")
    return f"close() raises {failure}; {words}" if failure else words


def _after_own_close(transcript: Transcript) -> str:
    app = transcript.get("app", {})
    if app.get("then_receive", {}).get("timed out"):
        return "receive() blocks ≥ 5 s"
    return disconnect(app)


def _told_app(transcript: Transcript) -> str:
    return disconnect(transcript.get("app"))


def _reply_to_client_close(transcript: Transcript) -> str:
    return ending(transcript.get("client"))


def _send_after_disconnect(transcript: Transcript) -> str:
    words = raised(transcript.get("app", {}).get("send_raised"))
    if transcript.get("client", {}).get("messages"):
        words += "; the message still goes out"
    return words


def _receive_after_disconnect(transcript: Transcript) -> str:
    then = transcript.get("app", {}).get("then_receive", {})
    if then.get("timed out"):
        return "blocks ≥ 5 s"
    return "another disconnect" if then.get("returned", {}).get("type") == "websocket.disconnect" else "?"


def _receive_shape(transcript: Transcript) -> str:
    keys = transcript.get("app received", {}).get("text", {}).get("shape", {}).get("keys", {})
    if not keys:
        return "?"
    return "unused key None" if "bytes" in keys else "unused key absent"


def _send_shapes(transcript: Transcript) -> str:
    messages = transcript.get("client", {}).get("messages", [])
    empties = sum(1 for message in messages if 0 in message.values())
    failures = [error for error in transcript.get("app", {}).get("send_raised", []) if error]
    if failures:
        return f"raises {failures[0]}"
    return "empty messages sent" if empties == 2 else "empty messages dropped"


def _accept_headers(transcript: Transcript) -> str:
    return "sent" if transcript.get("x-probe") else "dropped"


def _deflate(transcript: Transcript) -> str:
    header = transcript.get("sec-websocket-extensions")
    if not header:
        return "not negotiated"
    bits = [part.strip() for part in header.split(";")[1:]]
    return "negotiated" + (f" ({', '.join(bits)})" if bits else "")


def _size(transcript: Transcript) -> str:
    words = "delivered" if transcript.get("delivered") else "refused: " + ending(transcript.get("client"))
    first = transcript.get("a client that writes it all before reading")
    return words if first is None else f"{words}; {_written_first(first)}"


def _written_first(view: Mapping[str, Any]) -> str:
    """What a client that writes the whole message before reading sees: "writing first: reset, then 1009"."""
    if "handshake" in view:
        return f"writing first: handshake {view['handshake']}"
    read = view.get("then read")
    then = close_words(read) if isinstance(read, Mapping) else str(read).removeprefix("nothing: ")
    reset = view.get("write") == "reset by the server"
    return f"writing first: reset, then {then}" if reset else f"writing first: {then}"


def _invalid_utf8(transcript: Transcript) -> str:
    return f"{ending(transcript.get('client'))}; app told {disconnect(transcript.get('app'))}"


def _keepalive(transcript: Transcript) -> str:
    windows = [(key, value) for key, value in transcript.items() if key.startswith("pinged within")]
    for key, value in sorted(windows, key=lambda item: float(item[0].split()[2])):
        if value:
            return "pings " + key.removeprefix("pinged ")
    return "no ping " + (windows[-1][0].removeprefix("pinged ") if windows else "?")


def _slowloris(transcript: Transcript) -> str:
    ended = next((value for key, value in transcript.items() if key.startswith("ended by the server")), None)
    return "ends it ≤ 8 s" if ended else "waits ≥ 8 s"


def exit_words(exit_code: Any, closed_first: bool) -> str:
    """How the server process ended after SIGTERM.

    An exit code of -15 means the process ended by the signal, which happens
    two ways: a server that shuts down gracefully and then re-raises the signal
    (uvicorn), and one that never handles it, so the signal kills it where it
    stands (hypercorn's trio worker with ``--workers 0``).  ``closed_first``
    (the client got a close frame, or the app its lifespan shutdown, before
    the exit) tells them apart.
    """
    if exit_code in (None, "did not exit"):
        return f"still running {STOP_GRACE:g} s later"  # RunningServer.terminate waits this long
    if exit_code == -15:
        return "SIGTERM re-raised after shutting down" if closed_first else "killed at once by SIGTERM"
    return f"exit {exit_code}"


def _sigterm(transcript: Transcript) -> str:
    client = transcript.get("client", {})
    server = transcript.get("server", {})
    exit_code = server.get("exit code") if server.get("exited", True) else None
    closed_first = isinstance(client, Mapping) and isinstance(client.get("close"), Mapping)
    return f"{ending(client)}; {exit_words(exit_code, closed_first)}"


def _spec_version(transcript: Transcript) -> str:
    scope = transcript.get("app saw", {})
    if not isinstance(scope, Mapping):
        return "?"
    return str(scope.get("scope", {}).get("asgi", {}).get("spec_version", "absent"))


def _shutdown(transcript: Transcript) -> str:
    clients = transcript.get("clients", {})
    first = next(iter(clients.values()), None)
    server = transcript.get("server", {})
    words = f"{close_words(first)}; {exit_words(server.get('exit code'), isinstance(first, Mapping))}"
    return words + ("; traceback logged" if server.get("traceback in log") else "")


def _unknown_path(transcript: Transcript) -> str:
    answer = transcript.get("/nope", {})
    return f"{answer.get('status')}" + (f" '{answer['body']}'" if answer.get("body") else ", no body")


def _slow_consumer(transcript: Transcript) -> str:
    stalled = transcript.get("stalled", {})
    close = stalled.get("close")
    words = "not closed" if close == "still open" else close_words(close)
    if stalled.get("read the whole flood"):
        words += "; the whole flood delivered"
    return words


def _policy_close(transcript: Transcript) -> str:
    return close_words(transcript.get("text", {}).get("one byte more", {}).get("close"))


def _empty_echo(transcript: Transcript) -> str:
    frames = transcript.get("client", {}).get("frames", [])
    return "echoed" if any(value == "" for frame in frames for value in frame.values()) else "dropped"


def _clean_close_app(transcript: Transcript) -> str:
    return disconnect(transcript.get("app"))


def step(outcome: Any) -> str:
    """One ``send()`` as the probe app recorded it: "returns", "raises TypeError", "blocks"."""
    if not isinstance(outcome, Mapping):
        return "?"
    if "raised" in outcome:
        return f"raises {outcome['raised']}"
    if outcome.get("timed out"):
        return "blocks"
    return "returns" if outcome.get("returned") else "?"


def _send_after_close(transcript: Transcript) -> str:
    """The send, and whether its exception is the OSError the spec asks for on a closed connection."""
    outcome = transcript.get("app", {}).get("send after close")
    words = step(outcome)
    if isinstance(outcome, Mapping) and "raised" in outcome:
        words += ", an OSError" if outcome.get("an OSError") else ", not an OSError"
    if transcript.get("client", {}).get("frames after the close frame"):
        words += "; a frame follows the close"
    return words


def _send_before_accept(transcript: Transcript) -> str:
    words = step(transcript.get("app", {}).get("send before accept"))
    messages = transcript.get("client", {}).get("then", {}).get("messages", [])
    return words + ("; the message is lost" if words == "returns" and len(messages) < 2 else "")


def _accept_twice(transcript: Transcript) -> str:
    return step(transcript.get("app", {}).get("second accept"))


def _invalid_send_shapes(transcript: Transcript) -> str:
    app = transcript.get("app", {})
    shapes = (("text and bytes", "both keys"), ("neither key", "neither"), ("both None", "both None"))
    return " · ".join(f"{short}: {step(app.get(key))}" for key, short in shapes)


def _encoded_path(transcript: Transcript) -> str:
    app = transcript.get("app", {})
    raw = app.get("raw_path", {})
    decoded = "path decoded" if "%" not in str(app.get("path", "%")).rstrip("%") else "path not decoded"
    return decoded + ("; raw_path kept" if raw.get("type") == "bytes" else "; no raw_path")


def _accept_never(transcript: Transcript) -> str:
    client = transcript.get("client", {})
    ended = client.get("ended by the server")
    if ended is None:  # a response came: the server answered the handshake itself
        words = f"answers {handshake(client)}"
    elif str(ended).startswith("not within"):
        words = "waits ≥ " + str(ended).removeprefix("not within ")
    else:
        words = f"ends it {ended}"
    again = transcript.get("app", {}).get("then_receive", {}).get("returned", {}).get("type")
    return words + ("; receive() gives websocket.connect again" if again == "websocket.connect" else "")


def _subprotocol_answer(transcript: Transcript) -> str:
    """The handshake's answer, and the accept() that led to it where it did not return."""
    client = transcript.get("client", {})
    if "handshake" in client:  # no 101: the view of a failed handshake is nested (handshake_view)
        words = handshake(client["handshake"])
    else:
        chosen = client.get("response", {}).get("sec-websocket-protocol")
        words = f"101 with '{chosen}'" if chosen else "101, no subprotocol"
    accept = transcript.get("app", {}).get("accept", {})
    return words if accept.get("returned") else f"accept {step(accept)}; {words}"


def _subprotocol_lines(transcript: Transcript) -> str:
    items = transcript.get("app", {}).get("subprotocols", {}).get("items", [])
    return f"app sees [{', '.join(items)}]; {_subprotocol_answer(transcript)}"


def _header_fidelity(transcript: Transcript) -> str:
    """How scope["headers"] differs from the lines sent: "as sent", or each change ("x_probe_under dropped")."""
    sent = [(name.lower(), value) for name, value in transcript.get("client", {}).get("sent", [])]
    given = transcript.get("app", {}).get("headers")
    if not isinstance(given, list):
        return "no report"
    changes = ["names not lower-case"] if any(name != name.lower() for name, _ in given) else []
    seen = [(name.lower(), value) for name, value in given]
    for name in dict.fromkeys(name for name, _ in sent):
        values = [value for key, value in sent if key == name]
        got = [value for key, value in seen if key == name]
        renamed = name.replace("_", "-")
        if got == values:
            continue
        if not got:
            moved = renamed != name and renamed in dict(seen)
            changes.append(f"{name} renamed {renamed}" if moved else f"{name} dropped")
        elif len(values) > 1 and len(got) == 1:
            changes.append(f"{name} joined as '{got[0]}'")
        else:
            changes.append(f"{name} changed")
    kept = [line for line in seen if line in sent]
    if kept != [line for line in sent if line in kept]:
        changes.append(_reordering(sent, kept))
    return "; ".join(changes) or "as sent"


def _reordering(sent: list[tuple[str, str]], kept: list[tuple[str, str]]) -> str:
    """Words for lines that arrived in another order: a repeated name's lines gathered together, or reordered."""
    for name in dict.fromkeys(name for name, _ in sent):
        places = [index for index, (key, _) in enumerate(kept) if key == name]
        if len(places) > 1 and places == list(range(places[0], places[0] + len(places))):
            sent_places = [index for index, (key, _) in enumerate(sent) if key == name]
            if sent_places != list(range(sent_places[0], sent_places[0] + len(sent_places))):
                return f"{name} lines gathered together"
    return "lines reordered"


def _receive_after_refusal(transcript: Transcript) -> str:
    app = transcript.get("app", {})
    words = _receive_outcome(app.get("then_receive"))
    if words == "blocks":
        return "blocks ≥ 3 s"
    return "disconnect " + disconnect(app) if words == "disconnect" else words


def _refusal_timing(transcript: Transcript) -> str:
    client = transcript.get("client", {})
    prompt = next((value for key, value in client.items() if key.startswith("response within")), None)
    words = handshake(client)
    if client.get("status") is None:
        return words
    return f"{words} at the close" if prompt else f"{words} only when the app returns"


def _receive_outcome(outcome: Any) -> str:
    """One ``receive()`` as the probe app recorded it: "disconnect", "blocks", "raises RuntimeError"."""
    returned = outcome.get("returned") if isinstance(outcome, Mapping) else None
    if isinstance(returned, Mapping):
        return str(returned.get("type")).removeprefix("websocket.")
    return step(outcome)


def _repeated_receives(transcript: Transcript) -> str:
    app = transcript.get("app", {})
    calls = app.get("then_receive")
    if not isinstance(calls, list):
        return "no report"
    runs: list[tuple[str, int]] = []
    for words in map(_receive_outcome, calls):
        if runs and runs[-1][0] == words:
            runs[-1] = (words, runs[-1][1] + 1)
        else:
            runs.append((words, 1))
    said = ", then ".join(f"{words} {count} times" if count > 1 else f"{words} once" for words, count in runs)
    waiting = next(
        (
            f"{value} within {key.removeprefix('waiting on ')}"
            for key, value in app.items()
            if key.startswith("waiting on")
        ),
        "no report",
    )
    words = f"{said or 'no call'}; {waiting}"
    return words + ("; TCP left open" if transcript.get("client", {}).get("end") == "still open" else "")


def _late_accept(transcript: Transcript) -> str:
    """Each late accept as "101, accept returns, then disconnect 1000"; once, if both read the same."""
    said = {key.removeprefix("accept after "): _one_late_accept(view) for key, view in transcript.items()}
    if len(set(said.values())) == 1:
        return f"{next(iter(said.values()))} (after {' and '.join(said)})"
    return "; ".join(f"after {delay}: {words}" for delay, words in said.items())


def _one_late_accept(view: Any) -> str:
    if not isinstance(view, Mapping):
        return "no view"
    client, app = view.get("client", {}), view.get("app", {})
    if client.get("status") is not None:
        answer = str(client["status"])
    else:
        answer = "no response, TCP closed" if client.get("ended by the server") else "no response"
    then = app.get("then_receive", {})
    if then.get("type") == "websocket.disconnect":
        words = f"disconnect {then.get('code')}"
    else:
        words = str(then.get("type", "")).removeprefix("websocket.") or _receive_outcome(then)
    return f"{answer}; accept {step(app.get('accept'))}, then {words}"


def _lifespan(transcript: Transcript) -> str:
    """Startup with its spec_version, shutdown, the exit: "startup (spec 2.0), shutdown; exit 0"."""
    app, server = transcript.get("app", {}), transcript.get("server", {})
    startup = app.get("startup")
    if isinstance(startup, Mapping):
        asgi = startup.get("asgi")
        spec = str(asgi.get("spec_version", "no spec_version")) if isinstance(asgi, Mapping) else "no asgi key"
        words = f"startup (spec {spec})" if spec[:1].isdigit() else f"startup ({spec})"
        words += ", shutdown" if isinstance(app.get("shutdown"), Mapping) else ", no shutdown"
    else:
        words = "not called"
    if app.get("lifespan calls", 1) > 1:
        words += f"; started {app['lifespan calls']} times"
    exit_code = server.get("exit code") if server.get("exited") else None
    return f"{words}; {exit_words(exit_code, isinstance(app.get('shutdown'), Mapping))}"


def _startup_failed(transcript: Transcript) -> str:
    """What a server does with lifespan.startup.failed: "exits (3)", "serves anyway", "exits (1) after serving"."""
    app, server = transcript.get("app", {}), transcript.get("server", {})
    exited = next((value for key, value in server.items() if key.startswith("exited within")), False)
    serves = server.get("serves GET /")
    if exited:
        words = f"exits ({server.get('exit code')})" + (" after serving" if serves else "")
    else:
        words = "serves anyway" if serves else "neither exits nor serves"
    return words if isinstance(app.get("startup"), Mapping) else f"lifespan not called; {words}"


def _set_cookie(transcript: Transcript) -> str:
    client = transcript.get("client", {})
    if client.get("status") != 101:
        return handshake(client)
    cookies = client.get("set-cookie", [])
    if len(cookies) == 2:
        return "both lines sent"
    return f"one line: '{_short(cookies[0])}'" if cookies else "dropped"


def _fin_no_close(transcript: Transcript) -> str:
    return f"app told {disconnect(transcript.get('app'))}; {ending(transcript.get('client'))}"


def _close_unanswered(transcript: Transcript) -> str:
    """When the server ends TCP after its close frame, if the client never answers it."""
    ended = str(transcript.get("client", {}).get("TCP ended by the server", "?"))
    if ended.startswith("not within"):
        return "TCP left open ≥ " + ended.removeprefix("not within ")
    return "ends TCP " + ended.split(", ")[-1]  # "later than 1.5 s, within 15 s": the window it ended in


def _data_before_101(transcript: Transcript) -> str:
    """The answer to a handshake with a frame behind it, and whether that message reached the app."""
    client, received = transcript.get("client", {}), transcript.get("app", {}).get("received")
    answer = str(client["status"]) if client.get("status") is not None else "TCP closed, no response"
    if not isinstance(received, list):  # not called (pyvoy), or still in its call (hypercorn's asyncio workers)
        return f"{answer}; no record from the app"
    if any(event.get("type") == "websocket.receive" for event in received):
        return f"{answer}; the message reaches the app"
    return f"{answer}; the message is lost" if answer == "101" else f"{answer}; the app told nothing"


def _malformed_close_wire(transcript: Transcript) -> str:
    """The server's answer on the wire to a malformed close frame: "1002", "an empty close", "no close frame"."""
    client = transcript.get("client", {})
    code = client.get("close code")
    words = "an empty close" if code == "0-byte payload" else str(code)
    return f"{words}, TCP left open" if client.get("end") == "still open" else words


def _malformed_close_app(transcript: Transcript) -> str:
    return f"disconnect {transcript.get('app', {}).get('disconnect code')}"


def _receive_backpressure(transcript: Transcript) -> str:
    """Whether a client's writes wait for the app to read, and what the app then received."""
    client, app = transcript.get("client", {}), transcript.get("app", {})
    unread = next((value for key, value in client.items() if key.startswith("all written within")), None)
    words = "the server queues it all" if unread else "writes stall until the app reads"
    received = "all, in order" if app.get("received") == "all" and app.get("in order") else str(app.get("received"))
    return f"{words}; the app gets {received}"


BEHAVIOURS: tuple[Behaviour, ...] = (
    # asgi-ws itself, as its clients and the app see it
    Behaviour(
        "asgi-ws: a client's clean close, as the app is told",
        "normal-close-1000",
        "disconnect code: the client's (1000)",
        "app-visible",
        _clean_close_app,
    ),
    Behaviour(
        "asgi-ws: a client that resets TCP, as the app is told",
        "echo-reset-after-message",
        "RFC 6455 §7.1.5: 1006 (no close frame)",
        "app-visible",
        _clean_close_app,
    ),
    Behaviour(
        "asgi-ws: a policy close (message too big)",
        "size-limit-64kib",
        "the app's code and reason (ASGI 2.3+)",
        "client-visible",
        _policy_close,
    ),
    Behaviour(
        "asgi-ws: a slow consumer is closed",
        "slow-consumer-4503",
        "send() applies backpressure (not stated)",
        "client-visible",
        _slow_consumer,
    ),
    Behaviour(
        "asgi-ws: a slow consumer that reads again 7 s later",
        "slow-consumer-late-reader",
        "send() applies backpressure (not stated)",
        "client-visible",
        _slow_consumer,
    ),
    Behaviour(
        "asgi-ws: empty messages echoed",
        "echo-empty-messages",
        "empty text and bytes are messages",
        "client-visible",
        _empty_echo,
    ),
    Behaviour(
        "asgi-ws: refused before accept (unknown path)",
        "unknown-path-404",
        "denial response where the extension is listed",
        "client-visible",
        _unknown_path,
    ),
    Behaviour(
        "asgi-ws: SIGTERM with idle sockets open",
        "shutdown-idle-sockets",
        "not stated; RFC 6455: 1001 going away",
        "client-visible",
        _shutdown,
    ),
    # The servers, through the probe app
    Behaviour(
        "App returns after accept, no close",
        "probe-return-after-accept",
        "the socket is closed",
        "client-visible",
        _app_ended,
    ),
    Behaviour(
        "App raises after accept", "probe-raise-after-accept", "the socket is closed", "client-visible", _app_ended
    ),
    Behaviour("App returns before accept", "probe-return-before-accept", "not stated", "client-visible", _refused),
    Behaviour("App raises before accept", "probe-raise-before-accept", "not stated", "client-visible", _refused),
    Behaviour("websocket.close before accept", "probe-close-before-accept", "HTTP 403", "cosmetic", _refused),
    Behaviour(
        "Denial response (websocket.http.response)",
        "probe-denial-response",
        "the app's status, headers and body, where listed",
        "client-visible",
        _denial,
    ),
    Behaviour(
        "App closes with 4000 and a reason",
        "probe-app-close-code-reason",
        "that code and reason",
        "client-visible",
        _app_closed,
    ),
    Behaviour("App closes with 1001", "probe-app-close-code-1001", "that code", "client-visible", _app_closed),
    Behaviour("App closes with 1011", "probe-app-close-code-1011", "that code", "client-visible", _app_closed),
    Behaviour(
        "App closes with 1005 (not for the wire)",
        "probe-app-close-code-1005",
        "RFC 6455 §7.4.1: must not be sent",
        "client-visible",
        _app_closed,
    ),
    Behaviour(
        "App closes with 999 (invalid)",
        "probe-app-close-code-999",
        "RFC 6455 §7.4.2: invalid",
        "client-visible",
        _app_closed,
    ),
    Behaviour(
        "App closes with a 200-byte reason",
        "probe-app-close-long-reason",
        "RFC 6455 §5.5: at most 123 bytes fit",
        "client-visible",
        _app_closed,
    ),
    Behaviour(
        "receive() after the app's own close",
        "probe-app-close-code-reason",
        "disconnect with the code (not stated when)",
        "app-visible",
        _after_own_close,
    ),
    Behaviour(
        "Client closes with 4001 and a reason: the app is told",
        "probe-client-close-code-reason",
        "disconnect with that code and reason (2.5)",
        "app-visible",
        _told_app,
    ),
    Behaviour(
        "Client closes with 4001 and a reason: the reply",
        "probe-client-close-code-reason",
        "RFC 6455 §5.5.1: usually echoes the code",
        "client-visible",
        _reply_to_client_close,
    ),
    Behaviour(
        "Client closes with no code: the app is told",
        "probe-client-close-no-code",
        "1005",
        "app-visible",
        _told_app,
    ),
    Behaviour(
        "send() after a disconnect the app has not read",
        "probe-send-after-disconnect-unseen",
        "should raise an OSError subclass (2.4)",
        "client-visible",
        _send_after_disconnect,
    ),
    Behaviour(
        "send() after the app read the disconnect",
        "probe-send-after-disconnect-seen",
        "should raise an OSError subclass (2.4)",
        "app-visible",
        _send_after_disconnect,
    ),
    Behaviour(
        "receive() after websocket.disconnect",
        "probe-receive-after-disconnect",
        "not stated",
        "client-visible",
        _receive_after_disconnect,
    ),
    Behaviour(
        "websocket.receive: the unused key",
        "probe-receive-shapes",
        "None or absent, both allowed",
        "app-visible",
        _receive_shape,
    ),
    Behaviour(
        "Empty text and bytes sent by the app", "probe-send-shapes", "sent as messages", "client-visible", _send_shapes
    ),
    Behaviour(
        "Headers passed with websocket.accept",
        "probe-accept-headers",
        "sent in the 101 (2.1)",
        "client-visible",
        _accept_headers,
    ),
    Behaviour(
        "asgi.spec_version in the scope",
        "probe-scope",
        "the version served (2.5 is current)",
        "app-visible",
        _spec_version,
    ),
    Behaviour(
        "permessage-deflate offered by the client", "probe-permessage-deflate", "not stated", "cosmetic", _deflate
    ),
    Behaviour("A 1 MiB + 1 message", "probe-size-1mib-plus-1", "not stated", "client-visible", _size),
    Behaviour("A 16 MiB + 1 message", "probe-size-16mib-plus-1", "not stated", "client-visible", _size),
    Behaviour(
        "Invalid UTF-8 in a text frame",
        "probe-invalid-utf8",
        "RFC 6455 §8.1: fail with 1007",
        "client-visible",
        _invalid_utf8,
    ),
    Behaviour(
        "Keepalive with the launcher's 20 s ping flags",
        "probe-keepalive-default",
        "servers should ping as necessary",
        "client-visible",
        _keepalive,
    ),
    Behaviour(
        "Keepalive with 1 s ping flags",
        "probe-keepalive-1s",
        "servers should ping as necessary",
        "client-visible",
        _keepalive,
    ),
    Behaviour(
        "Keepalive at the server's own defaults (no flags)",
        "probe-keepalive-server-default",
        "servers should ping as necessary",
        "client-visible",
        _keepalive,
    ),
    Behaviour("A handshake that never ends", "probe-slowloris", "not stated", "client-visible", _slowloris),
    Behaviour(
        "App never answers websocket.connect",
        "probe-accept-never",
        "the server must not complete the handshake",
        "client-visible",
        _accept_never,
    ),
    Behaviour(
        "send() after the app's own close",
        "probe-send-after-close",
        '"If send() is called on a closed connection the server should raise a server-specific subclass of '
        "OSError\" (2.4+). Whether the app's own close makes it closed is not said: a server that raises reads it "
        "as closed, one that returns as open until the closing handshake ends",
        "app-visible",
        _send_after_close,
    ),
    Behaviour(
        "send() before accept",
        "probe-send-before-accept",
        "accept or close must come first",
        "app-visible",
        _send_before_accept,
    ),
    Behaviour("websocket.accept sent twice", "probe-accept-twice", "not stated", "app-visible", _accept_twice),
    Behaviour(
        "send with both keys, neither, or both None",
        "probe-invalid-send-shapes",
        "exactly one of text and bytes is not None",
        "app-visible",
        _invalid_send_shapes,
    ),
    Behaviour(
        "Close with a reason and no code",
        "probe-app-close-reason-no-code",
        "code defaults to 1000",
        "client-visible",
        _app_closed,
    ),
    Behaviour(
        "Percent-encoded path and query",
        "probe-encoded-path",
        "path decoded, raw_path as received",
        "app-visible",
        _encoded_path,
    ),
    Behaviour(
        "Accept with a subprotocol the client did not offer",
        "probe-subprotocol-not-offered",
        "not stated; RFC 6455 §4.1: the client fails the connection",
        "client-visible",
        _subprotocol_answer,
    ),
    Behaviour(
        "Two Sec-WebSocket-Protocol header lines",
        "probe-subprotocol-two-lines",
        "duplicates preserved in headers",
        "client-visible",
        _subprotocol_lines,
    ),
    Behaviour(
        "1 MiB + 1 in 64 KiB fragments",
        "probe-size-fragmented-1mib-plus-1",
        "not stated",
        "client-visible",
        _size,
    ),
    Behaviour(
        "16 MiB + 1 in 64 KiB fragments",
        "probe-size-fragmented-16mib-plus-1",
        "not stated",
        "client-visible",
        _size,
    ),
    Behaviour(
        "64 MiB + 1 in 64 KiB fragments",
        "probe-size-fragmented-64mib-plus-1",
        "not stated",
        "client-visible",
        _size,
    ),
    Behaviour(
        "SIGTERM with a socket open",
        "probe-sigterm",
        "not stated; RFC 6455: 1001 going away",
        "client-visible",
        _sigterm,
    ),
    Behaviour(
        "Request headers as the app sees them",
        "probe-header-fidelity",
        "order preserved, duplicates as received",
        "app-visible",
        _header_fidelity,
    ),
    Behaviour(
        "receive() after websocket.close before accept",
        "probe-after-refusal-receive",
        "not stated",
        "app-visible",
        _receive_after_refusal,
    ),
    Behaviour(
        "The 403 when the app runs on after websocket.close",
        "probe-after-refusal-return-late",
        "HTTP 403 (not stated when)",
        "client-visible",
        _refusal_timing,
    ),
    Behaviour(
        "receive() four times after websocket.disconnect, then waiting on",
        "probe-receive-after-disconnect-repeated",
        "not stated",
        "app-visible",
        _repeated_receives,
    ),
    Behaviour(
        "App accepts 6 s and 12 s after websocket.connect",
        "probe-late-accept",
        "not stated (no time limit on the app's answer)",
        "client-visible",
        _late_accept,
    ),
    Behaviour(
        "Lifespan at startup and at SIGTERM",
        "probe-lifespan",
        "startup, then shutdown when the server stops",
        "app-visible",
        _lifespan,
    ),
    Behaviour(
        "lifespan.startup.failed",
        "probe-lifespan-startup-failed",
        "the server should log it and exit",
        "client-visible",
        _startup_failed,
    ),
    Behaviour(
        "Client closes with a non-ASCII reason: the app is told",
        "probe-client-close-non-ascii-reason",
        "the reason as a str (2.5)",
        "app-visible",
        _told_app,
    ),
    Behaviour(
        "Two set-cookie headers passed with websocket.accept",
        "probe-accept-set-cookie",
        "sent in the 101 (2.1); never folded (RFC 6265)",
        "client-visible",
        _set_cookie,
    ),
    Behaviour(
        "Client ends TCP (FIN) without a close frame",
        "probe-client-fin-no-close",
        "RFC 6455 §7.1.5: 1006",
        "client-visible",
        _fin_no_close,
    ),
    Behaviour(
        "Client never answers the app's close frame",
        "probe-close-unanswered",
        "RFC 6455 §7.1.1: the server ends TCP first (no deadline stated)",
        "client-visible",
        _close_unanswered,
    ),
    Behaviour(
        "Client sends a message with its handshake, before the 101",
        "probe-data-before-101",
        "RFC 6455 §4.1: the client must wait for the 101; the server's answer is not stated",
        "client-visible",
        _data_before_101,
    ),
    *(
        Behaviour(
            f"Client's close frame with {meaning}",
            f"probe-client-close-malformed-{variant}",
            spec,
            "client-visible",
            _malformed_close_wire,
        )
        for variant, meaning, spec in (
            ("one-byte", "a 1-byte payload", "RFC 6455 §5.5.1, §7.4.1: 1002"),
            ("1005", "code 1005", "RFC 6455 §7.4.1 (never sent): 1002"),
            ("999", "code 999", "RFC 6455 §7.4.2 (out of range): 1002"),
            ("invalid-utf8-reason", "a reason not in UTF-8", "RFC 6455 §8.1: 1007"),
        )
    ),
    Behaviour(
        "Client's close frame with code 999: the app is told",
        "probe-client-close-malformed-999",
        "the code the server failed the connection with (1002)",
        "app-visible",
        _malformed_close_app,
    ),
    Behaviour(
        "Client writes 16 MiB while the app calls no receive()",
        "probe-receive-backpressure",
        "not stated (ASGI has no flow control)",
        "client-visible",
        _receive_backpressure,
    ),
)
