"""Section 3: in-memory exports, ``send_file(io.BytesIO(DATA))`` of a big ``bytes`` made at startup.

Paired with what users write without sendfs, in the same run: Starlette's ``StreamingResponse``
over ``read(256 KiB)`` calls (``benchmarks.apps.starlette_bytesio_app``), under the same
uvicorn. Throughput and server CPU: one download at a time, alternated. RSS growth and ``/ping``
p99: fresh servers under concurrent downloads (:mod:`benchmarks.underload`), alternated. Each
server holds the data from startup, so RSS growth is what serving adds to it: a whole copy per
download would be ``concurrency`` times the size.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.local import cpu_cell, metered, speed_cell
from benchmarks.measure import CPU_PER_GIB, MB_PER_S
from benchmarks.report import Row
from benchmarks.rounds import Results, Settings, alternate
from benchmarks.servers import Servers
from benchmarks.underload import describe_load, fresh_uvicorn, load_rows, under_load

__all__ = ["in_memory_exports"]

Progress = Callable[[str], None]

SECTION = "3 in-memory"
SENDFS = "uvicorn: sendfs send_file"
STARLETTE = "uvicorn: Starlette StreamingResponse over read(256 KiB)"
APPS = (("sendfs_bytesio_app", SENDFS), ("starlette_bytesio_app", STARLETTE))
RSS_TARGET_MIB = 64.0
PING_TARGET_MS = 20.0


def _throughput(servers: Servers, settings: Settings, progress: Progress) -> Results:
    """MB/s and CPU of one download at a time, the two servers alternated round by round."""
    size = settings.bytesio_size
    started = [servers.uvicorn(factory) for factory, _ in APPS]
    try:
        contenders = {
            label: metered(server, "/export", size)
            for server, (_, label) in zip(started, APPS, strict=True)
        }
        return alternate(contenders, settings.rounds, progress)
    finally:
        for server in started:
            servers.stop(server)


def in_memory_exports(servers: Servers, settings: Settings, progress: Progress) -> list[Row]:
    """3. Throughput, CPU, RSS growth and ``/ping`` p99 serving a BytesIO over a big ``bytes``."""
    size = settings.bytesio_size
    speeds = _throughput(servers, settings, progress)
    loads = alternate(
        {
            label: under_load(servers, fresh_uvicorn(servers, factory), "/export", size, settings)
            for factory, label in APPS
        },
        settings.rounds,
        progress,
        warm_up=False,
    )
    mine, theirs = speeds[SENDFS], speeds[STARLETTE]
    download = f"one {size // (1024 * 1024)} MiB BytesIO download"
    return [
        Row(
            SECTION,
            f"{download}, {SENDFS}",
            speed_cell(mine[MB_PER_S], theirs[MB_PER_S], "Starlette"),
            cpu_cell(mine[CPU_PER_GIB], theirs[CPU_PER_GIB], "Starlette"),
        ),
        Row(
            SECTION,
            f"{download}, {STARLETTE}",
            speed_cell(theirs[MB_PER_S]),
            cpu_cell(theirs[CPU_PER_GIB]),
        ),
        *load_rows(
            SECTION,
            describe_load(settings, size, "BytesIO downloads"),
            loads,
            SENDFS,
            RSS_TARGET_MIB,
            PING_TARGET_MS,
        ),
    ]
