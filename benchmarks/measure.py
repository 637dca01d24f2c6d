"""Client-side measurements: curl downloads (metered: with the server's CPU), a steady load of
downloads, and the RSS sampler.

Every process started here is stopped by its PID before the function returns, also on errors
and Ctrl-C.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.cpu import cpu_seconds, cpu_snapshot
from benchmarks.rounds import Sample

__all__ = [
    "CPU_PER_GIB",
    "GIB",
    "MB_PER_S",
    "CurlLoad",
    "Download",
    "RssSampler",
    "curl_download",
    "metered_download",
    "rss_kib",
]

GIB = 1024 * 1024 * 1024
#: The figures of a metered download.
MB_PER_S = "MB/s"
CPU_PER_GIB = "CPU s/GiB"
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


def metered_download(
    pid: int, url: str, expected: int | None = None, headers: Sequence[str] = ()
) -> Sample:
    """One curl download: MB/s, and the CPU the server tree of ``pid`` used per GiB sent.

    The server's CPU is read just before curl starts and just after it got the last byte.
    """
    before = cpu_snapshot(pid)
    done = curl_download(url, expected, headers)
    cpu = cpu_seconds(before, cpu_snapshot(pid))
    return {MB_PER_S: done.mb_per_s, CPU_PER_GIB: cpu * GIB / done.size}


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
