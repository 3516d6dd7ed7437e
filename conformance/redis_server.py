"""A real ``redis-server`` for tests and benchmarks: started on a free port, killed and restarted at will.

The broker tests need to take Redis away and bring it back on the same port, so
this wraps one ``redis-server`` process (the Debian package's binary) with
persistence off, or, for a test that needs a restart to keep the data, with an
append-only file written on every command.  It is stopped by its own PID, never by name.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .launcher import HOST, free_port

__all__ = ["MISSING", "RedisServer"]

READY_TIMEOUT = 10.0  # seconds for redis-server to answer PING
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL

MISSING = (
    "redis-server is not installed, and the Redis broker tests need a real one: "
    "apt-get install -y redis-server (or pass --no-redis to run without those tests)"
)


class RedisServer:
    """One redis-server process on ``HOST`` and a port of its own, which survives restarts."""

    def __init__(self, log_dir: Path, *, persistent: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(MISSING)
        self.binary = binary
        self.log_dir = log_dir  # its logs, and its append-only file when persistent
        self.persistent = persistent  # a restart keeps every acknowledged write (appendfsync always)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        """Start (or start again) on the same port, and wait until it answers PING."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        persistence = ("--appendonly", "yes", "--appendfsync", "always") if self.persistent else ("--appendonly", "no")
        argv = [
            self.binary,
            *("--bind", HOST, "--port", str(self.port)),
            *("--save", "", *persistence),  # no snapshots; an append-only file only if persistent
            *("--dir", str(self.log_dir)),
        ]
        with (self.log_dir / f"redis-{self.port}-{self.starts}.log").open("wb") as log:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not start; see {self.log_dir}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: Redis vanishes at once, as in a crash.  Its clients see their connections reset."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM, a grace period, then SIGKILL."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            self.kill()

    def answers(self) -> bool:
        """True if PING on a new connection gets PONG."""
        with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
        return False

    def subscribers(self, channel: str) -> int:
        """How many connections Redis has subscribed to ``channel`` (PUBSUB NUMSUB)."""
        import redis  # the redis extra; only the Redis tests and benchmarks call this

        with redis.Redis(host=HOST, port=self.port) as client:
            ((_, count),) = client.pubsub_numsub(channel)
            return int(count)
