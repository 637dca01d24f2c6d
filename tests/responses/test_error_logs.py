"""Failures rendered as HTTP errors are logged on the ``sendfs`` logger, credentials masked.

Frameworks render the ``HTTPException`` sendfs raises without logging it, so without these
records a storage outage would show as bare 502s with the reason nowhere.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from sendfs import FileResponse, send_file
from sendfs.exceptions import (
    BackendError,
    SendfsError,
    SourceChanged,
    SourceForbidden,
    SourceNotFound,
)
from sendfs.storages import Resource, StorageRegistry
from tests.conftest import free_port
from tests.helpers import asgi_client, captured_logs, lilya_app

pytestmark = pytest.mark.anyio


class FailingBackend:
    """A backend whose every open raises the error it was made with."""

    def __init__(self, error: SendfsError) -> None:
        self.error = error

    async def open(self, source: Any, **options: Any) -> Resource:
        raise self.error


async def failing_call(error: SendfsError) -> tuple[httpx.Response, list[logging.LogRecord]]:
    """GET a source whose backend raises ``error``; the answer and what was logged."""
    registry = StorageRegistry()
    registry.register("broken", FailingBackend(error))

    async def endpoint() -> FileResponse:
        return send_file("broken://x", registry=registry)

    with captured_logs() as records:
        async with asgi_client(lilya_app(endpoint)) as client:
            response = await client.get("/file")
    return response, records


@pytest.mark.parametrize(
    ("error", "status", "level"),
    [
        (BackendError("cannot open 'broken://x': ConnectionResetError()"), 502, logging.WARNING),
        (SourceChanged("'broken://x' changed while it was being read"), 503, logging.INFO),
        (SourceNotFound("no object at 'broken://x'"), 404, logging.DEBUG),
        (SourceForbidden("access to 'broken://x' denied"), 403, logging.DEBUG),
    ],
)
async def test_a_failure_before_the_first_byte_is_logged_with_its_status_and_reason(
    error: SendfsError, status: int, level: int
) -> None:
    response, records = await failing_call(error)
    assert response.status_code == status
    assert "broken://x" not in response.text  # the reason is for the logs, not the client
    [record] = records
    assert record.levelno == level
    assert record.getMessage() == f"sendfs: HTTP {status}: {error}"


async def test_urls_in_a_third_party_backends_message_are_masked_in_the_log() -> None:
    error = BackendError("cannot open 'https://u:PASSWORD@host/x?sig=SECRET': timed out")
    _, records = await failing_call(error)
    assert [r.getMessage() for r in records] == [
        "sendfs: HTTP 502: cannot open 'https://***@host/x?***': timed out"
    ]


async def test_a_missing_local_file_is_logged_at_debug_only(tmp_path: Path) -> None:
    async def endpoint() -> FileResponse:
        return send_file(tmp_path / "absent.txt")

    with captured_logs() as records:
        async with asgi_client(lilya_app(endpoint)) as client:
            response = await client.get("/file")
    assert response.status_code == 404
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.DEBUG, f"sendfs: HTTP 404: {str(tmp_path / 'absent.txt')!r} does not exist")
    ]


async def test_an_unreachable_storage_is_logged_without_the_credentials_in_its_url() -> None:
    # fsspec's FTP filesystem connects when it is created: a refused connection, a 502.
    port = free_port()
    url = f"ftp://alice:s3cret@127.0.0.1:{port}/report.csv"

    async def endpoint() -> FileResponse:
        return send_file(url)

    with captured_logs() as records:
        async with asgi_client(lilya_app(endpoint)) as client:
            response = await client.get("/file")
    assert response.status_code == 502
    [record] = records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith(
        f"sendfs: HTTP 502: cannot open 'ftp://***@127.0.0.1:{port}/report.csv': "
        "ConnectionRefusedError("
    )
    assert "alice" not in message
    assert "s3cret" not in message
