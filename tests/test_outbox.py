"""asgi_ws.outbox: bounded, never-waiting offers and a waiting get."""

from __future__ import annotations

import anyio
import pytest

from asgi_ws.outbox import Outbox

pytestmark = pytest.mark.anyio


async def test_offer_refuses_when_full() -> None:
    outbox: Outbox[int] = Outbox(2)
    assert outbox.offer(1)
    assert outbox.offer(2)
    assert not outbox.offer(3)
    assert len(outbox) == 2


async def test_get_returns_oldest_first_and_frees_room() -> None:
    outbox: Outbox[int] = Outbox(2)
    outbox.offer(1)
    outbox.offer(2)
    assert await outbox.get() == 1
    assert outbox.offer(3)
    assert [await outbox.get(), await outbox.get()] == [2, 3]


async def test_get_waits_for_an_offer() -> None:
    outbox: Outbox[str] = Outbox(1)
    got: list[str] = []

    async def consume() -> None:
        got.append(await outbox.get())

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        assert got == []
        outbox.offer("hello")
    assert got == ["hello"]
