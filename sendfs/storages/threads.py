"""Worker threads for blocking file I/O: one hop per call, waited for even when cancelled.

Local files are read one chunk per hop to a worker thread, so the cost of a hop is paid once
per 256 KiB of every download and once per small file. Under asyncio, sendfs hands the call to
an executor of its own with ``loop.run_in_executor``: with 16 concurrent requests a hop costs
about 30-60 us of CPU there, against 100-140 us through ``anyio.to_thread.run_sync`` (its
cancel scopes and capacity limiter), on the 2-core development machines. Other event loops
(trio through anyio) use ``anyio.to_thread.run_sync``.

A call is never abandoned: when the waiting task is cancelled, it still waits for the worker
to return before the cancellation goes on, as ``anyio.to_thread.run_sync`` does by default.
The caller's ``finally`` closes file descriptors the worker may still be using, and a
descriptor closed under a running ``pread`` could be reused by another file in between.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

__all__ = ["MAX_WORKERS", "run_sync"]

_T = TypeVar("_T")

#: Worker threads of sendfs's executor (anyio's default limiter allows 40).
MAX_WORKERS = 32

_lock = threading.Lock()
_state: dict[str, object] = {}


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    """The process's executor, made on first use (a forked child makes its own)."""
    with _lock:
        executor = _state.get("executor")
        if isinstance(executor, concurrent.futures.ThreadPoolExecutor) and (
            _state.get("pid") == os.getpid()
        ):
            return executor
        made = concurrent.futures.ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="sendfs-io")
        _state.update(executor=made, pid=os.getpid())
        return made


async def run_sync(func: Callable[..., _T], *args: object) -> _T:
    """Run ``func(*args)`` in a worker thread and return its result.

    Args:
        func: A blocking function (file I/O).
        *args: Its arguments.

    Raises:
        Exception: What ``func`` raised.
        asyncio.CancelledError: The task was cancelled; raised once ``func`` returned.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio (trio through anyio)
        return await anyio.to_thread.run_sync(func, *args)
    future = loop.run_in_executor(_executor(), func, *args)
    cancelled = False
    with anyio.CancelScope(shield=True):  # anyio's scopes wait outside
        while True:
            try:
                result = await asyncio.shield(future)
                break
            except asyncio.CancelledError:
                if future.cancelled():  # the executor itself was shut down
                    raise
                if future.done():
                    result = future.result()
                    cancelled = True
                    break
                cancelled = True  # a plain task.cancel(): wait for the worker all the same
    if cancelled:
        raise asyncio.CancelledError
    await anyio.lowlevel.checkpoint_if_cancelled()  # an enclosing scope cancelled meanwhile
    return result
