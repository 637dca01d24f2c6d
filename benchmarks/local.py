"""Local-file sections: 1 (1 GiB throughput), 3 (RSS, local part), 5 (p99 under load), 6 (4 KiB)."""

from __future__ import annotations

import time
from collections.abc import Callable

from benchmarks.data import MIB, DataFiles
from benchmarks.measure import CurlLoad, curl_concurrent, curl_download, rss_growth
from benchmarks.probes import Latencies, ping_latencies, requests_per_second
from benchmarks.report import Row, verdict
from benchmarks.rounds import Settings, Summary, alternate
from benchmarks.servers import Server, Servers

__all__ = [
    "concurrent_load",
    "downloader",
    "local_throughput",
    "ping_under_load",
    "pings_during_downloads",
    "rss_local",
    "show_pings",
    "small_files",
]

Progress = Callable[[str], None]

APPS = (
    ("sendfs_app", "sendfs send_file"),
    ("starlette_app", "Starlette FileResponse"),
    ("lilya_app", "Lilya FileResponse"),
)
PING_DEADLINE = 60.0
WRK_CONNECTIONS = 16


def downloader(url: str, size: int) -> Callable[[], float]:
    """One curl download of ``url`` (``size`` bytes), as MB/s."""
    return lambda: curl_download(url, size).mb_per_s


def local_throughput(
    servers: Servers, files: DataFiles, settings: Settings, progress: Progress
) -> list[Row]:
    """1. The big file under uvicorn and granian, three apps each, and nginx."""
    size = files.big_size
    started: list[Server] = []
    contenders: dict[str, Callable[[], float]] = {}
    try:
        for kind in ("uvicorn", "granian"):
            for factory, label in APPS:
                server = getattr(servers, kind)(factory)
                started.append(server)
                contenders[f"{kind}: {label}"] = downloader(server.url + "/big", size)
        nginx = servers.nginx(files.root, "/" + files.small.name)
        if nginx is not None:
            started.append(nginx)
            contenders["nginx sendfile"] = downloader(f"{nginx.url}/{files.big.name}", size)
        results = alternate(contenders, settings.rounds, progress)
    finally:
        for server in started:
            servers.stop(server)
    return _throughput_rows(results, size)


def _throughput_rows(results: dict[str, Summary], size: int) -> list[Row]:
    section = f"1 local {size // MIB} MiB"
    starlette = results["uvicorn: Starlette FileResponse"]
    nginx = results.get("nginx sendfile")
    rows = []
    for name, summary in results.items():
        parts = [summary.show("MB/s")]
        if name.startswith("uvicorn") and summary is not starlette:
            parts.append(f"{summary.ratio(starlette):.2f}x Starlette")
        if nginx is not None and name != "nginx sendfile":
            parts.append(f"{summary.ratio(nginx):.2f}x nginx")
        target = status = ""
        if name == "uvicorn: sendfs send_file":
            target = ">= 1.5x Starlette (uvicorn)"
            status = verdict(summary.ratio(starlette) >= 1.5)
        elif name == "granian: sendfs send_file":
            target = ">= 0.9x nginx"
            status = verdict(summary.ratio(nginx) >= 0.9) if nginx else "n/a (no nginx)"
        rows.append(Row(section, name, ", ".join(parts), target, status))
    return rows


def concurrent_load(url: str, count: int, size: int) -> Callable[[], str]:
    """``count`` simultaneous curl downloads of ``url``; describes what ran."""

    def load() -> str:
        wall, _ = curl_concurrent(url, count, size)
        return f"{count} x {size // MIB} MiB in {wall:.1f} s"

    return load


