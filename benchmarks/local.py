"""Local-file sections: 1 (the big file under uvicorn and granian), 4 (the 4 KiB file), and
the local half of 9 (RSS and ``/ping`` under concurrent big downloads, issue 5's targets).

Every contender runs in a server of its own started with the same command; sendfs is compared
with Starlette's ``FileResponse``, what the same user would otherwise run, and nginx figures
are a reference.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.cpu import cpu_seconds, cpu_snapshot
from benchmarks.data import MIB, DataFiles
from benchmarks.measure import CPU_PER_GIB, MB_PER_S, metered_download
from benchmarks.probes import requests_per_second
from benchmarks.report import Row, verdict
from benchmarks.rounds import Results, Sample, Settings, Summary, alternate
from benchmarks.servers import Server, Servers
from benchmarks.underload import describe_load, fresh_uvicorn, load_rows, under_load

__all__ = [
    "cpu_cell",
    "local_load",
    "local_throughput",
    "metered",
    "small_files",
    "speed_cell",
]

Progress = Callable[[str], None]

APPS = (
    ("sendfs_app", "sendfs send_file"),
    ("starlette_app", "Starlette FileResponse"),
    ("lilya_app", "Lilya FileResponse"),
)
SENDFS, STARLETTE = APPS[0][1], APPS[1][1]
NGINX = "nginx sendfile (reference)"
#: uvicorn: sendfs's MB/s over Starlette's, and its CPU seconds per GiB.
UVICORN_SPEEDUP, UVICORN_CPU = 2.0, 1.0
#: granian: sendfs's MB/s over Starlette's on granian; its CPU over Starlette's.
GRANIAN_SPEEDUP, GRANIAN_CPU_RATIO = 1.0, 1.0
SMALL_SPEEDUP = 2.5
#: The floor of a small download: sendfs's app and server answering 4 KiB from memory.
FLOOR = "the sendfs app's Lilya Response of 4 KiB from memory, no file (reference: the floor)"
WRK_CONNECTIONS = 16
#: The figures of a small-file run.
REQUESTS_PER_S = "req/s"
CPU_PER_REQUEST = "CPU us/request"
#: Issue 5's targets for the load section.
LOCAL_RSS_TARGET, PING_TARGET = 16.0, 20.0


def metered(server: Server, path: str, size: int) -> Callable[[], Sample]:
    """A contender: one download of ``path``, MB/s and the server's CPU per GiB."""
    url = server.url + path
    return lambda: metered_download(server.pid, url, size)


def speed_cell(mine: Summary, theirs: Summary | None = None, label: str = "") -> str:
    """``1039 MB/s (859-1075), 2.46x Starlette``."""
    cell = mine.show("MB/s")
    return f"{cell}, {mine.ratio(theirs):.2f}x {label}" if theirs is not None else cell


def cpu_cell(mine: Summary, theirs: Summary | None = None, label: str = "") -> str:
    """``0.39 s/GiB (0.35-0.41), 0.12x Starlette``."""
    cell = mine.show("s/GiB", 2)
    return f"{cell}, {mine.ratio(theirs):.2f}x {label}" if theirs is not None else cell


def local_throughput(
    servers: Servers, files: DataFiles, settings: Settings, progress: Progress
) -> list[Row]:
    """1. The big file under uvicorn and granian, three apps each, and nginx, alternated."""
    size = files.big_size
    started: list[Server] = []
    contenders: dict[str, Callable[[], Sample]] = {}
    try:
        for kind in ("uvicorn", "granian"):
            for factory, label in APPS:
                server = getattr(servers, kind)(factory)
                started.append(server)
                contenders[f"{kind}: {label}"] = metered(server, "/big", size)
        nginx = servers.nginx(files.root, "/" + files.small.name)
        if nginx is not None:
            started.append(nginx)
            contenders[NGINX] = metered(nginx, "/" + files.big.name, size)
        results = alternate(contenders, settings.rounds, progress)
    finally:
        for server in started:
            servers.stop(server)
    return _throughput_rows(results, size)


def _throughput_rows(results: Results, size: int) -> list[Row]:
    section = f"1 local {size // MIB} MiB"
    rows = []
    for kind in ("uvicorn", "granian"):
        starlette = results[f"{kind}: {STARLETTE}"]
        for _, label in APPS:
            name = f"{kind}: {label}"
            figures = results[name]
            speed, cpu = figures[MB_PER_S], figures[CPU_PER_GIB]
            if label == STARLETTE:
                rows.append(Row(section, name, speed_cell(speed), cpu_cell(cpu)))
                continue
            baseline = f"Starlette ({kind})"
            row = Row(
                section,
                name,
                speed_cell(speed, starlette[MB_PER_S], baseline),
                cpu_cell(cpu, starlette[CPU_PER_GIB], baseline),
            )
            if label == SENDFS:
                row = _targeted(row, kind, speed.ratio(starlette[MB_PER_S]), cpu, starlette)
            rows.append(row)
    if NGINX in results:
        nginx = results[NGINX]
        rows.append(Row(section, NGINX, speed_cell(nginx[MB_PER_S]), cpu_cell(nginx[CPU_PER_GIB])))
    return rows


