"""What a run stood on: the package versions, Python, redis-server, the machine, the CPU pinning, the sizes.

A run records these in ``bench/results.json`` beside its figures (:class:`Run`).
:func:`observe` reads them from this machine and this environment once, when the
run ends, and nothing reads them again: ``python -m bench --render`` rewrites
the pages later from the JSON and gets the same text.  The one thing compared
with the present is ``uv.lock`` (:func:`lock_text`), so that a page measured
with versions the lock no longer pins says so (contract §12).

This module does not measure anything, nor write a page: :mod:`bench.run`
calls :func:`observe` at the end of a run, and :mod:`bench.report` prints the
record in the page's header.
"""

from __future__ import annotations

import dataclasses
import platform
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.versions import disagreements, installed, locked

from .results import Sizes


@dataclass(frozen=True, slots=True)
class Run:
    """How a run was made and what it stood on, as it recorded them in results.json.

    Every field is read once, by :func:`observe` at the end of the run (or transcribed
    by hand for a run that did not record it), and only ever read back after that.
    """

    command: str  # the command line, e.g. "python -m bench --only p10"
    date: str  # the day it ran, YYYY-MM-DD
    seconds: float  # how long it took
    sizes: Sizes  # its rounds, and how long and big each workload was
    server_cpus: list[int]  # the CPUs the servers were pinned to
    client_cpus: list[int]  # the CPUs the load generator was pinned to
    cpu_model: str  # /proc/cpuinfo's model name
    cpu_count: int  # the CPUs the run had, both sets together
    system: str  # the kernel, e.g. "Linux 6.18.44-fc-v657"
    python: str  # the interpreter's version, e.g. "3.11.7"
    redis_server: str  # redis-server --version's v=, "?" where it could not say
    versions: dict[str, str]  # distribution -> version: what was measured and everything it requires
    transcribed: str = ""  # for a record written after the run, by hand: from what

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "command": self.command,
            "date": self.date,
            "seconds": self.seconds,
            "sizes": dataclasses.asdict(self.sizes),
            "pinning": {"servers": self.server_cpus, "load generator": self.client_cpus},
            "machine": {"cpu model": self.cpu_model, "cpus": self.cpu_count, "system": self.system},
            "python": self.python,
            "redis-server": self.redis_server,
            "versions": self.versions,
        }
        if self.transcribed:
            found["transcribed"] = self.transcribed
        return found

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Run:
        sizes = dict(raw["sizes"])
        if "fan_out_messages" in sizes:  # JSON made its integer keys strings
            sizes["fan_out_messages"] = {int(key): value for key, value in sizes["fan_out_messages"].items()}
        machine = raw["machine"]
        return cls(
            command=raw["command"],
            date=raw["date"],
            seconds=raw["seconds"],
            # A size the record does not name is the default of a full run: the run of 2026-11-29,
            # recorded afterwards, names its rounds only.
            sizes=Sizes(**sizes),
            server_cpus=list(raw["pinning"]["servers"]),
            client_cpus=list(raw["pinning"]["load generator"]),
            cpu_model=machine["cpu model"],
            cpu_count=machine["cpus"],
            system=machine["system"],
            python=raw["python"],
            redis_server=raw["redis-server"],
            versions=dict(raw["versions"]),
            transcribed=raw.get("transcribed", ""),
        )


def observe(command: str, seconds: float, sizes: Sizes, cpus: tuple[set[int], set[int]], roots: Iterable[str]) -> Run:
    """What this run stood on, read from this machine and this environment: the one place that reads them.

    ``roots`` are the distributions measured (the servers, the peers, the load generator,
    the app); their versions are recorded with those of everything they require.
    """
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        model = found.group(1) if found else model
    redis_version = "?"
    if shutil.which("redis-server"):
        words = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
        redis_version = next((word.split("=")[1] for word in words if word.startswith("v=")), "?")
    return Run(
        command=command,
        date=time.strftime("%Y-%m-%d"),
        seconds=seconds,
        sizes=sizes,
        server_cpus=sorted(cpus[0]),
        client_cpus=sorted(cpus[1]),
        cpu_model=model,
        cpu_count=len(cpus[0] | cpus[1]),
        system=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        redis_server=redis_version,
        versions=installed(roots),
    )


def lock_text(versions: Mapping[str, str], lock: Path) -> str:
    """Whether the recorded versions are the ones ``lock`` pins, in a sentence; each that is not, with both."""
    if not versions:
        return "This run recorded no package versions to compare with uv.lock."
    if not lock.exists():
        return f"No uv.lock at `{lock.name}` to compare these versions with."
    differ = disagreements(versions, locked(lock))
    if not differ:
        return "Every version above is the one uv.lock pins."
    return (
        "Measured with versions that uv.lock no longer pins: "
        f"{', '.join(f'{name} {found}' for name, found in differ.items())}; "
        "the next full run (`python -m bench`) from the lock replaces these figures."
    )