def rss_local(
    servers: Servers, files: DataFiles, settings: Settings, progress: Progress
) -> list[Row]:
    """3 (local). Peak RSS growth of a fresh sendfs server during concurrent big downloads."""
    server = servers.uvicorn("sendfs_app", name="uvicorn-sendfs-rss-local")
    try:
        url, size, count = server.url + "/big", files.big_size, settings.concurrency
        growth = rss_growth(
            server.pid, lambda: curl_download(url, size), concurrent_load(url, count, size)
        )
    finally:
        servers.stop(server)
    progress(f"RSS local: {growth.show()}")
    return [
        Row(
            "3 memory",
            f"RSS growth, {count} x {size // MIB} MiB local (uvicorn, sendfs)",
            growth.show(),
            "< 16 MiB",
            verdict(growth.mib < 16),
        )
    ]


def pings_during_downloads(server: Server, url: str, settings: Settings) -> tuple[Latencies, int]:
    """``/ping`` latencies while ``settings.concurrency`` downloads of ``url`` keep running.

    Returns the latencies and how many downloads finished (and were replaced) meanwhile.
    """
    with CurlLoad(url, settings.concurrency) as load:
        time.sleep(0.5)  # let every download get going
        latencies = ping_latencies(
            server.port, "/ping", settings.ping_count, 0.005, time.monotonic() + PING_DEADLINE
        )
        return latencies, load.completed


def show_pings(latencies: Latencies, settings: Settings, completed: int) -> str:
    """The p99, with the p50, the maximum and what ran meanwhile."""
    return (
        f"{latencies.percentile(0.99):.1f} ms (p50 {latencies.percentile(0.5):.1f},"
        f" max {max(latencies.samples):.1f} ms; {len(latencies.samples)} requests while"
        f" {settings.concurrency} downloads ran, {completed} of them finished and replaced)"
    )


def ping_under_load(
    servers: Servers, files: DataFiles, settings: Settings, progress: Progress
) -> list[Row]:
    """5. p99 of ``/ping`` on the sendfs server while it serves concurrent big downloads."""
    server = servers.uvicorn("sendfs_app", name="uvicorn-sendfs-ping")
    try:
        curl_download(server.url + "/big", files.big_size)
        latencies, completed = pings_during_downloads(server, server.url + "/big", settings)
    finally:
        servers.stop(server)
    p99 = latencies.percentile(0.99)
    result = show_pings(latencies, settings, completed)
    progress(f"ping: {result}")
    return [
        Row(
            "5 loop health",
            f"/ping p99 during {settings.concurrency} big downloads (uvicorn, sendfs)",
            result,
            "< 20 ms",
            verdict(p99 < 20),
        )
    ]


def small_files(
    servers: Servers, files: DataFiles, settings: Settings, progress: Progress
) -> list[Row]:
    """6. Requests per second for the 4 KiB file, sendfs vs Starlette, under uvicorn."""
    tools: set[str] = set()

    def rate(url: str) -> Callable[[], float]:
        def measure() -> float:
            value, tool = requests_per_second(url, WRK_CONNECTIONS, settings.small_seconds)
            tools.add(tool)
            return value

        return measure

    started = [servers.uvicorn("sendfs_app"), servers.uvicorn("starlette_app")]
    try:
        contenders = {
            "sendfs send_file": rate(started[0].url + "/small"),
            "Starlette FileResponse": rate(started[1].url + "/small"),
        }
        results = alternate(contenders, settings.rounds, progress)
    finally:
        for server in started:
            servers.stop(server)
    sendfs, starlette = results["sendfs send_file"], results["Starlette FileResponse"]
    how = f"{', '.join(sorted(tools))}, {WRK_CONNECTIONS} connections"
    ratio = sendfs.ratio(starlette)
    return [
        Row(
            "6 small files",
            "4 KiB file, uvicorn: sendfs send_file",
            f"{sendfs.show('req/s')}, {ratio:.2f}x Starlette ({how})",
            ">= 1.0x Starlette",
            verdict(ratio >= 1.0),
        ),
        Row(
            "6 small files", "4 KiB file, uvicorn: Starlette FileResponse", starlette.show("req/s")
        ),
    ]
