"""Section 7: offload to nginx (``X-Accel-Redirect``): the app's CPU per download, by size.

curl asks nginx, which proxies to uvicorn; the app (``benchmarks.apps.sendfs_offload_app``)
answers ``send_file(path, offload=XAccelRedirect("/_files/", root=ROOT))`` with an empty body
and ``X-Accel-Redirect: /_files/<name>``, and nginx sends the file from its ``internal``
location (:meth:`benchmarks.servers.Servers.nginx_front`). One figure is
``settings.offload_downloads`` downloads in a row; the app's CPU (the uvicorn tree's, not
nginx's) per download is compared between the big file and the 4 KiB one, alternated. What a
user runs without offload, Starlette's ``FileResponse`` behind the same nginx configuration,
is the reference (one download per figure: its CPU is counted in hundreds of ms). The app
counts the body bytes it hands to uvicorn (:class:`benchmarks.apps.BodyBytes`): 0 means
nothing went through Python.

An idle uvicorn process spends CPU too (its loop ticks ten times a second), and a 1 GiB download
keeps the app idle for longer than a 4 KiB one. So each figure is followed by as long a pause
with no request, whose app CPU is subtracted: what is compared is the CPU the downloads cost the
app beyond idling, and the idle CPU is reported beside it.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from typing import Any

from benchmarks.cpu import cpu_seconds, cpu_snapshot
from benchmarks.data import MIB, SMALL_SIZE, DataFiles
from benchmarks.measure import MB_PER_S, curl_download
from benchmarks.report import Row, verdict
from benchmarks.rounds import Results, Sample, Settings, alternate
from benchmarks.servers import Server, Servers

__all__ = ["offload_section"]

Progress = Callable[[str], None]

SECTION = "7 offload (nginx -> uvicorn)"
#: The app's CPU per download of the big file, at most this many times the small file's.
SIZE_RATIO_TARGET = 1.25
APP_CPU = "app CPU ms/download"
IDLE_CPU = "idle app CPU ms/download"


def _downloads(app: Server, url: str, size: int, count: int) -> Callable[[], Sample]:
    """A contender: ``count`` downloads of ``url`` in a row; MB/s and the app's CPU each."""

    def measure() -> Sample:
        before = cpu_snapshot(app.pid)
        started = time.monotonic()
        seconds = sum(curl_download(url, size).seconds for _ in range(count))
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(before, cpu_snapshot(app.pid))
        idle_before = cpu_snapshot(app.pid)
        time.sleep(elapsed)
        idle = cpu_seconds(idle_before, cpu_snapshot(app.pid))
        return {
            MB_PER_S: size * count / seconds / 1e6,
            APP_CPU: max(cpu - idle, 0.0) / count * 1000,
            IDLE_CPU: idle / count * 1000,
        }

    return measure


def _body_bytes(app: Server) -> dict[str, Any]:
    """What the app's :class:`benchmarks.apps.BodyBytes` counted."""
    connection = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
    try:
        connection.request("GET", "/_body_bytes")
        counted: dict[str, Any] = json.loads(connection.getresponse().read())
        return counted
    finally:
        connection.close()


def offload_section(
    servers: Servers, files: DataFiles, settings: Settings, progress: Progress
) -> list[Row]:
    """7. App CPU per offloaded download, big file vs 4 KiB; body bytes through Python."""
    root = files.root.resolve()
    started: list[Server] = []
    try:
        app = servers.uvicorn("sendfs_offload_app", name="uvicorn-sendfs-offload")
        plain = servers.uvicorn("starlette_app", name="uvicorn-starlette-proxied")
        started += [app, plain]
        front = servers.nginx_front(app, root, "nginx-offload")
        plain_front = servers.nginx_front(plain, root, "nginx-proxy")
        if front is None or plain_front is None:
            return [Row(SECTION, "offload", "n/a (nginx is not installed)", verdict="n/a")]
        started += [front, plain_front]
        count, big = settings.offload_downloads, files.big_size
        names = _names(big)
        contenders = {
            names["big"]: _downloads(app, front.url + "/big", big, count),
            names["small"]: _downloads(app, front.url + "/small", SMALL_SIZE, count),
            names["plain"]: _downloads(plain, plain_front.url + "/big", big, 1),
        }
        started_at = time.monotonic()
        results = alternate(contenders, settings.rounds, progress)
        progress(f"offload rounds took {time.monotonic() - started_at:.1f} s")
        counted = _body_bytes(app)
    finally:
        for server in reversed(started):
            servers.stop(server)
    offloaded = (settings.rounds + 1) * count * 2
    return _rows(results, names, counted, offloaded, count)


def _names(big: int) -> dict[str, str]:
    return {
        "big": f"sendfs X-Accel-Redirect, {big // MIB} MiB",
        "small": "sendfs X-Accel-Redirect, 4 KiB",
        "plain": f"Starlette FileResponse behind the same nginx, {big // MIB} MiB (no offload)",
    }


def _rows(
    results: Results, names: dict[str, str], counted: dict[str, Any], offloaded: int, count: int
) -> list[Row]:
    big, small, plain = (results[names[key]] for key in ("big", "small", "plain"))
    ratio = big[APP_CPU].ratio(small[APP_CPU])
    body_bytes, other = int(counted["body_bytes"]), dict(counted["other"])
    return [
        Row(
            SECTION,
            names["big"],
            f"{big[MB_PER_S].show('MB/s')}; {count} downloads per figure",
            f"{big[APP_CPU].show('ms/download', 2)} beyond idle, {ratio:.2f}x the 4 KiB "
            f"download's; idle over as long: {big[IDLE_CPU].show('ms/download', 2)}",
            f"app CPU per download beyond idle <= {SIZE_RATIO_TARGET:g}x the 4 KiB download's",
            verdict(ratio <= SIZE_RATIO_TARGET),
        ),
        Row(
            SECTION,
            names["small"],
            f"{small[MB_PER_S].show('MB/s', 2)}; {count} downloads per figure",
            f"{small[APP_CPU].show('ms/download', 2)} beyond idle; idle over as long: "
            f"{small[IDLE_CPU].show('ms/download', 2)}",
        ),
        Row(
            SECTION,
            names["plain"],
            plain[MB_PER_S].show("MB/s"),
            plain[APP_CPU].show("ms/download", 0),
        ),
        Row(
            SECTION,
            f"body bytes the sendfs app sent for its {offloaded} offloaded downloads",
            f"{body_bytes} B" + (f"; other body messages: {other}" if other else ""),
            target="0 B",
            verdict=verdict(body_bytes == 0 and not other),
        ),
    ]
