"""Clients that stop reading hold the server back instead of filling its memory.

Four clients start a 32 MiB download each, read its first bytes and stop. The server's
resident memory must stay far below what the four bodies would take (128 MiB): sendfs reads
the next chunk only once the server took the last one, and the server takes it only when the
socket drains. When the clients go, their descriptors are released.
"""

from __future__ import annotations

import socket
import time
from contextlib import ExitStack
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import E2EData, Payload, UvicornServer, put_s3_payload
from tests.e2e.test_soak import Usage, usage

SLOW_S3_KEY = "dir/slow.bin"
SIZE = 32 * 1024 * 1024
CLIENTS = 4
#: Far below CLIENTS * SIZE (128 MiB). Seen: about 4 MiB for the four local downloads, about
#: 20 MiB for the four S3 ones (aiohttp's read buffer, the piece held back for the checksum
#: check and the chunk in the server's write buffer, per download).
GROWTH_LIMITS = {"local": 16 * 1024 * 1024, "s3": 48 * 1024 * 1024}
#: How long to wait for the memory to stop growing (a hang guard, not a timing assertion).
STALL_DEADLINE = 20.0


@pytest.fixture(scope="module")
def slow_s3(e2e_data: E2EData, moto_endpoint: str) -> Payload:
    """32 MiB of random bytes in the e2e bucket, behind ``/s3/dir/slow.bin``."""
    return put_s3_payload(e2e_data, moto_endpoint, SLOW_S3_KEY, SIZE)


def stalled_client(url: str, route: str) -> socket.socket:
    """A client that sends a GET, reads the first 64 KiB and then reads nothing more."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=STALL_DEADLINE)
    # A small receive buffer, so the kernel holds little of the body on the client's side.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.sendall(f"GET {route} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
    received = b""
    while len(received) < 64 * 1024:
        piece = sock.recv(64 * 1024)
        assert piece, "the server closed the connection"
        received += piece
    assert received.startswith(b"HTTP/1.1 200 "), received[:100]
    return sock


def stalled_usage(pid: int) -> Usage:
    """The server's usage once its memory held still for a second (bounded)."""
    deadline = time.monotonic() + STALL_DEADLINE
    previous = usage(pid)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        current = usage(pid)
        if abs(current.rss - previous.rss) < 256 * 1024:
            return current
        previous = current
    return previous


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_clients_that_stop_reading_do_not_fill_the_servers_memory(
    uvicorn_server: UvicornServer, large_local: Payload, slow_s3: Payload, kind: str
) -> None:
    pid = uvicorn_server.process.pid
    route = {"local": large_local, "s3": slow_s3}[kind].route
    # Warm up: the first download of a kind loads modules and opens pools.
    with stalled_client(uvicorn_server.url, route):
        pass
    baseline = stalled_usage(pid)
    with ExitStack() as clients:
        for _ in range(CLIENTS):
            clients.enter_context(stalled_client(uvicorn_server.url, route))
        stalled = stalled_usage(pid)
    growth = stalled.rss - baseline.rss
    assert growth < GROWTH_LIMITS[kind], f"{kind}: {baseline} -> {stalled}"
    assert stalled.fds >= baseline.fds + CLIENTS  # the downloads were still open
    deadline = time.monotonic() + STALL_DEADLINE
    while usage(pid).fds > baseline.fds and time.monotonic() < deadline:
        time.sleep(0.1)
    assert usage(pid).fds <= baseline.fds
