"""Which package versions a run stood on, and whether they are the ones ``uv.lock`` pins (contract §12).

The published matrix and the benchmark results are statements about exact
versions. A run records them here, from the environment it ran in:
:func:`installed` follows each root package's requirements (the ones its own
extras do not gate) through every installed distribution, so that a server's
protocol libraries (h11, h2, wsproto, Twisted ...) are named as well as the
server. :func:`locked` reads ``uv.lock``, and :func:`disagreements` says where
a record and the lock differ: ``tests/test_evidence.py`` fails on any, so that a
lock refresh cannot land with a matrix that describes the old versions.

This module owns no policy about what to do with a disagreement; it only finds
them. It needs nothing but the standard library.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

__all__ = ["LOCK", "disagreements", "installed", "locked", "normalise"]

LOCK = Path(__file__).resolve().parent.parent / "uv.lock"

# The name at the start of a requirement string (PEP 508), before any extras, version or marker.
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
# A requirement that only one of the package's own extras brings in, e.g. "httptools; extra == 'standard'".
_EXTRA_ONLY = re.compile(r"""\bextra\s*==""")


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them: ``prometheus_client`` -> ``prometheus-client``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(roots: Iterable[str]) -> dict[str, str]:
    """The installed version of every root and of everything they require, sorted by name.

    A requirement gated by one of the package's own extras is not followed, and one
    that is not installed (its marker excluded it here) is left out. Other markers are
    not evaluated: a requirement for another platform that something else installed
    is recorded too, which costs a line and never hides a version.
    """
    found: dict[str, str] = {}
    pending = [normalise(root) for root in roots]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        for requirement in metadata.requires(name) or []:
            head, _, marker = requirement.partition(";")
            matched = _NAME.match(head)
            if matched and not _EXTRA_ONLY.search(marker):
                pending.append(normalise(matched.group(1)))
    return dict(sorted(found.items()))


def locked(lock: Path = LOCK) -> dict[str, set[str]]:
    """Every package ``uv.lock`` pins, with its version(s).

    A universal lock may pin one package at two versions, each for its own Pythons
    (numpy, for example), so each name maps to a set.
    """
    with lock.open("rb") as file:
        packages = tomllib.load(file).get("package", [])
    versions: dict[str, set[str]] = {}
    for package in packages:
        if "version" in package:
            versions.setdefault(normalise(package["name"]), set()).add(package["version"])
    return versions


def disagreements(recorded: Mapping[str, str], pinned: Mapping[str, set[str]]) -> dict[str, str]:
    """Each recorded package whose version is not one the lock pins: name -> "recorded (uv.lock: x)"."""
    found = {}
    for name, version in recorded.items():
        wanted = pinned.get(normalise(name))
        if wanted is None:
            found[name] = f"{version} (not in uv.lock)"
        elif version not in wanted:
            found[name] = f"{version} (uv.lock: {', '.join(sorted(wanted))})"
    return found
