"""conformance.runner: waiting checks run side by side, each outcome its own."""

from __future__ import annotations

import asyncio
from typing import cast

from conformance.checks import Check, Target, Transcript
from conformance.runner import _run_together

SERVER = "test-server"
TARGET = cast(Target, object())  # the checks below never reach a server


def _check(name: str, run: object) -> Check:
    return Check("probe", name, "a check for the runner's test", "none", run, waits=True)  # type: ignore[arg-type]


def test_waiting_checks_run_side_by_side() -> None:
    """Each check can finish only while the other runs: one at a time, the first would time out."""

    async def scenario() -> list[str | None]:
        first_started, second_started = asyncio.Event(), asyncio.Event()

        def meeting(mine: asyncio.Event, theirs: asyncio.Event) -> object:
            async def run(target: Target) -> Transcript:
                mine.set()
                await asyncio.wait_for(theirs.wait(), 5.0)
                return {"met": True}

            return run

        outcomes = await _run_together(
            [
                _check("first", meeting(first_started, second_started)),
                _check("second", meeting(second_started, first_started)),
            ],
            SERVER,
            TARGET,
            progress=lambda line: None,
        )
        return [outcome.error for outcome in outcomes]

    assert asyncio.run(scenario()) == [None, None]


def test_outcomes_keep_the_order_given_and_an_error_stays_with_its_check() -> None:
    async def slow_ok(target: Target) -> Transcript:
        await asyncio.sleep(0.05)
        return {"answer": 1}

    async def fails_at_once(target: Target) -> Transcript:
        raise ValueError("no such thing")

    outcomes = asyncio.run(
        _run_together([_check("slow", slow_ok), _check("fails", fails_at_once)], SERVER, TARGET, lambda line: None)
    )
    assert [(outcome.check, outcome.transcript) for outcome in outcomes] == [("slow", {"answer": 1}), ("fails", None)]
    assert (outcomes[1].error or "").startswith("ValueError: no such thing")
