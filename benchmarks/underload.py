"""A server under concurrent downloads: its RSS growth and its ``/ping`` latency, paired.

:func:`under_load` is a contender for :func:`benchmarks.rounds.alternate`: each call starts a
fresh server, downloads once (warm-up), takes the idle RSS, then keeps ``concurrency`` downloads
running (a finished one is replaced) while timing sequential ``GET /ping`` on one keep-alive
connection and sampling the RSS every 50 ms, and stops the server. :func:`load_rows` turns the
rounds of sendfs and of what users run without it into rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from benchmarks.data import MIB
from benchmarks.measure import CurlLoad, RssSampler, curl_download, rss_kib
from benchmarks.probes import Latencies, ping_latencies
from benchmarks.report import Row, verdict
from benchmarks.rounds import Results, Sample, Settings
from benchmarks.servers import Server, Servers

__all__ = ["describe_load", "fresh_uvicorn", "load_rows", "pings_during_downloads", "under_load"]

PING_DEADLINE = 60.0
PING_INTERVAL = 0.005
#: The figures of one load.
GROWTH = "MiB RSS growth"
IDLE = "MiB idle RSS"
P99 = "ms p99"
P50 = "ms p50"
WORST = "ms max"
FINISHED = "downloads finished"


def pings_during_downloads(server: Server, url: str, settings: Settings) -> tuple[Latencies, int]:
    """``/ping`` latencies while ``settings.concurrency`` downloads of ``url`` keep running.

    Returns the latencies and how many downloads finished (and were replaced) meanwhile.
    """
    with CurlLoad(url, settings.concurrency) as load:
        time.sleep(0.5)  # let every download get going
        latencies = ping_latencies(
            server.port,
            "/ping",
            settings.ping_count,
            PING_INTERVAL,
            time.monotonic() + PING_DEADLINE,
        )
        return latencies, load.completed


def fresh_uvicorn(servers: Servers, factory: str) -> Callable[[], Server]:
    """Starts a new uvicorn server of ``factory`` at each call."""
    return lambda: servers.uvicorn(factory, name=f"uvicorn-{factory}-load")


def under_load(
    servers: Servers, start: Callable[[], Server], path: str, size: int, settings: Settings
) -> Callable[[], Sample]:
    """A contender: one load of a fresh server from ``start()``, downloading ``path``."""

    def measure() -> Sample:
        server = start()
        try:
            url = server.url + path
            curl_download(url, size)
            time.sleep(0.5)
            idle = rss_kib(server.pid)
            sampler = RssSampler(server.pid)
            with sampler.running():
                latencies, finished = pings_during_downloads(server, url, settings)
        finally:
            servers.stop(server)
        return {
            GROWTH: (sampler.peak_kib - idle) / 1024,
            IDLE: idle / 1024,
            P99: latencies.percentile(0.99),
            P50: latencies.percentile(0.5),
            WORST: max(latencies.samples),
            FINISHED: finished,
        }

    return measure


def load_rows(
    section: str,
    load: str,
    results: Results,
    mine: str,
    rss_target: float | None,
    ping_target: float | None,
    target_note: str = "",
) -> list[Row]:
    """RSS growth and ``/ping`` p99 rows for every contender; targets on ``mine`` only.

    ``load`` says what ran (``8 x 200 MiB BytesIO``); ``target_note`` follows each target.
    """
    rows = []
    for name, figures in results.items():
        growth, idle = figures[GROWTH], figures[IDLE]
        target = f"< {rss_target:g} MiB{target_note}" if rss_target and name == mine else ""
        rows.append(
            Row(
                section,
                f"RSS growth, {load}, {name}",
                f"{growth.show('MiB', 1)} over an idle {idle.median:.1f} MiB",
                target=target,
                verdict=verdict(growth.median < rss_target) if target and rss_target else "",
            )
        )
    for name, figures in results.items():
        p99 = figures[P99]
        target = f"< {ping_target:g} ms{target_note}" if ping_target and name == mine else ""
        rows.append(
            Row(
                section,
                f"/ping p99 during {load}, {name}",
                f"{p99.show('ms', 1)}; p50 {figures[P50].median:.1f} ms, max"
                f" {figures[WORST].median:.1f} ms (medians); {figures[FINISHED].median:.0f}"
                " downloads finished per load",
                target=target,
                verdict=verdict(p99.median < ping_target) if target and ping_target else "",
            )
        )
    return rows


def describe_load(settings: Settings, size: int, what: str) -> str:
    """``8 x 1024 MiB local`` and the like."""
    return f"{settings.concurrency} x {size // MIB} MiB {what}"
