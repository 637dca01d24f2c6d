"""Section 8: in-memory exports, ``send_file(io.BytesIO(DATA))`` of a big ``bytes`` made at startup.

Side by side with what users write without sendfs, in the same run: Starlette's
``StreamingResponse`` over ``read(256 KiB)`` calls (``benchmarks.apps.starlette_bytesio_app``).
Each server holds the data from startup, so RSS growth is what serving adds to it: a whole
copy per download would be ``concurrency`` times the size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.data import MIB
from benchmarks.local import downloader, pings_during_downloads, show_pings
from benchmarks.measure import Growth, curl_download, rss_growth
from benchmarks.probes import Latencies
from benchmarks.report import Row, verdict
from benchmarks.rounds import Settings, Summary, alternate
from benchmarks.servers import Servers

__all__ = ["in_memory_exports"]

Progress = Callable[[str], None]

SECTION = "8 in-memory"
SENDFS = "sendfs send_file"
STARLETTE = "Starlette StreamingResponse over read(256 KiB)"
APPS = (("sendfs_bytesio_app", SENDFS), ("starlette_bytesio_app", STARLETTE))
RSS_TARGET_MIB = 64
PING_TARGET_MS = 20.0


@dataclass(frozen=True)
class UnderLoad:
    """One fresh server under concurrent downloads: its RSS growth and its ``/ping`` latency."""

    growth: Growth
    latencies: Latencies
    completed: int


def _throughput(servers: Servers, settings: Settings, progress: Progress) -> dict[str, Summary]:
    """MB/s of one download at a time, the two servers alternated round by round."""
    size = settings.bytesio_size
    started = [servers.uvicorn(factory) for factory, _ in APPS]
    try:
        contenders = {
            label: downloader(server.url + "/export", size)
            for server, (_, label) in zip(started, APPS, strict=True)
        }
        return alternate(contenders, settings.rounds, progress)
    finally:
        for server in started:
            servers.stop(server)


def _under_load(servers: Servers, factory: str, settings: Settings) -> UnderLoad:
    """RSS growth of a fresh server while pinging it during concurrent downloads."""
    server = servers.uvicorn(factory, name=f"uvicorn-{factory}-load")
    url, size = server.url + "/export", settings.bytesio_size
    measured: list[tuple[Latencies, int]] = []

    def load() -> str:
        measured.append(pings_during_downloads(server, url, settings))
        return f"{settings.concurrency} x {size // MIB} MiB downloads kept running"

    try:
        growth = rss_growth(server.pid, lambda: curl_download(url, size), load)
    finally:
        servers.stop(server)
    latencies, completed = measured[0]
    return UnderLoad(growth, latencies, completed)


def in_memory_exports(servers: Servers, settings: Settings, progress: Progress) -> list[Row]:
    """8. Throughput, RSS growth and ``/ping`` p99 serving a BytesIO over a big ``bytes``."""
    speeds = _throughput(servers, settings, progress)
    loads: dict[str, UnderLoad] = {}
    for factory, label in APPS:
        loads[label] = _under_load(servers, factory, settings)
        progress(f"{label}: RSS {loads[label].growth.show()}")
    return _rows(settings, speeds, loads)


def _rows(settings: Settings, speeds: dict[str, Summary], loads: dict[str, UnderLoad]) -> list[Row]:
    size, count = settings.bytesio_size // MIB, settings.concurrency
    rows = []
    for label in (SENDFS, STARLETTE):
        speed = speeds[label].show("MB/s")
        if label == SENDFS:
            speed += f", {speeds[SENDFS].ratio(speeds[STARLETTE]):.2f}x Starlette"
        rows.append(Row(SECTION, f"one {size} MiB BytesIO download, uvicorn: {label}", speed))
    for label in (SENDFS, STARLETTE):
        loaded, mine = loads[label], label == SENDFS
        growth, p99 = loaded.growth, loaded.latencies.percentile(0.99)
        rows += [
            Row(
                SECTION,
                f"RSS growth, {count} x {size} MiB BytesIO (uvicorn, {label})",
                growth.show(),
                f"< {RSS_TARGET_MIB} MiB" if mine else "",
                verdict(growth.mib < RSS_TARGET_MIB) if mine else "",
            ),
            Row(
                SECTION,
                f"/ping p99 during {count} x {size} MiB BytesIO downloads (uvicorn, {label})",
                show_pings(loaded.latencies, settings, loaded.completed),
                f"< {PING_TARGET_MS:g} ms" if mine else "",
                verdict(p99 < PING_TARGET_MS) if mine else "",
            ),
        ]
    return rows
