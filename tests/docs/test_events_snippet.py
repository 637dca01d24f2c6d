"""The download-events page: its metering hook sees what each response sent."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import fsspec
import pytest

import sendfs
from tests.helpers import asgi_client
from tests.snippets import load_snippet

pytestmark = pytest.mark.anyio


@pytest.fixture
def reports() -> Iterator[None]:
    # The snippet puts its demo report in the process-wide memory filesystem when imported.
    memory = fsspec.filesystem("memory")
    saved = sendfs.registry.on_complete
    try:
        yield
    finally:
        sendfs.registry.on_complete = saved
        if memory.exists("/reports"):
            memory.rm("/reports", recursive=True)


@pytest.mark.usefixtures("reports")
async def test_the_metering_hook_counts_bytes_and_logs_each_download() -> None:
    snippet = load_snippet("events")  # Lilya sets up logging here, replacing root handlers
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    audit = logging.getLogger("downloads")
    audit.addHandler(handler)
    audit.setLevel(logging.INFO)
    try:
        async with asgi_client(snippet.app) as client:
            full = await client.get("/reports/q3.csv")
            part = await client.get("/reports/q3.csv", headers={"Range": "bytes=0-5"})
            missing = await client.get("/reports/q4.csv")
    finally:
        audit.removeHandler(handler)
    assert (full.status_code, part.status_code, missing.status_code) == (200, 206, 404)
    assert snippet.bytes_by_source["memory://reports/q3.csv"] == len(full.content) + 6
    assert snippet.bytes_by_source["memory://reports/q4.csv"] == 0
    assert lines[1].startswith("GET memory://reports/q3.csv 206 bytes=6 ranges=((0, 6),)")
    assert lines[2].startswith("GET memory://reports/q4.csv 404 bytes=0")
