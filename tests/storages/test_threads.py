"""sendfs's worker threads: results, errors, and cancellation that waits for the worker."""

from __future__ import annotations

import asyncio
import threading
import time

import anyio
import pytest

from sendfs.storages import threads

pytestmark = pytest.mark.anyio


def _slow(started: threading.Event, finished: list[float]) -> str:
    started.set()
    time.sleep(0.2)
    finished.append(time.monotonic())
    return "done"


async def test_the_result_and_the_error_come_back() -> None:
    assert await threads.run_sync(pow, 2, 10) == 1024
    with pytest.raises(ZeroDivisionError):
        await threads.run_sync(divmod, 1, 0)
    name = await threads.run_sync(lambda: threading.current_thread().name)
    assert name.startswith("sendfs-io")


async def test_an_anyio_cancellation_waits_for_the_worker() -> None:
    started, finished = threading.Event(), list[float]()
    with anyio.move_on_after(0.05) as scope:
        await threads.run_sync(_slow, started, finished)
        pytest.fail("the cancellation should have been delivered once the worker returned")
    assert scope.cancelled_caught
    assert finished  # the worker had returned before the scope exited


async def test_a_plain_task_cancel_waits_for_the_worker() -> None:
    started, finished = threading.Event(), list[float]()
    task = asyncio.ensure_future(threads.run_sync(_slow, started, finished))
    await anyio.to_thread.run_sync(started.wait)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished
    cancelled_at = time.monotonic()
    assert finished[0] <= cancelled_at


async def test_many_concurrent_calls() -> None:
    async with anyio.create_task_group() as group:
        results: list[int] = []

        async def one(value: int) -> None:
            results.append(await threads.run_sync(abs, -value))

        for value in range(200):
            group.start_soon(one, value)
    assert sorted(results) == list(range(200))
