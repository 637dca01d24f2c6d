"""More stalled clients than the S3 pool holds cannot freeze the S3 routes.

``sendfs serve s3://bucket`` runs with a pool of :data:`POOL` S3 connections. :data:`STALLED`
clients (more than the pool) start a large download each and then read nothing. Each of the
first :data:`POOL` holds a connection while its response waits for it; before the fix, every
later S3 request waited for one for ever. Now:

- a small GET made meanwhile gets an answer within ``--storage-timeout`` (a 503 with
  ``Retry-After``), and so do the stalled clients the pool could not take;
- once the stalled responses have waited ``--send-timeout`` for their clients they are cut off
  and their connections released, and the small GET is a 200 again;
- nothing of this is logged above INFO by sendfs.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.test_cli import serving

pytestmark = [pytest.mark.e2e, pytest.mark.s3]

POOL = 4
STALLED = POOL + 2
SIZE = 32 * 1024 * 1024
STORAGE_TIMEOUT = 2.0
#: Well above STORAGE_TIMEOUT: the small GET's 503 comes before any stalled client is cut off.
SEND_TIMEOUT = 6.0
#: Slack for process scheduling on a loaded 2-core machine (a bound, not a timing target).
SLACK = 8.0
#: How long the S3 route may take to answer 200 again: the stalled responses are cut off
#: SEND_TIMEOUT after their sends start to wait, which a slow storage delays (a hang guard).
RECOVERY_DEADLINE = 60.0


def start_download(port: int, path: str) -> socket.socket:
    """Send a GET with a small receive buffer and read nothing yet."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=SEND_TIMEOUT + 4 * SLACK)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


def read_head(sock: socket.socket) -> bytes:
    """The status line and fields of the answer (reads a little of the body too)."""
    received = b""
    while b"\r\n\r\n" not in received:
        piece = sock.recv(64 * 1024)
        assert piece, f"the connection closed before the head: {received!r}"
        received += piece
    return received.partition(b"\r\n\r\n")[0]


def read_to_end(sock: socket.socket) -> int:
    """Read until the server closes the connection; the number of bytes read."""
    total = 0
    while piece := sock.recv(1024 * 1024):
        total += len(piece)
    return total


def test_stalled_clients_beyond_the_pool_cannot_freeze_s3_routes(
    tmp_path: Path, s3_client: Any, bucket: str
) -> None:
    s3_client.put_object(Bucket=bucket, Key="big.bin", Body=os.urandom(SIZE))
    s3_client.put_object(Bucket=bucket, Key="small.txt", Body=b"small and quick")
    options = [
        *("--send-timeout", str(SEND_TIMEOUT), "--storage-timeout", str(STORAGE_TIMEOUT)),
        *("-o", f'config_kwargs={{"max_pool_connections": {POOL}}}'),
        # Only what sendfs logs above INFO reaches stderr: none of this may.
        *("--log-level", "warning"),
    ]
    with serving(tmp_path, f"s3://{bucket}", *options, env=os.environ.copy()) as server:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=30.0) as client:
            assert client.get("/small.txt").status_code == 200  # warm: the pool exists
            stalled = [start_download(server.port, "/big.bin") for _ in range(POOL)]
            heads = [read_head(sock) for sock in stalled]
            assert all(head.startswith(b"HTTP/1.1 200 ") for head in heads), heads
            waiting = [start_download(server.port, "/big.bin") for _ in range(STALLED - POOL)]

            started = time.monotonic()
            busy = client.get("/small.txt")
            waited = time.monotonic() - started
            assert busy.status_code == 503
            assert busy.headers["retry-after"] == "5"
            assert STORAGE_TIMEOUT * 0.9 <= waited <= STORAGE_TIMEOUT + SLACK
            for sock in waiting:
                assert read_head(sock).startswith(b"HTTP/1.1 503 ")

            # The stalled responses are cut off and give their connections back: the route
            # answers again, while the stalled clients still read nothing.
            deadline = time.monotonic() + RECOVERY_DEADLINE
            again = client.get("/small.txt")
            while again.status_code == 503 and time.monotonic() < deadline:
                again = client.get("/small.txt")
            assert again.status_code == 200
            assert again.content == b"small and quick"
            # The first cut-off freed a connection; the others follow within about
            # SEND_TIMEOUT (their sends started to wait at about the same time). Reading a
            # socket before its cut-off would let that download finish.
            time.sleep(SEND_TIMEOUT + SLACK)
            # Each stalled download ends short of the object: it was cut off, not finished.
            for sock in stalled:
                assert read_to_end(sock) < SIZE
            whole = client.get("/big.bin")
            assert whole.status_code == 200
            assert len(whole.content) == SIZE
        for sock in stalled + waiting:
            sock.close()
        code, stderr = server.stop()
    assert code == 0
    assert "Traceback" not in stderr
    assert "sendfs: " not in stderr, stderr
