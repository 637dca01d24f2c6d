"""Run the benchmark suite: ``nox -s bench [-- OPTIONS]`` or ``python -m benchmarks.run``.

Options: ``--rounds N`` (default 5), ``--quick`` (128 MiB file, 64 MiB object, 32 MiB BytesIO,
2 rounds, short runs: a smoke test), ``--only local,s3,memory,requests,ping,small,import,bytesio``,
``--output PATH``
(default ``docs/benchmarks.md`` for a full run; a quick run writes nothing unless asked).

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

from benchmarks import in_memory, local, s3
from benchmarks.data import MIB, DataFiles, data_dir, ensure_files
from benchmarks.probes import import_time_ms, runtime_only_python
from benchmarks.report import Row, environment, load_average, markdown, text_table, verdict
from benchmarks.rounds import Settings
from benchmarks.servers import ROOT, Servers

SECTIONS = ("local", "s3", "memory", "requests", "ping", "small", "import", "bytesio")
S3_SECTIONS = {"s3", "memory", "requests"}
NOTES = (
    "Local file: curl downloads it over 127.0.0.1 to /dev/null; MB/s is bytes over curl's"
    " time_total. uvicorn runs with httptools and uvloop, granian with its ASGI interface"
    " (which offers http.response.pathsend) and uvloop; one worker each, no access log. nginx"
    " runs with sendfile on, one worker.",
    "S3: a moto ThreadedMotoServer in its own process on 127.0.0.1. sendfs serves"
    " s3://bucket/key under uvicorn to curl; the raw baseline is aiobotocore get_object +"
    " Body.iter_chunks(1 MiB) in a separate process, timed from the call to the last byte with"
    " the client already created. moto itself copies the object for every GET, so it caps all"
    " three figures. moto answers every GET, ranged ones too, with x-amz-checksum-crc32, so"
    " botocore (response_checksum_validation=when_supported, the default) computes a CRC32 of"
    " the whole body in both the sendfs server and the raw reader; real S3 sends no full-object"
    " checksum with a ranged GET.",
    "Memory: VmRSS of the server process sampled every 50 ms; growth is the peak minus the idle"
    " RSS taken after one warm-up download. A fresh server for each load.",
    "S3 requests: a server started for this count only registers botocore hooks"
    " (before-send.s3.*, after-call.s3.GetObject) on the aiobotocore session its s3fs"
    " filesystem uses, and exposes the counts on /_stats; bytes pulled are the Content-Length"
    " GetObject answered with.",
    "Loop health: sequential GET /ping on one keep-alive connection, 5 ms apart, while the same"
    " server serves concurrent downloads of the big file (a finished download is replaced).",
    "Small files: wrk -t1 -c16 (or a Python keep-alive loop when wrk is missing), alternated.",
    "In-memory exports: each server builds one bytes object at startup (a 16 MiB random block"
    " repeated) and answers every GET /export with a new io.BytesIO over it: sendfs with"
    " send_file(io.BytesIO(data)) under Lilya, Starlette with StreamingResponse(iter(partial("
    "buffer.read, 256 KiB), b'')), what users write without sendfs (sendfs's chunk size; Starlette"
    " runs each next() in its thread pool; chunked, no Content-Length, no ranges). Throughput is"
    " one curl download at a time, alternated. RSS growth and /ping are measured together on a"
    " fresh server: the idle RSS (data included) after one warm-up download, then the peak while"
    " the concurrent downloads run (a finished one is replaced) and /ping is timed as in loop"
    " health.",
    "Import: median of the cumulative `python -I -X importtime -c 'import sendfs'` figure for"
    " sendfs over fresh interpreters, after one warm-up run, in an empty working directory"
    " (isolated, so the checkout is not imported in place of the installed package and the"
    " warm-up's bytecode is used whatever PYTHONDONTWRITEBYTECODE says); first in a virtual"
    " environment holding only sendfs and its runtime dependencies (what `pip install sendfs`"
    " gives), then in the development environment, where Lilya also imports the optional"
    " packages it finds.",
)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="rounds per comparison (default 5, quick 2)")
    parser.add_argument("--quick", action="store_true", help="a smaller, shorter smoke run")
    parser.add_argument("--only", help=f"comma-separated sections of {','.join(SECTIONS)}")
    parser.add_argument("--output", type=Path, help="where to write the Markdown report")
    args = parser.parse_args(argv)
    args.sections = set(args.only.split(",")) if args.only else set(SECTIONS)
    unknown = args.sections - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
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
            quick=True,
        )
    return Settings(
        rounds=args.rounds or 5,
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
        return [Row(section, "error", f"{type(exc).__name__}: {exc}"[:200], "", "ERROR")]


def _import_rows(settings: Settings) -> list[Row]:
    python = runtime_only_python(ROOT, data_dir())
    clean = import_time_ms(settings.import_runs, python)
    dev = import_time_ms(settings.import_runs)
    return [
        Row(
            "7 import",
            "import sendfs, runtime dependencies only (fresh venv)",
            f"{clean:.0f} ms (median of {settings.import_runs})",
            "< 150 ms",
            verdict(clean < 150),
        ),
        Row(
            "7 import",
            "import sendfs, development environment (Lilya imports PyYAML, python-magic)",
            f"{dev:.0f} ms (median of {settings.import_runs})",
        ),
    ]


def _plan(
    servers: Servers, files: DataFiles, settings: Settings, s3_object: s3.S3Object | None
) -> list[tuple[str, Callable[[], list[Row]]]]:
    """The sections in table order; the S3 ones only with an S3 object."""
    plan: list[tuple[str, Callable[[], list[Row]]]] = [
        ("local", lambda: local.local_throughput(servers, files, settings, _progress)),
        ("memory", lambda: local.rss_local(servers, files, settings, _progress)),
    ]
    if s3_object is not None:
        plan.insert(1, ("s3", lambda: s3.s3_throughput(servers, s3_object, settings, _progress)))
        plan += [
            ("memory", lambda: s3.rss_s3(servers, s3_object, settings, _progress)),
            ("requests", lambda: s3.s3_requests(servers, s3_object, _progress)),
        ]
    return [
        *plan,
        ("ping", lambda: local.ping_under_load(servers, files, settings, _progress)),
        ("small", lambda: local.small_files(servers, files, settings, _progress)),
        ("import", lambda: _import_rows(settings)),
        ("bytesio", lambda: in_memory.in_memory_exports(servers, settings, _progress)),
    ]


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
