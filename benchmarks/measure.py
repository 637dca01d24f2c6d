"""Client-side measurements: curl downloads (one, many, or a steady load) and the RSS sampler.

Every process started here is stopped by its PID before the function returns, also on errors
and Ctrl-C.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CurlLoad",
    "Download",
    "Growth",
    "RssSampler",
    "curl_concurrent",
    "curl_download",
    "rss_growth",
    "rss_kib",
]

CURL_FORMAT = "%{http_code} %{size_download} %{time_total}"
CURL_TIMEOUT = 300.0


@dataclass(frozen=True)
class Download:
    """One finished download."""

    status: int
    size: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.size / self.seconds / 1e6


def _curl_command(url: str, headers: Sequence[str] = ()) -> list[str]:
    command = ["curl", "-s", "--noproxy", "*", "-o", "/dev/null", "-w", CURL_FORMAT]
    for header in headers:
        command += ["-H", header]
    return [*command, url]


def _parse(output: str, url: str, expected: int | None) -> Download:
    status, size, seconds = output.split()
    download = Download(int(status), int(size), float(seconds))
    if download.status not in (200, 206) or (expected is not None and download.size != expected):
        raise RuntimeError(f"{url}: status {download.status}, {download.size} bytes")
    return download


def curl_download(url: str, expected: int | None = None, headers: Sequence[str] = ()) -> Download:
    """Download ``url`` with curl to /dev/null; check the status and the size."""
    done = subprocess.run(
        _curl_command(url, headers),
        capture_output=True,
        text=True,
        timeout=CURL_TIMEOUT,
        check=False,
    )
    return _parse(done.stdout, url, expected)


def _kill_all(processes: Sequence[subprocess.Popen[Any]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
    for process in processes:
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


def curl_concurrent(url: str, count: int, expected: int) -> tuple[float, list[Download]]:
    """``count`` curl downloads at once; the wall time and each download."""
    processes: list[subprocess.Popen[str]] = []
    try:
        started = time.perf_counter()
        processes.extend(
            subprocess.Popen(_curl_command(url), stdout=subprocess.PIPE, text=True)
            for _ in range(count)
        )
        outputs = [process.communicate(timeout=CURL_TIMEOUT)[0] for process in processes]
        wall = time.perf_counter() - started
    finally:
        _kill_all(processes)
    return wall, [_parse(output, url, expected) for output in outputs]


class CurlLoad:
    """Keeps ``count`` downloads of ``url`` running (a finished one is replaced) until stopped."""

    def __init__(self, url: str, count: int) -> None:
        self._url = url
        self._count = count
        self._processes: list[subprocess.Popen[bytes]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.completed = 0

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(_curl_command(self._url), stdout=subprocess.DEVNULL)

    def _run(self) -> None:
        while not self._done.wait(0.02):
            for index, process in enumerate(self._processes):
                if process.poll() is not None:
                    self.completed += 1
                    self._processes[index] = self._spawn()

    def __enter__(self) -> CurlLoad:
        self._processes = [self._spawn() for _ in range(self._count)]
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()
        _kill_all(self._processes)


def rss_kib(pid: int) -> int:
    """The resident set size of ``pid`` in KiB (``VmRSS`` in ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for PID {pid}")


class RssSampler:
    """Samples the RSS of ``pid`` every ``interval`` seconds; ``peak_kib`` is the maximum seen."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self._pid = pid
        self._interval = interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.peak_kib = 0

    def _run(self) -> None:
        while True:
            with suppress(OSError, RuntimeError):
                self.peak_kib = max(self.peak_kib, rss_kib(self._pid))
            if self._done.wait(self._interval):
                return

    @contextmanager
    def running(self) -> Iterator[RssSampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._done.set()
            self._thread.join()
            with suppress(OSError, RuntimeError):
                self.peak_kib = max(self.peak_kib, rss_kib(self._pid))


@dataclass(frozen=True)
class Growth:
    """How much a process's RSS grew over its idle level during a load."""

    idle_kib: int
    peak_kib: int
    detail: str

    @property
    def mib(self) -> float:
        return (self.peak_kib - self.idle_kib) / 1024

    def show(self) -> str:
        return (
            f"{self.mib:.1f} MiB (idle {self.idle_kib / 1024:.1f}, peak {self.peak_kib / 1024:.1f}"
            f" MiB; {self.detail})"
        )


def rss_growth(pid: int, warm_up: Callable[[], object], load: Callable[[], str]) -> Growth:
    """Warm up, take the idle RSS, run ``load`` while sampling every 50 ms."""
    warm_up()
    time.sleep(0.5)
    idle = rss_kib(pid)
    sampler = RssSampler(pid)
    with sampler.running():
        detail = load()
    return Growth(idle, sampler.peak_kib, detail)
