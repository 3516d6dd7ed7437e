"""asgi_ws.outbox: bounded, never-waiting offers and a waiting get."""

from __future__ import annotations

import itertools

import anyio
import anyio.lowlevel
import pytest

from asgi_ws.outbox import Outbox
from asgi_ws.wakeups import Wakeups

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


# Waking consumers through Wakeups: a batch per pass of the event loop


async def _consume(outbox: Outbox[str], got: list[str], scope: anyio.CancelScope) -> None:
    with scope:
        while True:
            got.append((await outbox.get())[0])


async def test_a_fan_out_wakes_a_batch_per_pass_and_other_tasks_run_in_between() -> None:
    wakeups = Wakeups(4)
    outboxes: list[Outbox[str]] = [Outbox(10, wakeups=wakeups) for _ in range(100)]
    got: list[list[str]] = [[] for _ in outboxes]
    seen: list[int] = []  # how many consumers had their message, at each turn of another task

    def delivered() -> int:
        return sum(1 for texts in got if texts)

    async def other_task() -> None:
        while delivered() < len(outboxes):
            seen.append(delivered())
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as task_group:
        for outbox, texts in zip(outboxes, got, strict=True):
            task_group.start_soon(_consume, outbox, texts, anyio.CancelScope())
        await anyio.wait_all_tasks_blocked()
        task_group.start_soon(other_task)
        for outbox in outboxes:
            assert outbox.offer("broadcast")
        await anyio.wait_all_tasks_blocked()
        task_group.cancel_scope.cancel()
    assert got == [["broadcast"]] * len(outboxes)
    steps = [later - earlier for earlier, later in itertools.pairwise(seen)]
    # The other task ran while the fan-out was under way, and no more than a batch ran on either side of
    # its turn: without Wakeups, all 100 consumers would run in one pass.
    assert any(0 < count < len(outboxes) for count in seen)
    assert max(steps) <= 2 * wakeups.batch


async def test_messages_keep_their_order_while_the_wake_up_waits_its_turn() -> None:
    wakeups = Wakeups(1)
    outboxes: list[Outbox[str]] = [Outbox(10, wakeups=wakeups) for _ in range(5)]
    got: list[list[str]] = [[] for _ in outboxes]
    async with anyio.create_task_group() as task_group:
        for outbox, texts in zip(outboxes, got, strict=True):
            task_group.start_soon(_consume, outbox, texts, anyio.CancelScope())
        await anyio.wait_all_tasks_blocked()
        for text in ("first", "second", "third"):  # each a broadcast to all five, while four wait their turn
            for outbox in outboxes:
                assert outbox.offer(text)
        await anyio.wait_all_tasks_blocked()
        task_group.cancel_scope.cancel()
    assert got == [["first", "second", "third"]] * len(outboxes)


async def test_a_consumer_waiting_its_turn_is_still_refused_once_full() -> None:
    wakeups = Wakeups(1)
    first: Outbox[str] = Outbox(2, wakeups=wakeups)
    waiting: Outbox[str] = Outbox(2, wakeups=wakeups)
    async with anyio.create_task_group() as task_group:
        for outbox in (first, waiting):
            task_group.start_soon(_consume, outbox, [], anyio.CancelScope())
        await anyio.wait_all_tasks_blocked()
        assert first.offer("a")  # woken: the one place
        assert waiting.offer("a")
        assert waiting.offer("b")
        assert not waiting.offer("c")  # full: the caller kicks it (4503), turn or no turn
        task_group.cancel_scope.cancel()


async def test_a_consumer_woken_as_it_is_cancelled_gives_its_place_back() -> None:
    wakeups = Wakeups(1)
    woken: Outbox[str] = Outbox(10, wakeups=wakeups)
    next_one: Outbox[str] = Outbox(10, wakeups=wakeups)
    woken_scope = anyio.CancelScope()
    got: list[str] = []
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(_consume, woken, [], woken_scope)
        task_group.start_soon(_consume, next_one, got, anyio.CancelScope())
        await anyio.wait_all_tasks_blocked()
        woken_scope.cancel()  # its task is cancelled, and before it runs:
        woken.offer("x")  # it is woken, which takes the one place
        next_one.offer("y")  # this one waits its turn
        await anyio.wait_all_tasks_blocked()
        task_group.cancel_scope.cancel()
    assert got == ["y"]
    assert wakeups.waiting == 0


async def test_a_consumer_cancelled_while_waiting_its_turn_is_skipped() -> None:
    wakeups = Wakeups(1)
    outboxes: list[Outbox[str]] = [Outbox(10, wakeups=wakeups) for _ in range(3)]
    got: list[list[str]] = [[] for _ in outboxes]
    scopes = [anyio.CancelScope() for _ in outboxes]
    async with anyio.create_task_group() as task_group:
        for outbox, texts, scope in zip(outboxes, got, scopes, strict=True):
            task_group.start_soon(_consume, outbox, texts, scope)
        await anyio.wait_all_tasks_blocked()
        for outbox in outboxes:
            outbox.offer("x")  # the first is woken, the other two wait their turn
        scopes[1].cancel()  # the second leaves before its turn
        await anyio.wait_all_tasks_blocked()
        assert got == [["x"], [], ["x"]]
        outboxes[0].offer("again")  # no place was lost: woken at once
        await anyio.wait_all_tasks_blocked()
        task_group.cancel_scope.cancel()
    assert got[0] == ["x", "again"]
    assert wakeups.waiting == 0


async def test_wake_is_false_when_no_consumer_is_parked() -> None:
    outbox: Outbox[str] = Outbox(1)
    assert not outbox.wake()
