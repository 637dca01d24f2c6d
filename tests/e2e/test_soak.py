"""Soak: 50 concurrent clients against one real uvicorn server for a bounded time.

Each client (its own ``httpx.AsyncClient``, so its own keep-alive connections over TCP on
127.0.0.1) loops until the deadline over a random mix of sources (local file, ``memory://``,
``s3://`` through the moto server) and requests: full downloads, random ranges (closed, open
ended, suffix), and aborts (the stream closed after a random number of bytes). It checks:

- every completed body byte for byte (a full body by sha256, a range against the slice) and
  every abort's prefix;
- the server logs no exception other than a client disconnect;
- the server's open descriptors (``/proc/<pid>/fd``) and RSS return near the warmed-up
  baseline once the clients are gone, it answers at once, and it still shuts down cleanly.

``SENDFS_SOAK_SECONDS`` sets the duration (default 15), ``SENDFS_SOAK_SEED`` replays a mix.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest

from tests.e2e.app import BIG_NAME, TEXT_NAME
from tests.e2e.conftest import S3_KEY, E2EData, UvicornServer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc"),
]

CLIENTS = 50
SOAK_SECONDS = float(os.environ.get("SENDFS_SOAK_SECONDS", "15"))
SEED = int(os.environ.get("SENDFS_SOAK_SEED", str(random.SystemRandom().randrange(1 << 32))))
#: After the run: how long the server may take to close what the clients left open.
SETTLE_DEADLINE = 10.0
#: Open descriptors the server may keep above its baseline (keep-alive sockets closing late).
FD_SLACK = 8
RSS_GROWTH_LIMIT = 64 * 1024 * 1024
#: "At once": the first request after the run.
ANSWER_DEADLINE = 1.0
REQUEST_TIMEOUT = 30.0
#: Extra time the clients get after the deadline to finish the request they are in.
OVERRUN = 60.0
#: Concurrent full downloads per route before the baseline is taken: they open what the server
#: keeps for its lifetime (worker threads, s3fs's connection pool, lazily imported modules).
WARMUP_CONCURRENCY = 16
#: The only exceptions the server may log: the peer went away while the response was sent.
DISCONNECT = re.compile(
    r"ClientDisconnect|ConnectionResetError|BrokenPipeError|ConnectionAbortedError"
)
KINDS = ("full", "range", "abort")


@dataclass(frozen=True)
class Source:
    """A route and the exact bytes it serves."""

    kind: str
    route: str
    body: bytes
    sha256: str


def sources(data: E2EData) -> list[Source]:
    routes = [
        ("local", f"/local/{BIG_NAME}", data.big),
        ("local", f"/local/{TEXT_NAME}", data.text),
        ("memory", f"/memory/{BIG_NAME}", data.big),
        ("memory", f"/memory/{TEXT_NAME}", data.text),
        ("s3", f"/s3/{S3_KEY}", data.big),
    ]
    return [
        Source(kind, route, body, hashlib.sha256(body).hexdigest()) for kind, route, body in routes
    ]


@dataclass
class Tally:
    """What the clients did, for the assertions on the mix and for failure messages."""

    requests: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    bytes_received: int = 0

    def __str__(self) -> str:
        return (
            f"requests {dict(self.requests)}, sources {dict(self.sources)}, "
            f"{self.bytes_received / 2**20:.0f} MiB"
        )


# -- the server process -------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    fds: int
    rss: int

    def __str__(self) -> str:
        return f"{self.fds} fds, {self.rss / 2**20:.1f} MiB RSS"


def usage(pid: int) -> Usage:
    """Open descriptors and resident memory of process ``pid``, from /proc."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB$", status, re.MULTILINE)
    assert match is not None, status
    return Usage(fds=fds, rss=int(match.group(1)) * 1024)


async def settle(pid: int, at_most: int) -> Usage:
    """Poll until the server holds at most ``at_most`` descriptors (bounded); the last usage."""
    deadline = time.monotonic() + SETTLE_DEADLINE
    current = usage(pid)
    while current.fds > at_most and time.monotonic() < deadline:
        await anyio.sleep(0.1)
        current = usage(pid)
    return current


async def steady(pid: int) -> Usage:
    """The usage once the descriptor count held still for half a second (bounded)."""
    deadline = time.monotonic() + SETTLE_DEADLINE
    previous = usage(pid)
    while time.monotonic() < deadline:
        await anyio.sleep(0.5)
        current = usage(pid)
        if current.fds == previous.fds:
            return current
        previous = current
    return previous


def unexpected_errors(log: str) -> list[str]:
    """Error records and tracebacks of ``log`` that are not about a client disconnect."""
    records = re.split(r"\n(?=(?:INFO|WARNING|ERROR|CRITICAL|DEBUG):)", log)
    suspicious = re.compile(r"Traceback|ERROR|CRITICAL|Exception|Unclosed|never retrieved")
    return [
        record for record in records if suspicious.search(record) and not DISCONNECT.search(record)
    ]


# -- the clients --------------------------------------------------------------------------------


def random_range(rng: random.Random, size: int) -> tuple[str, int, int]:
    """A satisfiable Range header value and the half-open slice it selects."""
    form = rng.choice(("closed", "open", "suffix"))
    start = rng.randrange(size)
    if form == "closed":
        stop = rng.randint(start + 1, size)
        return f"bytes={start}-{stop - 1}", start, stop
    if form == "open":
        return f"bytes={start}-", start, size
    length = rng.randint(1, size)
    return f"bytes=-{length}", size - length, size


