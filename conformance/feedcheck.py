"""The feed's proof: read every client's feed messages and count what was lost or repeated.

A feed client keeps the last message it saw, ``(epoch, offset)``, and resumes
with ``?since=EPOCH:OFFSET`` after a disconnect.  What it received on each of
its connections, in order, is a :class:`Connection`; all of a client's
connections, in order, are its history.  :func:`check` reads the histories of
every client of a run and returns a :class:`FeedCheck`, whose
:meth:`~FeedCheck.line` is the one-line result tests and benchmarks print.

The rules, per client:

- **One sequence per epoch.**  Within one epoch, the client's offsets across
  all its connections run consecutively from its first to its last.  An
  offset at or below the last one seen in that epoch is a *duplicate*; one
  further ahead than the next is a *gap* (counted once per jump).  A message of
  another epoch starts (or continues) that epoch's own sequence.
- **Resumes.**  A connection opened with ``since`` must start with the control
  message ``{"recovered", "epoch", "offset"}`` (unless it received nothing at
  all: lost before its first message); one opened without it must not get
  one, and no control message comes later.  A resume with
  ``recovered: true`` answers in the epoch of ``since`` and continues exactly
  after ``since``'s offset: a first message anywhere else is a *bad resume*
  (and, against the client's own sequence, a gap or a duplicate).  A resume
  with ``recovered: false`` is *not recovered*: the next message may jump
  ahead, once, without counting as a gap.
- **Nothing doubled.**  Within one epoch, a client receives each data at one
  offset only: the same data at a second offset is a sender's message
  numbered twice, *doubled* (the scenarios give every message its own data).
- **Agreement.**  Every client that received an ``(epoch, offset)`` received
  the same data with it; each other data seen there is a *disagreement*.
- **Acks.**  A sender that published with ids (contract §8.1) was told where
  each message was numbered; given those acks, every one must be the
  ``(epoch, offset)`` at which the clients received that data.  One that no
  client received there is a *wrong ack*.

Nothing here knows about servers or sockets: the clients that collect the
histories are in :mod:`conformance.feedclient`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from asgi_ws.feed import Since

__all__ = ["ClientTally", "Connection", "FeedCheck", "check"]

MAX_PROBLEMS = 20  # problems written down per client; the counts go on past them


@dataclass(slots=True)
class Connection:
    """One connection of a feed client: the ``since`` it asked for, and every text it received, in order."""

    since: Since | None = None
    texts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ClientTally:
    """What :func:`check` counted for one client."""

    name: str
    connections: int = 0
    messages: int = 0  # numbered messages received, replayed or live
    resumes: int = 0  # connections opened with since
    not_recovered: int = 0  # of those, answered recovered: false
    gaps: int = 0  # jumps over one or more offsets in an epoch
    missing: int = 0  # offsets jumped over by those gaps
    skipped: int = 0  # offsets passed over right after a resume that was not recovered (allowed)
    duplicates: int = 0  # messages at or below the last offset already seen in their epoch
    doubled: int = 0  # messages whose data it had received at another offset of the same epoch
    bad_resumes: int = 0  # recovered resumes that did not continue right after since (or answered another epoch)
    malformed: int = 0  # texts that are neither a numbered message nor a control message where one belongs
    epochs: list[str] = field(default_factory=list)  # in the order first seen
    last: tuple[str, int] | None = None  # the last numbered message received: (epoch, offset)
    problems: list[str] = field(default_factory=list)  # the first few, in words

    @property
    def clean(self) -> bool:
        return not (self.gaps or self.duplicates or self.doubled or self.bad_resumes or self.malformed)

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{self.name}: {text}")


@dataclass(slots=True)
class FeedCheck:
    """The result for a whole run: one tally per client, and the disagreements between clients."""

    clients: dict[str, ClientTally]
    disagreements: int = 0  # (epoch, offset)s received with different data by different clients
    wrong_acks: int = 0  # acks whose (epoch, offset) no client received with the acked data
    problems: list[str] = field(default_factory=list)  # the first few disagreements and wrong acks, in words

    def total(self, attribute: str) -> int:
        return sum(int(getattr(tally, attribute)) for tally in self.clients.values())

    @property
    def clean(self) -> bool:
        """No gap, duplicate, doubled message, bad resume, malformed message, disagreement or wrong ack anywhere."""
        agreed = self.disagreements == 0 and self.wrong_acks == 0
        return agreed and all(tally.clean for tally in self.clients.values())

    def line(self, scenario: str) -> str:
        """``feed-check NAME: clients=.. messages=.. resumes=.. (not recovered ..) gaps=.. duplicates=.. doubled=..``.

        Bad resumes, malformed texts, disagreements and wrong acks follow, where there are any.
        """
        counted = ("messages", "resumes", "not_recovered", "gaps", "duplicates", "doubled")
        totals = {name: self.total(name) for name in counted}
        line = (
            f"feed-check {scenario}: clients={len(self.clients)} messages={totals['messages']} "
            f"resumes={totals['resumes']} (not recovered {totals['not_recovered']}) "
            f"gaps={totals['gaps']} duplicates={totals['duplicates']} doubled={totals['doubled']}"
        )
        extra = {"bad_resumes": self.total("bad_resumes"), "malformed": self.total("malformed")}
        extra["disagreements"] = self.disagreements
        extra["wrong_acks"] = self.wrong_acks
        return line + "".join(f" {name}={value}" for name, value in extra.items() if value)

    def report(self) -> str:
        """Every problem written down, one per line (empty when clean): for an assertion's message."""
        problems = [problem for tally in self.clients.values() for problem in tally.problems] + self.problems
        return "\n".join(problems)


