"""Answers for synchronous code: one event-loop thread, a WSGI body, a file for file_wrapper."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from pathlib import Path

from sendfs import DownloadEvent
from sendfs.responses import blocking
from sendfs.responses.core import Download
from sendfs.storages import StorageRegistry

CONTENT = bytes(range(256)) * 1024


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_every_answer_runs_on_one_long_lived_loop_thread(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(CONTENT)
    threads = set()
    for _ in range(3):
        answer, first, _ = blocking.answer(Download(path), "GET", {"range": "bytes=0-9"}, [])
        body = blocking.BlockingBody(answer, first)
        assert b"".join(body) == CONTENT[:10]
        body.close()
        threads.add(blocking.portal().call(threading.get_ident))
    assert len(threads) == 1
    assert threads != {threading.get_ident()}


def test_a_confined_file_is_sent_from_a_duplicate_descriptor_never_by_name(
    tmp_path: Path,
) -> None:
    (tmp_path / "f.bin").write_bytes(CONTENT)
    registry = StorageRegistry(entry_points=False)
    download = Download(registry.locate(str(tmp_path), "f.bin"), registry=registry)
    before = _open_fds()
    answer, first, _ = blocking.answer(download, "GET", {}, [], file_wrapper=True)
    assert (answer.whole_file, answer.path, first) == (True, None, b"")
    with blocking.LocalFile(answer, None, []) as file:
        assert file.read() == CONTENT
    assert _open_fds() == before


def test_without_file_wrapper_the_whole_file_streams(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(CONTENT)
    answer, first, _ = blocking.answer(Download(path, chunk_size=65536), "GET", {}, [])
    assert (answer.whole_file, answer.path) == (False, None)
    body = blocking.BlockingBody(answer, first)
    assert b"".join(body) == CONTENT
    body.close()


def test_the_body_emits_one_event_on_close_also_without_a_body() -> None:
    events: list[DownloadEvent] = []
    for method, expected in (("GET", len(b"in memory")), ("HEAD", 0)):
        download = Download(io.BytesIO(b"in memory"), on_complete=events.append)
        answer, first, tracker = blocking.answer(download, method, {}, [])
        body = blocking.BlockingBody(answer, first, tracker, download.hooks())
        assert len(b"".join(body)) == expected
        body.close()
        body.close()
    assert [(e.method, e.status, e.bytes_sent, e.aborted) for e in events] == [
        ("GET", 200, 9, False),
        ("HEAD", 200, 0, False),
    ]


FORKED = """
import os, sys, tempfile
from sendfs.responses import blocking
from sendfs.responses.core import Download

path = os.path.join(tempfile.mkdtemp(), "f.bin")
open(path, "wb").write(b"x" * 1000)

def read_once():
    answer, first, _ = blocking.answer(Download(path), "GET", {"range": "bytes=0-9"}, [])
    body = blocking.BlockingBody(answer, first)
    data = b"".join(body)
    body.close()
    return data

assert read_once() == b"x" * 10  # the parent's loop thread runs
child = os.fork()
if child == 0:
    assert read_once() == b"x" * 10  # the child starts its own
    sys.exit(0)  # and exits without waiting for the parent's thread
_, status = os.waitpid(child, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
print("ok")
"""


def test_a_forked_child_starts_its_own_loop_and_exits() -> None:
    """gunicorn --preload forks workers from a parent that may have used the loop already."""
    done = subprocess.run(
        [sys.executable, "-c", FORKED], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_closing_while_a_read_is_in_flight_waits_for_it_and_releases_the_file(
    tmp_path: Path,
) -> None:
    """Django's ASGI handler closes a sync view's body from another thread on a disconnect."""
    path = tmp_path / "f.bin"
    path.write_bytes(CONTENT)
    before = _open_fds()
    for _ in range(20):
        answer, first, _ = blocking.answer(Download(path, chunk_size=1024), "GET", {}, [])
        body = blocking.BlockingBody(answer, first)
        next(body)
        reader = threading.Thread(target=lambda body=body: [None for _ in body])
        reader.start()
        body.close()
        reader.join(10)
        assert not reader.is_alive()
    assert _open_fds() == before
