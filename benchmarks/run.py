"""Run the benchmark suite: ``nox -s bench [-- OPTIONS]`` or ``python -m benchmarks.run``.

Options: ``--rounds N`` (default 7), ``--quick`` (128 MiB file, 64 MiB object, 32 MiB BytesIO,
2 rounds, short runs: a smoke test), ``--only`` with sections of
``local,s3,bytesio,small,flask,django,offload,import,load,requests``, ``--output PATH``
(default ``docs/benchmarks.md`` for a full run; a quick run writes nothing unless asked).

Every target is a paired comparison: sendfs against what a user would otherwise run, on the
same server, in the same run, the contenders alternated round by round (medians of the rounds,
ratios the medians of the per-round ratios), with the server's CPU beside the throughput.

Every server binds 127.0.0.1 and is stopped by its PID when the run ends, also on Ctrl-C or
SIGTERM. Needs curl; nginx and wrk are used when installed (``apt-get install nginx wrk``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

if __package__ in (None, ""):  # run as ``python benchmarks/run.py``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import faces, in_memory, local, offload, s3
from benchmarks.data import MIB, DataFiles, data_dir, ensure_files
from benchmarks.imports import import_section
from benchmarks.report import SECTION_NAMES, Row, environment, load_average, markdown, text_table
from benchmarks.rounds import Settings
from benchmarks.servers import ROOT, Servers

SECTIONS = SECTION_NAMES
S3_SECTIONS = {"s3", "flask", "load", "requests"}
NOTES = (
    "Server CPU: user + sys seconds of the server's process and all its descendants (found by"
    " parent PID: gunicorn's master and worker, nginx's master and worker), read from /proc"
    " just before curl starts and just after it has the last byte, divided by the GiB sent."
    " Each thread's time on CPU comes from /proc/<pid>/task/<tid>/schedstat (nanoseconds; the"
    " same user + sys the kernel adds up in /proc/<pid>/stat, whose 10 ms ticks cannot resolve"
    " a small request); when the ticks of /proc/<pid>/stat grew by more than that, because a"
    " thread or a child ended in between, the ticks. The client (curl, wrk) and moto are not"
    " counted.",
    "Local file: curl downloads it over 127.0.0.1 to /dev/null; MB/s is bytes over curl's"
    " time_total. uvicorn runs with httptools and uvloop, granian with its ASGI interface"
    " (which offers http.response.pathsend) and uvloop; one worker each, no access log, one"
    " server process per contender. nginx runs with sendfile on, one worker: a reference.",
    "S3: a moto ThreadedMotoServer in its own process on 127.0.0.1. sendfs serves"
    " s3://bucket/key under uvicorn; the hand-written relay is what a Starlette user writes"
    " without it: one aiobotocore client made at startup, get_object, and a StreamingResponse"
    " over Body.iter_chunks(1 MiB) with the object's Content-Length, under the same uvicorn"
    " command. moto copies the object for every GET, so it caps all three figures. moto answers"
    " every GET with x-amz-checksum-crc32, so botocore (response_checksum_validation="
    "when_supported, the default) computes a CRC32 of the whole body in both servers; real S3"
    " sends no full-object checksum with a ranged GET.",
    "In-memory exports: each server builds one bytes object at startup (a 16 MiB random block"
    " repeated) and answers every GET /export with a new io.BytesIO over it: sendfs with"
    " send_file(io.BytesIO(data)) under Lilya, Starlette with StreamingResponse(iter(partial("
    "buffer.read, 256 KiB), b'')), what users write without sendfs (sendfs's chunk size;"
    " Starlette runs each next() in its thread pool; chunked, no Content-Length, no ranges)."
    " Throughput and CPU: one curl download at a time, alternated.",
    "RSS and /ping under load (sections 3 and 9): each round starts a fresh server per"
    " contender, downloads once (warm-up), takes the idle VmRSS, then keeps the concurrent"
    " downloads running (a finished one is replaced) while it times sequential GET /ping on one"
    " keep-alive connection, 5 ms apart, and samples VmRSS every 50 ms; growth is the peak minus"
    " the idle RSS. The contenders alternate round by round; figures are medians of the rounds.",
    "Small files: wrk -t1 -c16 (or a Python keep-alive loop when wrk is missing) for the"
    " run's seconds, alternated; server CPU per request is the CPU over the run divided by the"
    " requests wrk made.",
    "Flask and Django: gunicorn with one gthread worker of 4 threads (sendfile on, the"
    " default), one gunicorn per contender, started with the same command. Flask send_file and"
    " Django's FileResponse hand the file to gunicorn's wsgi.file_wrapper, which sends it with"
    " sendfile; so does the sendfs face for a whole local file. The boto3 relay is what a Flask"
    " user writes for S3: one boto3 client made with the app, get_object, and a Response over a"
    " generator of StreamingBody.iter_chunks(1 MiB) with the object's Content-Length. Django"
    " runs with settings made in the process: no middleware, no installed apps, DEBUG off.",
    "Offload: curl -> nginx -> uvicorn; the sendfs app answers send_file(path,"
    " offload=XAccelRedirect('/_files/', root=ROOT)) and nginx sends the file from an internal"
    " alias location (sendfile on). A figure is several downloads in a row (see settings); the"
    " CPU is the app's (the uvicorn tree's) per download beyond what it spends idle over as"
    " long (measured in a pause right after each figure: uvicorn's loop ticks ten times a"
    " second), the big file's against the 4 KiB file's in the same rounds. Starlette's"
    " FileResponse behind the same nginx configuration"
    " (proxy_pass, proxy_max_temp_file_size 0) is what users run without offload. An ASGI"
    " middleware in the sendfs app counts the body bytes the app hands to uvicorn over every"
    " offloaded download of the run, warm-ups included.",
    "Import: fresh interpreters alternated, each timing one import statement with"
    " time.perf_counter, isolated (-I) in an empty directory, in a virtual environment holding"
    " only sendfs and its runtime dependencies (what `pip install sendfs` gives; in the"
    " development environment Lilya also imports PyYAML and python-magic when it finds them)."
    " The dependencies' statement imports fsspec, anyio and every Lilya module that `import"
    " sendfs` loads (`import lilya` alone loads next to nothing); the ratio is the median of"
    " the per-round ratios.",
    "S3 requests: a server started for this count only registers botocore hooks"
    " (before-send.s3.*, after-call.s3.GetObject) on the aiobotocore session its s3fs"
    " filesystem uses, and exposes the counts on /_stats; bytes pulled are the Content-Length"
    " GetObject answered with.",
)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, help="rounds per comparison (default 7, quick 2; at least 1)"
    )
    parser.add_argument("--quick", action="store_true", help="a smaller, shorter smoke run")
    parser.add_argument("--only", help=f"comma-separated sections of {','.join(SECTIONS)}")
    parser.add_argument("--output", type=Path, help="where to write the Markdown report")
    args = parser.parse_args(argv)
    args.sections = set(args.only.split(",")) if args.only else set(SECTIONS)
    unknown = args.sections - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.output is None and not args.quick:
        args.output = ROOT / "docs" / "benchmarks.md"
    return args


def _settings(args: argparse.Namespace) -> Settings:
    if args.quick:
        return Settings(
            rounds=args.rounds or 2,
            big_size=128 * MIB,
            s3_size=64 * MIB,
            small_seconds=2.0,
            ping_count=100,
            bytesio_size=32 * MIB,
            import_rounds=4,
            offload_downloads=4,
            quick=True,
        )
    return Settings(
        rounds=args.rounds or 7,
        big_size=1024 * MIB,
        s3_size=256 * MIB,
        small_seconds=5.0,
        ping_count=300,
        bytesio_size=200 * MIB,
    )


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _guarded(section: str, run: Callable[[], list[Row]]) -> list[Row]:
    """Run one section; an error becomes a row instead of ending the whole run."""
    _progress(f"section {section}")
    try:
        return run()
    except Exception as exc:  # noqa: BLE001 - reported in the table, the run goes on
        traceback.print_exc()
        return [Row(section, "error", f"{type(exc).__name__}: {exc}"[:200], verdict="ERROR")]


def _plan(
    servers: Servers, files: DataFiles, settings: Settings, s3_object: s3.S3Object | None
) -> list[tuple[str, Callable[[], list[Row]]]]:
    """The sections in table order; the S3 parts only with an S3 object."""
    plan: list[tuple[str, Callable[[], list[Row]]]] = [
        ("local", lambda: local.local_throughput(servers, files, settings, _progress)),
    ]
    if s3_object is not None:
        plan.append(("s3", lambda: s3.s3_throughput(servers, s3_object, settings, _progress)))
    plan += [
        ("bytesio", lambda: in_memory.in_memory_exports(servers, settings, _progress)),
        ("small", lambda: local.small_files(servers, files, settings, _progress)),
        ("flask", lambda: faces.flask_face(servers, files, settings, s3_object, _progress)),
        ("django", lambda: faces.django_face(servers, files, settings, _progress)),
        ("offload", lambda: offload.offload_section(servers, files, settings, _progress)),
        ("import", lambda: import_section(ROOT, data_dir(), settings, _progress)),
        ("load", lambda: local.local_load(servers, files, settings, _progress)),
    ]
    if s3_object is not None:
        plan += [
            ("load", lambda: s3.s3_load(servers, s3_object, settings, _progress)),
            ("requests", lambda: s3.s3_requests(servers, s3_object, _progress)),
        ]
    return plan


def run_sections(sections: set[str], settings: Settings, files: DataFiles) -> list[Row]:
    """Run the chosen sections with servers that are all stopped when this returns."""
    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory(prefix="sendfs-bench-") as workdir,
        Servers(Path(workdir)) as servers,
    ):
        servers.env.update(
            SENDFS_BENCH_BIG=str(files.big),
            SENDFS_BENCH_SMALL=str(files.small),
            SENDFS_BENCH_BYTESIO_SIZE=str(settings.bytesio_size),
        )
        s3_object = None
        if sections & S3_SECTIONS:
            _progress(f"starting moto, uploading {settings.s3_size // MIB} MiB")
            s3_object = s3.prepare_s3(servers, files, settings)
        for name, section in _plan(servers, files, settings, s3_object):
            if name in sections:
                rows += _guarded(name, section)
    return rows


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    settings = _settings(args)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    started = time.monotonic()
    load_before = load_average()
    _progress(f"{settings.describe()}; load average {load_before}")
    files = ensure_files(settings.big_size)
    rows = run_sections(args.sections, settings, files)
    elapsed = time.monotonic() - started
    print(text_table(rows))
    print(f"\n{settings.describe()}; took {elapsed / 60:.1f} min")
    if args.output is not None:
        notes = [
            *NOTES,
            f"This run took {elapsed / 60:.1f} minutes. The 1-minute load average was"
            f" {load_before} before it (on 2 cores, other work on the machine skews the figures).",
        ]
        args.output.write_text(markdown(rows, environment(), settings.describe(), notes))
        print(f"wrote {args.output}")
    return 1 if any(row.verdict == "ERROR" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
