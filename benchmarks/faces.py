"""Sections 5 (the Flask face) and 6 (the Django face), under gunicorn.

Each contender is a gunicorn of its own started with the same command (one gthread worker
with 4 threads, sendfile on: :data:`benchmarks.servers.GUNICORN_WORKER`) serving one app of
:mod:`benchmarks.wsgi_apps`: the sendfs face, or what the same user writes without sendfs.
The server CPU is the gunicorn tree's, master and worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from benchmarks.data import MIB, DataFiles
from benchmarks.local import cpu_cell, metered, speed_cell
from benchmarks.measure import CPU_PER_GIB, MB_PER_S
from benchmarks.report import Row, verdict
from benchmarks.rounds import Results, Settings, alternate
from benchmarks.s3 import S3Object
from benchmarks.servers import GUNICORN_WORKER, Server, Servers

__all__ = ["django_face", "flask_face", "gunicorn_label"]

Progress = Callable[[str], None]

FLASK_LOCAL_TARGET = 0.95
FLASK_S3_TARGET = 0.9
DJANGO_TARGET = 1.0
BOTO3_RELAY = "boto3 relay (get_object + StreamingBody.iter_chunks(1 MiB) in a Response generator)"


def gunicorn_label() -> str:
    """``gunicorn gthread, 1 worker x 4 threads``."""
    kind, workers, threads = GUNICORN_WORKER
    return f"gunicorn {kind}, {workers} worker x {threads} threads"


@contextmanager
def _gunicorns(servers: Servers, apps: Sequence[str]) -> Iterator[list[Server]]:
    """One gunicorn per app of :mod:`benchmarks.wsgi_apps` (``"factory()"``), stopped after."""
    started: list[Server] = []
    try:
        started.extend(
            servers.gunicorn(app, name=f"gunicorn-{app.removesuffix('()')}") for app in apps
        )
        yield started
    finally:
        for server in started:
            servers.stop(server)


def _compare(
    contenders: Mapping[str, Server], path: str, size: int, settings: Settings, progress: Progress
) -> Results:
    """Downloads of ``path`` from each server, alternated."""
    measured = {label: metered(server, path, size) for label, server in contenders.items()}
    return alternate(measured, settings.rounds, progress)


def _pair_rows(section: str, results: Results, baseline: str, target: float) -> list[Row]:
    """The first contender against the second (``baseline`` names it in the ratios)."""
    (mine_name, mine), (theirs_name, theirs) = results.items()
    ratio = mine[MB_PER_S].ratio(theirs[MB_PER_S])
    return [
        Row(
            section,
            mine_name,
            speed_cell(mine[MB_PER_S], theirs[MB_PER_S], baseline),
            cpu_cell(mine[CPU_PER_GIB], theirs[CPU_PER_GIB], baseline),
            f">= {target:g}x {baseline} MB/s",
            verdict(ratio >= target),
        ),
        Row(section, theirs_name, speed_cell(theirs[MB_PER_S]), cpu_cell(theirs[CPU_PER_GIB])),
    ]


def flask_face(
    servers: Servers,
    files: DataFiles,
    settings: Settings,
    s3_object: S3Object | None,
    progress: Progress,
) -> list[Row]:
    """5. ``sendfs.flask.send_file`` vs ``flask.send_file`` (local) and a boto3 relay (S3)."""
    section = f"5 Flask ({gunicorn_label()})"
    with _gunicorns(servers, ("flask_sendfs_app()", "flask_plain_app()")) as (sendfs, plain):
        size = files.big_size
        local = {
            f"local {size // MIB} MiB: sendfs.flask send_file": sendfs,
            f"local {size // MIB} MiB: Flask send_file": plain,
        }
        results = _compare(local, "/big", size, settings, progress)
        rows = _pair_rows(section, results, "Flask", FLASK_LOCAL_TARGET)
        if s3_object is not None:
            size = s3_object.size
            remote = {
                f"S3 {size // MIB} MiB: sendfs.flask send_file": sendfs,
                f"S3 {size // MIB} MiB: {BOTO3_RELAY}": plain,
            }
            results = _compare(remote, "/s3", size, settings, progress)
            rows += _pair_rows(section, results, "relay", FLASK_S3_TARGET)
    return rows


def django_face(
    servers: Servers, files: DataFiles, settings: Settings, progress: Progress
) -> list[Row]:
    """6. ``sendfs.django.send_file`` vs Django's ``FileResponse``, the big local file."""
    size = files.big_size
    with _gunicorns(servers, ("django_sendfs_app()", "django_plain_app()")) as (sendfs, plain):
        contenders = {
            f"local {size // MIB} MiB: sendfs.django send_file": sendfs,
            f"local {size // MIB} MiB: Django FileResponse": plain,
        }
        results = _compare(contenders, "/big", size, settings, progress)
    return _pair_rows(f"6 Django ({gunicorn_label()})", results, "Django", DJANGO_TARGET)
