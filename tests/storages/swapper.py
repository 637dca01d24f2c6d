"""Swap two paths as fast as possible until SIGTERM: the attacker of the rename-race tests.

``python -m tests.storages.swapper FIRST SECOND`` exchanges the two paths with
``renameat2(RENAME_EXCHANGE)`` where the kernel and the file system have it, else with renames
through a third name (``FIRST.hold``). It prints ``ready`` once it runs and, on SIGTERM, the
number of swaps, leaving both paths as they were. A separate process, so that its loop does
not take the GIL from the requests it races.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchanger() -> Callable[[bytes, bytes], int] | None:
    """``renameat2(RENAME_EXCHANGE)`` returning 0 or an errno; None without it."""
    if not sys.platform.startswith("linux"):
        return None
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return None

    def exchange(first: bytes, second: bytes) -> int:
        done = renameat2(_AT_FDCWD, first, _AT_FDCWD, second, _RENAME_EXCHANGE)
        return 0 if done == 0 else ctypes.get_errno()

    return exchange


def swapper(first: bytes, second: bytes) -> Callable[[], None]:
    """One swap there and back: an exchange each way, or four renames."""
    exchange = exchanger()
    if exchange is not None and exchange(first, second) == 0 and exchange(first, second) == 0:

        def swap_twice() -> None:
            for _ in range(2):
                code = exchange(first, second)
                if code:
                    raise OSError(code, os.strerror(code))

        return swap_twice
    hold = first + b".hold"

    def rename_around() -> None:
        os.rename(first, hold)
        os.rename(second, first)
        os.rename(first, second)
        os.rename(hold, first)

    return rename_around


def main(first: str, second: str) -> int:
    stopped: list[int] = []
    signal.signal(signal.SIGTERM, lambda number, frame: stopped.append(number))
    swap = swapper(os.fsencode(first), os.fsencode(second))
    print("ready", flush=True)
    swaps = 0
    while not stopped:
        swap()  # a signal lands between two swaps: the paths are back as they were
        swaps += 2
    print(swaps, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
