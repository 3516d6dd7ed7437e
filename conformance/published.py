"""What ``python -m conformance --publish`` writes besides the matrix: the summary, and the docs that quote it.

The matrix (``docs/server-divergences.md``) is one run's report. Other pages quote
its numbers: the README's opening claim and its table of servers, the example headline in
``docs/conformance.md``, the bench's server comparison. So that they can never
disagree with the run or with each other (contract §12), every such number
comes from one file, ``docs/server-summary.json``, written here from the run's
JSON report, and each page holds it in a generated block::

    <!-- conformance-headline: written by ... -->
    ...
    <!-- /conformance-headline -->

:func:`publish_blocks` rewrites the blocks; :func:`stale_blocks` says which ones
no longer match the summary, which ``tests/test_evidence.py`` asserts is none.
This module is pure but for the two functions that read and write files.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from asgi_ws.servers import SERVERS

from .checks import HTTP1, split_column
from .summary import REFERENCE

__all__ = [
    "BLOCKS",
    "SHUTDOWN_CHECK",
    "SUMMARY",
    "TIMES",
    "Block",
    "block_text",
    "conformance_example",
    "publish_blocks",
    "readme_claim",
    "readme_table",
    "replace_block",
    "stale_blocks",
    "summary_of",
]

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = ROOT / "docs" / "server-summary.json"

Summary = Mapping[str, Any]  # the parsed docs/server-summary.json
# The row of "What each server does" the summary keeps: what a client of asgi-ws sees at SIGTERM.
SHUTDOWN_CHECK = "shutdown-idle-sockets"
TIMES = "\N{MULTIPLICATION SIGN}"  # "x2": how many scenarios one reason explains


def summary_of(report: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a JSON report that say, per server, how it did and on which versions: small enough to commit.

    Of the behaviour table, only the row of :data:`SHUTDOWN_CHECK` is kept, as its title, its anchor in the
    matrix and each server's words (``{}`` if it did not run).
    """
    autobahn = report.get("autobahn", {})
    shutdown = next((row for row in report.get("outcomes", []) if row["check"] == SHUTDOWN_CHECK), None)
    return {
        "ran_on": report["ran_on"],
        "versions": report["versions"],
        "packages": report.get("packages", {}),
        "headline": report["headline"],
        "offers": report.get("offers", {}),
        "autobahn": {
            "cases": autobahn.get("cases"),
            "servers": {
                server: {"summary": result.get("summary", {})} for server, result in autobahn.get("servers", {}).items()
            },
        },
        "shutdown": {
            "behaviour": shutdown["behaviour"],
            "anchor": shutdown["anchor"],
            "servers": {server: cell["outcome"] for server, cell in shutdown["servers"].items()},
        }
        if shutdown is not None
        else {},
    }


# The blocks


def readme_table(summary: Summary) -> str:
    """The README's first answer: per server, how many scenarios a client sees as under the reference, and why not."""
    lines = [
        f"| server | client-visible behaviour of asgi-ws, against {REFERENCE} "
        "| where it differs, and why in a few words | Autobahn OK |",
        "|---|---|---|---:|",
    ]
    for server, headline in _in_registry_order(summary["headline"]):
        reasons: dict[str, int] = {}
        for exception in headline["exceptions"]:
            reasons[exception["reason"]] = reasons.get(exception["reason"], 0) + 1
        where = "; ".join(f"{reason} {TIMES}{count}" for reason, count in reasons.items()) or "nowhere"
        autobahn = _autobahn(summary, server) if split_column(server)[1] == HTTP1 else "-"
        lines.append(
            f"| {server} | identical in {headline['identical']} of {headline['scenarios']} scenarios "
            f"| {where} | {autobahn} |"
        )
    lines += [
        "",
        f"{TIMES}N counts the scenarios; the published page names each one and links to the server's code and",
        f"the upstream issue. From the run of {summary['ran_on']}, with the versions `uv.lock` pins.",
    ]
    return "\n".join(lines)


def readme_claim(summary: Summary) -> str:
    """The README's opening claim: under how many servers a client sees what it sees under the reference, and where
    to read which server to choose."""
    http1 = {name: line for name, line in summary["headline"].items() if split_column(name)[1] == HTTP1}
    http2 = {
        _with_switch(split_column(name)[0]): line
        for name, line in summary["headline"].items()
        if split_column(name)[1] == "h2"
    }
    text = (
        f"Tested under {len(http1)} server configurations, with {REFERENCE} as the reference, what a client sees of "
        f"it is identical {_groups(http1)}."
    )
    if http2:
        text += f" Over HTTP/2, as browsers use it where a server advertises it: identical {_groups(http2)}."
    text += (
        " Which to choose, with each one's speed, Autobahn results and shutdown: "
        "[docs/choosing-a-server.md](docs/choosing-a-server.md)."
    )
    return textwrap.fill(text, 100, break_long_words=False, break_on_hyphens=False)


