"""asgi_ws.idle: the idle timeout as a cancel scope's deadline."""

from __future__ import annotations

import math
from time import monotonic

import anyio
import pytest

from asgi_ws.idle import IDLE_SLACK, IdleDeadline

pytestmark = pytest.mark.anyio


async def test_the_deadline_is_set_and_moved_with_slack() -> None:
    scope = anyio.CancelScope()
    idle = IdleDeadline(scope, 16.0)
    assert idle.due == math.inf
    before = anyio.current_time()
    now = monotonic()
    idle.start(now)
    assert idle.due == now + 16.0 / IDLE_SLACK
    assert before + 16.0 <= scope.deadline <= anyio.current_time() + 17.0
    idle.note_sent()  # not due for another second: the deadline stays
    assert idle.due == now + 1.0
    idle.move(now + 5)
    assert idle.due == now + 6.0


async def test_off_means_no_deadline() -> None:
    scope = anyio.CancelScope()
    idle = IdleDeadline(scope, 0)
    idle.start(100.0)
    idle.note_sent()
    assert idle.due == math.inf
    assert scope.deadline == math.inf


async def test_an_idle_scope_is_cancelled_after_the_timeout() -> None:
    with anyio.CancelScope() as scope:
        IdleDeadline(scope, 0.05).start(0.0)
        await anyio.sleep(1)
    assert scope.cancelled_caught


async def test_the_deadline_says_whether_it_expired() -> None:
    scope = anyio.CancelScope()
    idle = IdleDeadline(scope, 0.05)
    idle.start(monotonic())
    assert not idle.expired()
    with scope:
        await anyio.sleep(1)  # cancelled by the deadline, not by anything else
    assert scope.cancelled_caught
    assert idle.expired()


async def test_a_scope_cancelled_before_its_deadline_did_not_expire() -> None:
    scope = anyio.CancelScope()
    idle = IdleDeadline(scope, 60.0)
    idle.start(monotonic())
    with scope:
        scope.cancel()  # as a policy or the client's leaving does
        await anyio.sleep(1)
    assert scope.cancelled_caught
    assert not idle.expired()
    assert not IdleDeadline(anyio.CancelScope(), 0).expired()  # off: never
