"""What the event loop holds right now: its live tasks, and how many of them are the app's.

A connection that ends must leave no task behind.  ``/metrics`` exports two counts:

- ``asgi_ws_event_loop_tasks``, from :func:`task_count`: every task of the
  running event loop, on asyncio (``asyncio.all_tasks``) and on trio (the tree
  of nurseries under the root task), the server's own included.  The server's
  part moves with its own housekeeping (hypercorn keeps a task per HTTP
  connection until its keep-alive ends), so it is for watching, not for exact
  comparisons;
- ``asgi_ws_app_tasks``, from :func:`app_task_count`: the tasks the app started
  itself (a connection's sender, its ``/stream`` pushes, the Redis broker's
  tasks), and only those.  With no connection open it is back to what the
  broker needs: 0 with the memory broker.  A leak shows here first.

The app's tasks are counted by the tasks themselves rather than found by
inspecting the loop: every coroutine function the app hands to a task group is
wrapped by :func:`counted_task`, which adds one when the task starts running and
takes it away in a ``finally``, so a task that returns, raises or is cancelled
is uncounted alike.  Inspecting the loop cannot tell: anyio 4 runs every task it
starts through a wrapper coroutine of its own (``TaskHandle._run_coro``), so a
task's root coroutine is anyio's code, never the app's, on asyncio as on trio.
That is why ``asgi_ws_app_tasks`` once read 0 with 15,000 pushes waiting.

The count is per process, like the event loop it describes: every app built in
the process adds to it.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

__all__ = ["app_task_count", "counted_task", "task_count"]

P = ParamSpec("P")
R = TypeVar("R")

_app_tasks = 0  # live tasks running a counted_task function


def counted_task(function: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Mark ``function`` as the body of a task the app starts, so that :func:`app_task_count` counts it.

    One more frame per task, not per message: the hot loops run inside ``function``.
    """

    @functools.wraps(function)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        global _app_tasks
        _app_tasks += 1
        try:
            return await function(*args, **kwargs)
        finally:
            _app_tasks -= 1

    return run


def app_task_count() -> int:
    """Live tasks the app started (those running a :func:`counted_task` function)."""
    return _app_tasks


def task_count() -> int:
    """Live tasks of the event loop this is called from, the caller's own task included."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # no asyncio loop running: trio, if anything
        pass
    trio = sys.modules.get("trio")
    if trio is None:
        raise RuntimeError("the event loop is neither asyncio nor trio")
    count = 0
    pending = [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        count += 1
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return count