def _with_switch(server: str) -> str:
    """``server``, with the flag that turned its HTTP/2 on where it has one: "uvicorn-zttp with `--http2`"."""
    switch = SERVERS[server].http2 if server in SERVERS else ""
    return f"{server} with `{switch}`" if switch else server


def _groups(headlines: Mapping[str, Any]) -> str:
    """ "in 53 of 53 scenarios under a and b; in 50 of 53 under c": the servers grouped by how many are identical."""
    by_count: dict[int, list[str]] = {}
    for server, headline in _in_registry_order(headlines):
        by_count.setdefault(headline["identical"], []).append(server)
    scenarios = max(headline["scenarios"] for headline in headlines.values())
    groups = [f"in {count} of {scenarios} under {_words(servers)}" for count, servers in sorted(by_count.items())[::-1]]
    groups[0] = groups[0].replace(" under ", " scenarios under ", 1)
    return "; ".join(groups)


def _words(items: list[str]) -> str:
    """Items joined as prose: "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def conformance_example(summary: Summary) -> str:
    """One headline as docs/conformance.md shows it: hypercorn's, whose exceptions have more than one reason."""
    headlines = summary["headline"]
    chosen = headlines.get("hypercorn") or next(iter(headlines.values()))
    return f"> {chosen['line']}."


def _in_registry_order(by_server: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The summary's servers (its keys are sorted by name) in the order of contract §0, as the matrix has them."""
    order = {name: index for index, name in enumerate(SERVERS)}
    return sorted(by_server.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))


def _autobahn(summary: Summary, server: str) -> str:
    counts = summary.get("autobahn", {}).get("servers", {}).get(server, {}).get("summary")
    return f"{counts.get('OK', 0)} of {sum(counts.values())}" if counts else "not run"


class Block:
    """A generated block of a Markdown file, between ``<!-- NAME: ... -->`` and ``<!-- /NAME -->``."""

    def __init__(self, path: Path, name: str, render: Callable[[Summary], str]) -> None:
        self.path = path  # the file that holds it
        self.name = name  # the markers' name
        self.render = render  # the block's text from the summary

    def __repr__(self) -> str:
        return f"Block({self.path.relative_to(ROOT)}, {self.name})"


BLOCKS = (
    Block(ROOT / "README.md", "conformance-claim", readme_claim),
    Block(ROOT / "README.md", "conformance-headline", readme_table),
    Block(ROOT / "docs" / "conformance.md", "conformance-example", conformance_example),
)


def _find_block(text: str, name: str) -> re.Match[str]:
    pattern = re.compile(rf"<!-- {re.escape(name)}(?::[^>]*)? -->\n(.*?)<!-- /{re.escape(name)} -->", re.DOTALL)
    found = pattern.search(text)
    if found is None:
        raise ValueError(f"no <!-- {name} --> ... <!-- /{name} --> block")
    return found


def block_text(text: str, name: str) -> str:
    """What the block ``name`` of ``text`` holds, without its last newline."""
    return _find_block(text, name).group(1).removesuffix("\n")


def replace_block(text: str, name: str, content: str) -> str:
    """``text`` with the block ``name`` holding ``content``; the opening marker's comment is kept as it is."""
    found = _find_block(text, name)
    return text[: found.start(1)] + content.rstrip("\n") + "\n" + text[found.end(1) :]


def stale_blocks(summary: Summary, blocks: tuple[Block, ...] = BLOCKS) -> list[Block]:
    """The blocks whose text is not what ``summary`` gives."""
    return [
        block
        for block in blocks
        if (text := block.path.read_text()) != replace_block(text, block.name, block.render(summary))
    ]


def publish_blocks(summary_path: Path = SUMMARY, blocks: tuple[Block, ...] = BLOCKS) -> list[Path]:
    """Rewrite every block from the summary at ``summary_path``; the files written."""
    summary = json.loads(summary_path.read_text())
    for block in blocks:
        block.path.write_text(replace_block(block.path.read_text(), block.name, block.render(summary)))
    return sorted({block.path for block in blocks})