def check(
    histories: Mapping[str, Sequence[Connection]], acks: Mapping[str, tuple[str, int]] | None = None
) -> FeedCheck:
    """Check every client's connections (by client name) against the rules of this module.

    ``acks`` maps the data of each message published with an id to the
    ``(epoch, offset)`` its sender was acked with.
    """
    seen: dict[tuple[str, int], str] = {}  # the first data received at each (epoch, offset)
    result = FeedCheck({name: _check_client(name, connections, seen) for name, connections in histories.items()})
    for name, connections in histories.items():
        _check_agreement(name, connections, seen, result)
    for data, (epoch, offset) in (acks or {}).items():
        if seen.get((epoch, offset)) != data:
            result.wrong_acks += 1
            if len(result.problems) < MAX_PROBLEMS:
                result.problems.append(f"{data!r} was acked at {epoch}:{offset}, where no client received it")
    return result


def _check_client(name: str, connections: Iterable[Connection], seen: dict[tuple[str, int], str]) -> ClientTally:
    """Count one client's messages, resumes, gaps and duplicates; note the first data at each offset in ``seen``."""
    tally = ClientTally(name)
    last: dict[str, int] = {}  # the last offset seen in each epoch
    numbered_at: dict[tuple[str, str], int] = {}  # (epoch, data) -> the offset it was first received at
    for number, connection in enumerate(connections, start=1):
        tally.connections += 1
        where = f"connection {number}"
        texts, expect, may_jump = _resume(tally, where, connection)
        for text in texts:
            message = _numbered(text)
            if message is None:
                tally.malformed += 1
                tally.problem(f"{where}: not a numbered message: {text[:80]!r}")
                continue
            epoch, offset = message["epoch"], message["offset"]
            tally.messages += 1
            seen.setdefault((epoch, offset), message["data"])
            if expect is not None:
                if (epoch, offset) != expect:
                    tally.bad_resumes += 1
                    tally.problem(f"{where}: the replay started at {epoch}:{offset}, not at {expect[0]}:{expect[1]}")
                expect = None
            if epoch not in last:
                tally.epochs.append(epoch)
            elif offset <= last[epoch]:
                tally.duplicates += 1
                tally.problem(f"{where}: {epoch}:{offset} again, after {epoch}:{last[epoch]}")
                continue
            elif offset > last[epoch] + 1 and may_jump:
                tally.skipped += offset - last[epoch] - 1
            elif offset > last[epoch] + 1:
                tally.gaps += 1
                tally.missing += offset - last[epoch] - 1
                tally.problem(f"{where}: gap in {epoch} from {last[epoch]} to {offset}")
            first = numbered_at.setdefault((epoch, message["data"]), offset)
            if first != offset:
                tally.doubled += 1
                tally.problem(f"{where}: {message['data'][:40]!r} at {epoch}:{offset}, and before at {epoch}:{first}")
            may_jump = False
            last[epoch] = offset
            tally.last = (epoch, offset)
    return tally


def _resume(tally: ClientTally, where: str, connection: Connection) -> tuple[list[str], tuple[str, int] | None, bool]:
    """Check a connection's control message against its ``since``.

    Returns the numbered texts that follow it, where a served resume must
    start (its ``(epoch, offset)``, None if anywhere), and whether the first
    message may skip ahead (a resume that was not recovered).
    """
    texts, since = connection.texts, connection.since
    if since is None or not texts:  # a connection lost before its first message says nothing
        return texts, None, False
    tally.resumes += 1
    control = _control(texts[0])
    if control is None:
        tally.malformed += 1
        tally.problem(
            f"{where}: asked since={since.epoch}:{since.offset} and got no control message first, but {texts[0][:80]!r}"
        )
        return texts, None, False
    if not control["recovered"]:
        tally.not_recovered += 1
        return texts[1:], None, True
    if control["epoch"] != since.epoch:
        tally.bad_resumes += 1
        tally.problem(f"{where}: recovered in epoch {control['epoch']}, asked {since.epoch}")
        return texts[1:], None, False
    return texts[1:], (since.epoch, since.offset + 1) if control["offset"] > since.offset else None, False


def _check_agreement(
    name: str, connections: Iterable[Connection], seen: dict[tuple[str, int], str], result: FeedCheck
) -> None:
    """Count the messages of ``name`` whose data differs from the first data seen at their (epoch, offset)."""
    for connection in connections:
        for text in connection.texts:
            message = _numbered(text)
            if message is not None and seen[message["epoch"], message["offset"]] != message["data"]:
                result.disagreements += 1
                if len(result.problems) < MAX_PROBLEMS:
                    result.problems.append(f"{name}: {message['epoch']}:{message['offset']} carried other data")


def _parse(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _numbered(text: str) -> dict[str, Any] | None:
    """``{"offset": int, "epoch": str, "data": str}``, or None for anything else."""
    value = _parse(text)
    if value is None or set(value) != {"offset", "epoch", "data"}:
        return None
    if not (_is_int(value["offset"]) and isinstance(value["epoch"], str) and isinstance(value["data"], str)):
        return None
    return value


def _control(text: str | None) -> dict[str, Any] | None:
    """``{"recovered": bool, "epoch": str, "offset": int}``, or None for anything else."""
    value = _parse(text)
    if value is None or set(value) != {"recovered", "epoch", "offset"}:
        return None
    if not (isinstance(value["recovered"], bool) and isinstance(value["epoch"], str) and _is_int(value["offset"])):
        return None
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
