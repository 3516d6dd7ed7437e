"""What the event loop holds right now: its live tasks (SPEC §7, "nothing leaks").

A connection that ends must leave no task behind.  :func:`tasks` lists every
task of the running event loop, on asyncio (``asyncio.all_tasks``) and on trio
(the tree of nurseries under the root task), as the coroutine each one runs.
``/metrics`` exports two counts:

- ``asgi_ws_event_loop_tasks``: all of them, the server's own included.  The
  server's part moves with its own housekeeping (hypercorn keeps a task per
  HTTP connection until its keep-alive ends), so it is for watching, not for
  exact comparisons;
- ``asgi_ws_app_tasks``: the tasks whose coroutine is this package's code (a
  connection's sender and stream pushes, the broker's tasks).
  With no connection open it is back to what the broker needs: 0 with the
  memory broker.  A leak shows here first.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from types import CodeType

__all__ = ["app_task_count", "task_count"]

PACKAGE = str(Path(__file__).resolve().parent)


def task_count() -> int:
    """Live tasks of the event loop this is called from, the caller's own task included."""
    return len(_coroutine_codes())


def app_task_count() -> int:
    """Live tasks running this package's code at their root."""
    return sum(1 for code in _coroutine_codes() if code is not None and code.co_filename.startswith(PACKAGE))


def _coroutine_codes() -> list[CodeType | None]:
    """The code object of every live task's coroutine (None where a task runs something else)."""
    try:
        return [getattr(task.get_coro(), "cr_code", None) for task in asyncio.all_tasks()]
    except RuntimeError:  # no asyncio loop running: trio, if anything
        pass
    trio = sys.modules.get("trio")
    if trio is None:
        raise RuntimeError("the event loop is neither asyncio nor trio")
    codes = []
    pending = [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        codes.append(getattr(task.coro, "cr_code", None))
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return codes