async def download_full(client: httpx.AsyncClient, source: Source, tally: Tally) -> None:
    digest = hashlib.sha256()
    received = 0
    async with client.stream("GET", source.route) as response:
        assert response.status_code == 200, source.route
        assert response.headers["content-length"] == str(len(source.body))
        async for chunk in response.aiter_raw():
            digest.update(chunk)
            received += len(chunk)
    tally.bytes_received += received
    assert received == len(source.body), source.route
    assert digest.hexdigest() == source.sha256, f"{source.route}: the body differs"


async def download_range(
    client: httpx.AsyncClient, source: Source, rng: random.Random, tally: Tally
) -> None:
    size = len(source.body)
    header, start, stop = random_range(rng, size)
    response = await client.get(source.route, headers={"Range": header})
    tally.bytes_received += len(response.content)
    assert response.status_code == 206, (source.route, header, response.status_code)
    assert response.headers["content-range"] == f"bytes {start}-{stop - 1}/{size}", header
    assert response.content == source.body[start:stop], f"{source.route} {header}: bytes differ"


async def download_and_abort(
    client: httpx.AsyncClient, source: Source, rng: random.Random, tally: Tally
) -> None:
    """Read a random number of bytes (of the whole body or of a range), then close the stream."""
    size = len(source.body)
    headers, start = {}, 0
    if rng.random() < 0.3:
        header, start, _ = random_range(rng, size)
        headers["Range"] = header
    wanted = rng.randrange(size - start + 1)
    received = bytearray()
    async with client.stream("GET", source.route, headers=headers) as response:
        assert response.status_code in (200, 206), (source.route, headers)
        async for chunk in response.aiter_raw():
            received += chunk
            if len(received) >= wanted:
                break  # leaving the block closes the response, and so the connection
    tally.bytes_received += len(received)
    assert bytes(received) == source.body[start : start + len(received)], source.route


async def client_loop(
    base_url: str, catalogue: list[Source], rng: random.Random, deadline: float, tally: Tally
) -> None:
    async with httpx.AsyncClient(
        base_url=base_url, timeout=REQUEST_TIMEOUT, trust_env=False
    ) as client:
        while time.monotonic() < deadline:
            source = rng.choice(catalogue)
            kind = rng.choices(KINDS, weights=(3, 4, 3))[0]
            tally.requests[kind] += 1
            tally.sources[source.kind] += 1
            if kind == "full":
                await download_full(client, source, tally)
            elif kind == "range":
                await download_range(client, source, rng, tally)
            else:
                await download_and_abort(client, source, rng, tally)


async def warm_up(base_url: str, catalogue: list[Source]) -> None:
    tally = Tally()
    limits = httpx.Limits(max_connections=WARMUP_CONCURRENCY)
    async with (
        httpx.AsyncClient(
            base_url=base_url, timeout=REQUEST_TIMEOUT, trust_env=False, limits=limits
        ) as client,
        anyio.create_task_group() as group,
    ):
        for source in catalogue:
            for _ in range(WARMUP_CONCURRENCY):
                group.start_soon(download_full, client, source, tally)


@dataclass(frozen=True)
class SoakResult:
    baseline: Usage
    peak: Usage
    after: Usage
    tally: Tally
    answer_seconds: float


async def soak(server: UvicornServer, catalogue: list[Source]) -> SoakResult:
    pid = server.process.pid
    await warm_up(server.url, catalogue)
    baseline = await steady(pid)
    tally = Tally()
    peak = baseline
    deadline = time.monotonic() + SOAK_SECONDS
    master = random.Random(SEED)

    async def sample() -> None:
        nonlocal peak
        while True:
            now = usage(pid)
            peak = Usage(max(peak.fds, now.fds), max(peak.rss, now.rss))
            await anyio.sleep(0.5)

    with anyio.fail_after(SOAK_SECONDS + OVERRUN):
        async with anyio.create_task_group() as clients:
            for _ in range(CLIENTS):
                rng = random.Random(master.randrange(1 << 32))
                clients.start_soon(client_loop, server.url, catalogue, rng, deadline, tally)
            async with anyio.create_task_group() as sampler:
                sampler.start_soon(sample)
                await anyio.sleep(SOAK_SECONDS)
                sampler.cancel_scope.cancel()
    after = await settle(pid, baseline.fds + FD_SLACK)
    async with httpx.AsyncClient(base_url=server.url, timeout=5.0, trust_env=False) as client:
        started = time.monotonic()
        response = await client.get(f"/local/{TEXT_NAME}")
        answer_seconds = time.monotonic() - started
    assert response.status_code == 200
    assert response.content == catalogue[1].body
    return SoakResult(baseline, peak, after, tally, answer_seconds)


def test_fifty_clients_mixing_sources_ranges_and_aborts_leave_no_trace(
    start_uvicorn: Callable[[], AbstractContextManager[UvicornServer]], e2e_data: E2EData
) -> None:
    catalogue = sources(e2e_data)
    with start_uvicorn() as server:
        try:
            result = anyio.run(soak, server, catalogue)
        except BaseException:
            print(f"SENDFS_SOAK_SEED={SEED}; server log:\n{server.log_text()[-6000:]}")
            raise
        # A clean shutdown too: uvicorn re-raises the SIGTERM it handled once it is done.
        returncode = server.stop()
    summary = (
        f"seed {SEED}; {result.tally}; baseline {result.baseline}, peak {result.peak}, "
        f"after {result.after}"
    )
    print(summary)  # shown with -rA / -s: what the run did
    assert set(result.tally.requests) == set(KINDS), summary
    assert set(result.tally.sources) == {"local", "memory", "s3"}, summary
    assert result.after.fds <= result.baseline.fds + FD_SLACK, summary
    assert result.after.rss - result.baseline.rss < RSS_GROWTH_LIMIT, summary
    assert result.answer_seconds < ANSWER_DEADLINE, summary
    assert returncode in (0, -signal.SIGTERM), summary
    assert unexpected_errors(server.log_text()) == [], summary
