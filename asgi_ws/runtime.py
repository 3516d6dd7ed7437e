"""What the event loop holds right now: the number of live tasks (SPEC §7, "nothing leaks").

A connection that ends must leave no task behind.  :func:`task_count` counts
every task of the running event loop, on asyncio (``asyncio.all_tasks``) and on
trio (the tree of nurseries under the root task), so that tests and
``/metrics`` (``asgi_ws_event_loop_tasks``) can compare it with a baseline.
"""

from __future__ import annotations

import asyncio
import sys

__all__ = ["task_count"]


def task_count() -> int:
    """Live tasks of the event loop this is called from, the caller's own task included."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # no asyncio loop running: trio, if anything
        pass
    trio = sys.modules.get("trio")
    if trio is None:
        raise RuntimeError("task_count() needs a running asyncio or trio event loop")
    count = 0
    tasks = [trio.lowlevel.current_root_task()]
    while tasks:
        task = tasks.pop()
        count += 1
        for nursery in task.child_nurseries:
            tasks.extend(nursery.child_tasks)
    return count
