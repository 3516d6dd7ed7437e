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
    assert await outbox.get() == (1, 0)
    assert outbox.offer(3)
    assert [await outbox.get(), await outbox.get()] == [(2, 0), (3, 0)]


async def test_get_waits_for_an_offer() -> None:
    outbox: Outbox[str] = Outbox(1)
    got: list[str] = []

    async def consume() -> None:
        got.append((await outbox.get())[0])

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        assert got == []
        outbox.offer("hello")
    assert got == ["hello"]


async def test_offer_refuses_past_the_byte_bound_before_the_count() -> None:
    outbox: Outbox[str] = Outbox(100, max_bytes=10)
    assert outbox.offer("a", 4)
    assert outbox.offer("b", 6)  # exactly at the bound
    assert not outbox.offer("c", 1)
    assert (len(outbox), outbox.bytes) == (2, 10)


async def test_get_gives_the_bytes_back() -> None:
    outbox: Outbox[str] = Outbox(100, max_bytes=10)
    outbox.offer("a", 4)
    outbox.offer("b", 6)
    assert await outbox.get() == ("a", 4)  # with the size it was offered with
    assert outbox.bytes == 6
    assert outbox.offer("c", 4)
    assert [await outbox.get(), await outbox.get()] == [("b", 6), ("c", 4)]
    assert outbox.bytes == 0


async def test_the_count_bound_still_applies_to_small_items() -> None:
    outbox: Outbox[str] = Outbox(2, max_bytes=1000)
    assert outbox.offer("a", 1)
    assert outbox.offer("b", 1)
    assert not outbox.offer("c", 1)


async def test_an_empty_outbox_takes_one_item_over_the_byte_bound() -> None:
    outbox: Outbox[str] = Outbox(100, max_bytes=10)
    assert outbox.offer("big", 50)  # else a small max_bytes would close every reader of a big message
    assert not outbox.offer("small", 1)
    assert await outbox.get() == ("big", 50)
    assert outbox.offer("small", 1)


async def test_clear_forgets_the_bytes_too() -> None:
    outbox: Outbox[str] = Outbox(100, max_bytes=10)
    outbox.offer("a", 10)
    assert outbox.clear() == 1
    assert outbox.bytes == 0
    assert outbox.offer("b", 10)
