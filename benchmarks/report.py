"""The result table (stdout and Markdown) and the description of the machine it was made on."""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from benchmarks.servers import nginx_binary

__all__ = [
    "SECTION_NAMES",
    "Row",
    "environment",
    "load_average",
    "markdown",
    "text_table",
    "verdict",
]

#: The sections ``--only`` picks from, in table order.
SECTION_NAMES = (
    "local",
    "s3",
    "bytesio",
    "small",
    "flask",
    "django",
    "offload",
    "import",
    "load",
    "requests",
)

PACKAGES = (
    "sendfs",
    "starlette",
    "lilya",
    "uvicorn",
    "uvloop",
    "httptools",
    "granian",
    "gunicorn",
    "flask",
    "django",
    "s3fs",
    "aiobotocore",
    "boto3",
    "moto",
)
HEADER = ("#", "measure", "result", "server CPU", "target", "verdict")


@dataclass(frozen=True)
class Row:
    """One line of the table; ``target`` and ``verdict`` are empty for reference figures."""

    section: str
    measure: str
    result: str
    cpu: str = ""
    target: str = ""
    verdict: str = ""

    def cells(self) -> tuple[str, str, str, str, str, str]:
        return (self.section, self.measure, self.result, self.cpu, self.target, self.verdict)


def verdict(checks: bool | Mapping[str, bool]) -> str:
    """PASS, or MISS; with named checks, MISS says which failed (``MISS (CPU)``)."""
    if isinstance(checks, bool):
        return "PASS" if checks else "MISS"
    missed = [name for name, ok in checks.items() if not ok]
    return f"MISS ({', '.join(missed)})" if missed else "PASS"


def text_table(rows: Sequence[Row]) -> str:
    """A plain fixed-width table for the terminal."""
    lines = [HEADER, *(row.cells() for row in rows)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(HEADER))]
    rendered = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in lines
    ]
    rendered.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in rendered)


def _markdown_table(rows: Sequence[Row]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(HEADER), line(["---"] * len(HEADER)), *(line(r.cells()) for r in rows)])


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    output = (done.stdout or done.stderr).strip()
    return output.splitlines()[0] if output else "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def load_average() -> str:
    """The 1-minute load average, to tell a quiet machine from a busy one."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment() -> dict[str, str]:
    """Machine, tools and package versions, for the report's header."""
    nginx = nginx_binary()
    wrk = shutil.which("wrk")
    system = f"{platform.system()} {platform.release()}"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {_cpu_model()}, {_memory()} RAM, {system}",
        "python": platform.python_version(),
        **{package: _version(package) for package in PACKAGES},
        "nginx": _first_line([nginx, "-v"]).removeprefix("nginx version: ")
        if nginx
        else "not installed",
        "curl": " ".join(_first_line(["curl", "--version"]).split()[:2]),
        "wrk": " ".join(_first_line([wrk, "-v"]).split()[:2]) if wrk else "not installed",
    }


def markdown(rows: Sequence[Row], env: dict[str, str], settings: str, notes: Sequence[str]) -> str:
    """The whole ``docs/benchmarks.md``."""
    environment_lines = "\n".join(f"- **{key}**: {value}" for key, value in env.items())
    note_lines = "\n".join(f"- {note}" for note in notes)
    return f"""# Benchmarks

Written by `nox -s bench` (`python -m benchmarks.run`); do not edit by hand. Every figure comes
from one run on one machine. Each target compares sendfs with what a user would otherwise run,
on the same server (the same program and options, one process per contender), in the same run:
the contenders are alternated round by round, each figure is the median of the rounds (min-max
in brackets), and a ratio is the median of the per-round ratios (contenders of a round run back
to back, so what drifts between rounds cancels out). MB = 10^6 bytes. "server CPU" is the user
+ sys time of the server's whole process tree (workers included) during each download, per GiB
sent (per request, or per download, where so labelled). Targets are those of issue 17; rows
marked "(issue 5)" keep that issue's. nginx figures are a reference, without a target. Timings
are never asserted by the tests: this page is the record. Why a line misses its target, and
what would meet it: [Where the time goes](performance.md).

Run it again with `nox -s bench` (about 12 minutes with the default 7 rounds on the machine
below; needs curl, and uses nginx and wrk when installed: the session installs them with
apt-get when it runs as root). `nox -s bench -- --quick` is a smoke run that writes no report
unless given `--output PATH`; `-- --rounds N` sets the rounds and `-- --only SECTIONS` picks
sections among
`{",".join(SECTION_NAMES)}`.
The test files are kept in `$SENDFS_BENCH_DATA` (default `<tmp>/sendfs-bench`) between runs.

## Environment

{environment_lines}
- **settings**: {settings}

## Results

{_markdown_table(rows)}

## Notes

{note_lines}
"""
