"""Answers for synchronous code: one event-loop thread, a WSGI body, a file for file_wrapper."""

from __future__ import annotations

import io
import os
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