def _targeted(
    row: Row, kind: str, speedup: float, cpu: Summary, starlette: dict[str, Summary]
) -> Row:
    """The sendfs row with the target of its server."""
    if kind == "uvicorn":
        target = f">= {UVICORN_SPEEDUP:g}x Starlette MB/s; <= {UVICORN_CPU:g} CPU s/GiB"
        checks = {"MB/s": speedup >= UVICORN_SPEEDUP, "CPU": cpu.median <= UVICORN_CPU}
    else:
        target = f">= {GRANIAN_SPEEDUP:g}x Starlette MB/s; CPU <= Starlette's"
        checks = {
            "MB/s": speedup >= GRANIAN_SPEEDUP,
            "CPU": cpu.ratio(starlette[CPU_PER_GIB]) <= GRANIAN_CPU_RATIO,
        }
    return Row(row.section, row.measure, row.result, row.cpu, target, verdict(checks))


def _rate(server: Server, url: str, seconds: float, tools: set[str]) -> Callable[[], Sample]:
    def measure() -> Sample:
        before = cpu_snapshot(server.pid)
        rate, requests, tool = requests_per_second(url, WRK_CONNECTIONS, seconds)
        cpu = cpu_seconds(before, cpu_snapshot(server.pid))
        tools.add(tool)
        return {REQUESTS_PER_S: rate, CPU_PER_REQUEST: cpu / max(requests, 1) * 1e6}

    return measure


def small_files(
    servers: Servers, files: DataFiles, settings: Settings, progress: Progress
) -> list[Row]:
    """4. Requests per second for the 4 KiB file: sendfs vs Starlette (uvicorn), and nginx."""
    tools: set[str] = set()
    seconds = settings.small_seconds
    started = [servers.uvicorn("sendfs_app"), servers.uvicorn("starlette_app")]
    try:
        contenders = {
            f"uvicorn: {label}": _rate(server, server.url + "/small", seconds, tools)
            for server, label in zip(started, (SENDFS, STARLETTE), strict=True)
        }
        contenders[FLOOR] = _rate(started[0], started[0].url + "/small-memory", seconds, tools)
        nginx = servers.nginx(files.root, "/" + files.small.name)
        if nginx is not None:
            started.append(nginx)
            url = f"{nginx.url}/{files.small.name}"
            contenders[NGINX] = _rate(nginx, url, seconds, tools)
        results = alternate(contenders, settings.rounds, progress)
    finally:
        for server in started:
            servers.stop(server)
    return _small_rows(results, f"{', '.join(sorted(tools))}, {WRK_CONNECTIONS} connections")


def _small_rows(results: Results, how: str) -> list[Row]:
    section = "4 small files"
    sendfs, starlette = results[f"uvicorn: {SENDFS}"], results[f"uvicorn: {STARLETTE}"]
    ratio = sendfs[REQUESTS_PER_S].ratio(starlette[REQUESTS_PER_S])
    cpu_ratio = sendfs[CPU_PER_REQUEST].ratio(starlette[CPU_PER_REQUEST])
    rows = [
        Row(
            section,
            f"4 KiB file, uvicorn: {SENDFS}",
            f"{sendfs[REQUESTS_PER_S].show('req/s')}, {ratio:.2f}x Starlette ({how})",
            f"{sendfs[CPU_PER_REQUEST].show('us/request')}, {cpu_ratio:.2f}x Starlette",
            f">= {SMALL_SPEEDUP:g}x Starlette req/s",
            verdict(ratio >= SMALL_SPEEDUP),
        ),
        Row(
            section,
            f"4 KiB file, uvicorn: {STARLETTE}",
            starlette[REQUESTS_PER_S].show("req/s"),
            starlette[CPU_PER_REQUEST].show("us/request"),
        ),
    ]
    floor = results[FLOOR]
    rows.append(
        Row(
            section,
            f"4 KiB, uvicorn: {FLOOR}",
            f"{floor[REQUESTS_PER_S].show('req/s')}, "
            f"{floor[REQUESTS_PER_S].ratio(starlette[REQUESTS_PER_S]):.2f}x Starlette",
            floor[CPU_PER_REQUEST].show("us/request"),
        )
    )
    if NGINX in results:
        nginx = results[NGINX]
        rows.append(
            Row(
                section,
                f"4 KiB file, {NGINX}",
                nginx[REQUESTS_PER_S].show("req/s"),
                nginx[CPU_PER_REQUEST].show("us/request"),
            )
        )
    return rows


def local_load(
    servers: Servers, files: DataFiles, settings: Settings, progress: Progress
) -> list[Row]:
    """9 (local). RSS growth and ``/ping`` p99 of fresh servers under concurrent big downloads."""
    size = files.big_size
    contenders = {
        f"uvicorn: {label}": under_load(
            servers, fresh_uvicorn(servers, factory), "/big", size, settings
        )
        for factory, label in APPS[:2]
    }
    results = alternate(contenders, settings.rounds, progress, warm_up=False)
    return load_rows(
        "9 under load",
        describe_load(settings, size, "local"),
        results,
        f"uvicorn: {SENDFS}",
        LOCAL_RSS_TARGET,
        PING_TARGET,
        " (issue 5)",
    )
