"""Probes: the latency of a trivial endpoint, the request rate of a small file."""

from __future__ import annotations

import http.client
import json
import math
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

__all__ = ["Latencies", "ping_latencies", "requests_per_second"]

_WRK_RATE = re.compile(r"Requests/sec:\s+([0-9.]+)")
_WRK_COUNT = re.compile(r"(\d+) requests in ")


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


def requests_per_second(url: str, connections: int, seconds: float) -> tuple[float, int, str]:
    """The request rate for ``url``, the requests made, and the tool.

    ``wrk -t1`` when installed, else ``benchmarks.load``.
    """
    wrk = shutil.which("wrk")
    timeout = seconds + 30
    if wrk:
        command = [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", url]
        output = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=True
        ).stdout
        rate, count = _WRK_RATE.search(output), _WRK_COUNT.search(output)
        if rate is None or count is None:
            raise RuntimeError(f"no rate in wrk's output:\n{output}")
        return float(rate.group(1)), int(count.group(1)), "wrk"
    command = [sys.executable, "-m", "benchmarks.load", url, str(connections), str(seconds)]
    output = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=True
    ).stdout
    result = json.loads(output)
    return result["requests"] / result["seconds"], int(result["requests"]), "python load loop"
