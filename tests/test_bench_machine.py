"""bench.machine: the CPUs shared out between the servers and the load generator, and the open-file limit.

Each check runs in a child process with the affinity or limit it sets there,
so that the test process keeps its own.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SPLIT = "from bench.machine import split_cpus; servers, clients = split_cpus(); print(sorted(servers), sorted(clients))"


def child(code: str, before: Callable[[], None]) -> subprocess.CompletedProcess[str]:
    """``code`` in a new Python, after ``before`` has run in the child (its affinity, its limits)."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, preexec_fn=before, timeout=60
    )


def test_one_cpu_is_shared_and_stderr_says_so() -> None:
    cpu = min(os.sched_getaffinity(0))
    done = child(SPLIT, lambda: os.sched_setaffinity(0, {cpu}))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == f"[{cpu}] [{cpu}]"
    assert "one CPU only" in done.stderr


def test_the_servers_get_the_first_cpu_and_the_load_generator_the_rest() -> None:
    usable = sorted(os.sched_getaffinity(0))
    two = usable[:2]
    done = child(SPLIT, lambda: os.sched_setaffinity(0, two))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == f"[{two[0]}] {two[1:] or two}"


def test_the_open_file_limit_is_raised_to_what_is_needed() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    code = (
        "import resource; from bench.machine import raise_fd_limit; "
        f"print(raise_fd_limit({needed}), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    done = child(code, lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(needed), str(needed)]


def test_a_need_above_the_hard_limit_stops_with_what_to_raise() -> None:
    code = "from bench.machine import raise_fd_limit; raise_fd_limit(512)"
    done = child(code, lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)))
    assert done.returncode == 1
    assert "bench: needs 512 open files, the hard limit is 256: raise it (ulimit -Hn)" in done.stderr
