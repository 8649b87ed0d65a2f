"""The queues between a Job's stages: they hand items on, and stop waiting once a stage
failed (unit tests: no server involved)."""

from __future__ import annotations

import asyncio

import pytest

from processor.handoff import Handoff, PipelineAbortedError, run_stage


async def test_items_pass_in_order() -> None:
    handoff: Handoff[int] = Handoff(2, asyncio.Event())
    await handoff.put(1)
    await handoff.put(2)
    assert [await handoff.get(), await handoff.get()] == [1, 2]


@pytest.mark.parametrize("waiting_in", ["get", "put"])
async def test_a_stage_waiting_on_a_handoff_stops_when_another_fails(waiting_in: str) -> None:
    failed = asyncio.Event()
    handoff: Handoff[int] = Handoff(1, failed)
    if waiting_in == "put":
        await handoff.put(0)  # full: the next put waits
    waiting = asyncio.create_task(handoff.get() if waiting_in == "get" else handoff.put(1))
    await asyncio.sleep(0)  # (it is waiting now: nothing else can wake it)
    failed.set()
    with pytest.raises(PipelineAbortedError):
        await asyncio.wait_for(waiting, 60)
    await asyncio.sleep(0)
    # The queue operation it gave up was cancelled, not left to take a later item.
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_after_a_failure_nothing_waits() -> None:
    failed = asyncio.Event()
    failed.set()
    handoff: Handoff[int] = Handoff(1, failed)
    with pytest.raises(PipelineAbortedError):
        await handoff.get()
    with pytest.raises(PipelineAbortedError):
        await handoff.put(1)


async def test_a_failing_stage_sets_failed_and_an_aborted_one_ends_quietly() -> None:
    failed = asyncio.Event()

    async def fails() -> None:
        raise ValueError("boom")

    async def aborted() -> None:
        raise PipelineAbortedError

    with pytest.raises(ValueError, match="boom"):
        await run_stage(fails(), failed)
    assert failed.is_set()
    quiet = asyncio.Event()
    await run_stage(aborted(), quiet)
    assert not quiet.is_set()
