"""asgi_ws.wakeups: at most a batch of woken consumers not yet run, woken in the order asked."""

from __future__ import annotations

from dataclasses import dataclass

from asgi_ws.wakeups import WAKE_BATCH, Wakeups


@dataclass(eq=False)
class FakeConsumer:
    """A parked consumer: woken once, or gone."""

    name: str
    parked: bool = True  # False once woken, or if its task has gone
    woken: int = 0  # how many times it was woken

    def wake(self) -> bool:
        if not self.parked:
            return False
        self.parked = False
        self.woken += 1
        return True


def consumers(count: int) -> list[FakeConsumer]:
    return [FakeConsumer(f"c{number}") for number in range(count)]


def test_the_default_batch_is_the_module_constant() -> None:
    assert Wakeups().batch == WAKE_BATCH


def test_wakes_at_once_up_to_the_batch_and_queues_the_rest() -> None:
    wakeups = Wakeups(2)
    a, b, c, d = consumers(4)
    for consumer in (a, b, c, d):
        wakeups.wake(consumer)
    assert [consumer.woken for consumer in (a, b, c, d)] == [1, 1, 0, 0]
    assert wakeups.waiting == 2


def test_each_consumer_that_ran_wakes_the_next_in_the_order_asked() -> None:
    wakeups = Wakeups(1)
    queue = consumers(4)
    for consumer in queue:
        wakeups.wake(consumer)
    order = [consumer.name for consumer in queue if consumer.woken]
    for _ in range(3):
        wakeups.ran()
        order.extend(consumer.name for consumer in queue if consumer.woken and consumer.name not in order)
    assert order == ["c0", "c1", "c2", "c3"]
    assert wakeups.waiting == 0


def test_a_consumer_gone_before_its_turn_is_skipped_and_takes_no_place() -> None:
    wakeups = Wakeups(1)
    first, gone, last = consumers(3)
    for consumer in (first, gone, last):
        wakeups.wake(consumer)
    gone.parked = False  # its task was cancelled while it waited for its turn
    wakeups.ran()  # first ran: gone is skipped, last is woken in the same call
    assert (gone.woken, last.woken) == (0, 1)
    assert wakeups.waiting == 0


def test_a_consumer_already_gone_when_asked_takes_no_place() -> None:
    wakeups = Wakeups(1)
    gone, next_one = consumers(2)
    gone.parked = False
    wakeups.wake(gone)
    wakeups.wake(next_one)  # the one place is still free
    assert (gone.woken, next_one.woken) == (0, 1)


def test_a_place_freed_while_nothing_waits_is_there_for_the_next() -> None:
    wakeups = Wakeups(1)
    first, second = consumers(2)
    wakeups.wake(first)
    wakeups.ran()
    wakeups.wake(second)
    assert second.woken == 1
