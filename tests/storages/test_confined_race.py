"""A directory inside the root swapped with a link out of it, while downloads run.

A thread exchanges ``root/race`` (a directory holding ``f.txt``) with a symbolic link to an
outside directory holding another ``f.txt``, as fast as it can, while requests for
``race/f.txt`` and listings of ``race/`` run: through the registry, through ``StorageFiles``
in-process, and (e2e) through ``StorageFiles`` served by uvicorn. Every answer must be the
inside file or a 404: never the outside bytes, never a 5xx, never a WARNING.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest

from sendfs import StorageFiles
from sendfs.exceptions import SendfsError, SourceNotFound
from sendfs.storages import StorageRegistry, confined
from sendfs.storages.base import ReadHint
from tests.conftest import free_port
from tests.helpers import asgi_client

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="symbolic links and renames over them need POSIX"
)

#: How long each part of the race runs.
RACE_SECONDS = 2.0
INSIDE = b"inside\n"
OUTSIDE = b"OUTSIDE SECRET\n"
#: A name only the outside directory holds: a listing showing it listed the outside.
OUTSIDE_ONLY = "outside-only.txt"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RaceTree:
    root: Path
    outside: Path


@pytest.fixture
def race_tree(tmp_path: Path) -> RaceTree:
    """``root/race/f.txt`` inside, ``outside/f.txt`` out, and ``root/swap`` -> ``outside``."""
    root = tmp_path / "root"
    (root / "race").mkdir(parents=True)
    (root / "race" / "f.txt").write_bytes(INSIDE)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_bytes(OUTSIDE)
    (outside / OUTSIDE_ONLY).write_bytes(OUTSIDE)
    os.symlink(outside, root / "swap")
    return RaceTree(root, outside)


@contextmanager
def swapping(root: Path) -> Iterator[Counter[str]]:
    """Swap ``root/race`` and ``root/swap`` in another process until the block ends.

    The counter yielded gets the number of swaps once the block is over.
    """
    command = [sys.executable, "-m", "tests.storages.swapper", "race", "swap"]
    swapper = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, env=_with_tests(root))
    assert swapper.stdout is not None
    counts: Counter[str] = Counter()
    try:
        assert swapper.stdout.readline() == b"ready\n"
        yield counts
    finally:
        swapper.terminate()
        output, _ = swapper.communicate(timeout=10)
    assert swapper.returncode == 0
    counts["swaps"] = int(output)
    assert (root / "race").is_dir()
    assert not (root / "race").is_symlink()


def _with_tests(root: Path) -> dict[str, str]:
    """The environment, with the project on ``PYTHONPATH`` (the swapper runs in ``root``)."""
    paths = [str(PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


@dataclass
class Tally:
    """What the downloads got."""

    answers: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)

    def file(self, status: int, body: bytes) -> None:
        if b"OUTSIDE" in body:
            self.answers["outside"] += 1
        elif status == 200 and body == INSIDE:
            self.answers["inside"] += 1
        elif status == 404:
            self.answers["404"] += 1
        else:
            self.unexpected.append(f"{status} {body[:80]!r}")

    def listing(self, status: int, body: bytes) -> None:
        if OUTSIDE_ONLY.encode() in body:
            self.answers["outside listing"] += 1
        elif status == 200 and b"f.txt" in body:
            self.answers["inside listing"] += 1
        elif status == 404:
            self.answers["404 listing"] += 1
        else:
            self.unexpected.append(f"listing {status} {body[:80]!r}")


async def _open_loop(reg: StorageRegistry, root: Path, tally: Tally, deadline: float) -> None:
    hint = ReadHint() if secrets.randbelow(2) else None  # the small-file path, or not
    while time.monotonic() < deadline:
        try:
            resource = await reg.open(reg.locate(str(root), "race/f.txt"), read_hint=hint)
        except SourceNotFound:
            tally.file(404, b"")
            continue
        except SendfsError as exc:
            tally.unexpected.append(repr(exc))
            continue
        try:
            body = b"".join([chunk async for chunk in resource.iter_range(0, None, 1024)])
        finally:
            await resource.aclose()
        tally.file(200, body)


async def _list_loop(reg: StorageRegistry, root: Path, tally: Tally, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            entries = await reg.list(reg.locate(str(root), "race"))
        except SourceNotFound:
            tally.listing(404, b"")
            continue
        except SendfsError as exc:
            tally.unexpected.append(repr(exc))
            continue
        tally.listing(200, " ".join(entry.name for entry in entries).encode())


async def _http_loop(client: httpx.AsyncClient, tally: Tally, deadline: float) -> None:
    turn = 0
    while time.monotonic() < deadline:
        turn += 1
        if turn % 4:
            response = await client.get("/race/f.txt")
            tally.file(response.status_code, response.content)
        else:
            response = await client.get("/race/")
            tally.listing(response.status_code, response.content)


def _assert_never_outside(tally: Tally, counts: Counter[str]) -> None:
    summary = f"{dict(tally.answers)}, {counts['swaps']} swaps"
    print(summary)  # shown with -s: how hard the race was run
    assert tally.answers["outside"] == 0, summary
    assert tally.answers["outside listing"] == 0, summary
    assert tally.unexpected == [], summary
    assert tally.answers["inside"] > 0, summary  # the race did not starve every request
    assert counts["swaps"] > 100, summary


@pytest.mark.anyio
@pytest.mark.parametrize("strategy", ["openat2", "walk"])
async def test_rename_race_never_leads_a_download_out_of_the_root(
    race_tree: RaceTree,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    strategy: str,
) -> None:
    if strategy == "openat2" and confined._openat2() is None:
        pytest.skip("this kernel (or its seccomp filter) has no openat2")
    monkeypatch.setattr(confined, "prefer_openat2", strategy == "openat2")
    caplog.set_level(logging.DEBUG, logger="sendfs")
    reg = StorageRegistry(entry_points=False)
    app = StorageFiles(race_tree.root, listing=True, registry=reg)
    tally = Tally()
    with swapping(race_tree.root) as counts:
        deadline = time.monotonic() + RACE_SECONDS
        async with asgi_client(app) as client, anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(_open_loop, reg, race_tree.root, tally, deadline)
                group.start_soon(_http_loop, client, tally, deadline)
            group.start_soon(_list_loop, reg, race_tree.root, tally, deadline)
    _assert_never_outside(tally, counts)
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == []


# -- the same race against a real uvicorn server ---------------------------------------------


@contextmanager
def race_server(root: Path, log: Path) -> Iterator[str]:
    """uvicorn serving ``tests.e2e.race_app`` over ``root`` on a free port of 127.0.0.1."""
    port = free_port()
    command = [
        *(sys.executable, "-m", "uvicorn", "--factory", "tests.e2e.race_app:create_app"),
        *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
    ]
    env = {**os.environ, "SENDFS_RACE_ROOT": str(root), "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    with httpx.Client(base_url=url, timeout=1.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"uvicorn exited:\n{log.read_text(errors='replace')}")
            try:
                if client.get("/race/f.txt").content == INSIDE:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    pytest.fail(f"uvicorn did not answer:\n{log.read_text(errors='replace')}")


@pytest.mark.e2e
def test_rename_race_never_leads_a_download_out_of_the_root_under_uvicorn(
    race_tree: RaceTree, tmp_path: Path
) -> None:
    log = tmp_path / "uvicorn.log"
    tally = Tally()

    async def download() -> None:
        deadline = time.monotonic() + RACE_SECONDS
        limits = httpx.Limits(max_connections=8)
        async with (
            httpx.AsyncClient(base_url=url, trust_env=False, limits=limits) as client,
            anyio.create_task_group() as group,
        ):
            for _ in range(8):
                group.start_soon(_http_loop, client, tally, deadline)

    with race_server(race_tree.root, log) as url, swapping(race_tree.root) as counts:
        anyio.run(download)
    _assert_never_outside(tally, counts)
    output = log.read_text(errors="replace")
    assert "WARNING" not in output
    assert "ERROR" not in output
    assert "Traceback" not in output


def test_the_swapper_leaves_the_tree_as_it_found_it(race_tree: RaceTree) -> None:
    with swapping(race_tree.root) as counts:
        time.sleep(0.1)
    assert counts["swaps"] > 0
    assert (race_tree.root / "swap").is_symlink()
    assert sorted(os.listdir(race_tree.root)) == ["race", "swap"]
