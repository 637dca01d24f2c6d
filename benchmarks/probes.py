"""Probes: latency of a trivial endpoint, request rate of a small file, ``import sendfs`` time."""

from __future__ import annotations

import http.client
import json
import math
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Latencies",
    "import_time_ms",
    "imported_sendfs",
    "ping_latencies",
    "requests_per_second",
    "runtime_only_python",
]

_WRK_RATE = re.compile(r"Requests/sec:\s+([0-9.]+)")


@dataclass(frozen=True)
class Latencies:
    """Request latencies in milliseconds."""

    samples: tuple[float, ...]

    def percentile(self, fraction: float) -> float:
        """The nearest-rank percentile (``fraction`` 0.99 for p99)."""
        ordered = sorted(self.samples)
        index = min(len(ordered), max(1, math.ceil(fraction * len(ordered)))) - 1
        return ordered[index]


def ping_latencies(port: int, path: str, count: int, interval: float, deadline: float) -> Latencies:
    """``count`` sequential GETs on one keep-alive connection, ``interval`` s apart.

    Stops early at ``deadline`` (a ``time.monotonic()`` value). A failed request reconnects
    and counts the time it took.
    """
    samples: list[float] = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        while len(samples) < count and time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            samples.append((time.perf_counter() - started) * 1000)
            time.sleep(interval)
    finally:
        connection.close()
    return Latencies(tuple(samples))


def requests_per_second(url: str, connections: int, seconds: float) -> tuple[float, str]:
    """The request rate for ``url``: ``wrk -t1`` when installed, else ``benchmarks.load``."""
    wrk = shutil.which("wrk")
    timeout = seconds + 30
    if wrk:
        command = [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", url]
        output = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=True
        ).stdout
        found = _WRK_RATE.search(output)
        if found is None:
            raise RuntimeError(f"no rate in wrk's output:\n{output}")
        return float(found.group(1)), "wrk"
    command = [sys.executable, "-m", "benchmarks.load", url, str(connections), str(seconds)]
    output = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=True
    ).stdout
    result = json.loads(output)
    return result["requests"] / result["seconds"], "python load loop"


def _import_cumulative_us(stderr: str) -> int:
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        *_, cumulative, name = (part.strip() for part in re.split(r"[:|]", line, maxsplit=3))
        if name == "sendfs" and cumulative.isdigit():
            return int(cumulative)
    raise RuntimeError("no 'sendfs' line in the -X importtime output")


def imported_sendfs(python: str) -> str:
    """The file ``import sendfs`` loads in ``python`` as the import probe runs it.

    Args:
        python: The interpreter.
    """
    command = [python, "-I", "-c", "import sendfs; print(sendfs.__file__)"]
    with tempfile.TemporaryDirectory() as neutral:
        done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=neutral)
    return done.stdout.strip()


def import_time_ms(runs: int, python: str = sys.executable) -> float:
    """Median cumulative ``import sendfs`` time over ``runs`` fresh interpreters (one warm-up).

    The interpreters run isolated (``-I``) in an empty directory, as a user's program imports
    an installed package: the checkout in the working directory is not on ``sys.path``, and
    ``PYTHONDONTWRITEBYTECODE``/``PYTHONPATH`` in the runner's environment do not apply, so
    the warm-up's bytecode is used rather than every module compiled again from source.

    Args:
        runs: Interpreters to time.
        python: The interpreter, e.g. one of a virtual environment with sendfs installed.
    """
    command = [python, "-I", "-X", "importtime", "-c", "import sendfs"]
    with tempfile.TemporaryDirectory() as neutral:
        subprocess.run(command, capture_output=True, check=True, cwd=neutral)
        samples = []
        for _ in range(runs):
            done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=neutral)
            samples.append(_import_cumulative_us(done.stderr) / 1000)
    return statistics.median(samples)


def runtime_only_python(root: Path, workdir: Path) -> str:
    """The interpreter of a virtual environment holding sendfs and its runtime dependencies only.

    What ``pip install sendfs`` gives a user: Lilya imports optional packages it finds (PyYAML,
    python-magic), so the development environment's figure depends on what else is installed.
    The environment is created once under ``workdir`` and the project reinstalled each time.

    Args:
        root: The project checkout.
        workdir: Where the environment is kept between runs.
    """
    venv = workdir / "import-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", str(root)], check=True)
    else:
        install = [str(python), "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps"]
        subprocess.run([*install, str(root)], check=True)
    imported = Path(imported_sendfs(str(python))).resolve()
    if not imported.is_relative_to(venv.resolve()):
        raise RuntimeError(f"the import probe would time {imported}, not the installed package")
    return str(python)
