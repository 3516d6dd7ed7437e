"""What a benchmark asks of the machine: the CPUs shared out, and enough open files.

:func:`split_cpus` gives the servers the first CPU this process may use and the
load generator the rest, so that a figure is the server's and not the outcome
of a fight for one core; :func:`raise_fd_limit` lifts this process's open-file
limit, which every server it starts inherits.  Linux only, as
``sched_getaffinity`` is.

This module pins nothing itself (``conformance.launcher.spawn`` pins a server,
a benchmark pins its own process), nor does it measure a server's memory
(:meth:`conformance.launcher.RunningServer.rss`: its process and every process
in its group).
"""

from __future__ import annotations

import os
import resource
import sys

__all__ = ["raise_fd_limit", "split_cpus"]


def split_cpus() -> tuple[set[int], set[int]]:
    """(server CPUs, load generator CPUs): the first usable CPU for the servers, the rest for the clients.

    With a single CPU both are that one, and a line on stderr says so.
    """
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        print("bench: one CPU only, so the servers and the load generator share it", file=sys.stderr)
        return set(usable), set(usable)
    return {usable[0]}, set(usable[1:])


def raise_fd_limit(needed: int) -> int:
    """Raise this process's open-file limit to ``needed`` (children inherit it), or exit saying what to raise.

    The limit now, which may be above ``needed``.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"bench: needs {needed} open files, the hard limit is {hard}: raise it (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed
