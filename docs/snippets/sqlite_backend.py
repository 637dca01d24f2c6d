"""A sendfs backend serving files stored as BLOBs in a SQLite table: ``blobs://<id>``."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import anyio.to_thread

from sendfs import registry
from sendfs.exceptions import BackendError, SourceChanged, SourceNotFound
from sendfs.storages import FileInfo, ResourceBase

SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    content_type TEXT,
    sha256 TEXT NOT NULL,
    updated REAL NOT NULL,
    data BLOB NOT NULL
)
"""


class BlobResource(ResourceBase):
    """One row, opened: its metadata is fixed now, reads check the row did not change."""

    def __init__(self, connection: sqlite3.Connection, blob_id: int, info: FileInfo) -> None:
        self._connection: sqlite3.Connection | None = connection
        self._id = blob_id
        self._info = info

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        end = self.range_end(stop)  # stop=None or past the end: the size
        offset = start
        while offset < end:
            size = min(chunk_size, end - offset)
            chunk = await anyio.to_thread.run_sync(self._read, offset, size)
            offset += len(chunk)
            yield chunk

    def _read(self, offset: int, size: int) -> bytes:
        if self._connection is None:
            raise BackendError("read after aclose()")
        try:
            row = self._connection.execute(
                # substr() counts from 1; the sha256 pins the bytes seen at open time.
                "SELECT substr(data, ?, ?) FROM blobs WHERE id = ? AND sha256 = ?",
                (offset + 1, size, self._id, self._info.etag),
            ).fetchone()
        except sqlite3.Error as exc:
            raise BackendError(f"blob {self._id}: {exc}") from exc
        if row is None or len(row[0]) != size:
            raise SourceChanged(f"blob {self._id} changed since it was opened")
        data: bytes = row[0]
        return data

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None  # idempotent
        if connection is not None:
            await anyio.to_thread.run_sync(connection.close)


class SQLiteBlobBackend:
    """Opens ``blobs://<id>`` sources from one SQLite database file."""

    def __init__(self, database: str) -> None:
        self.database = database

    async def open(self, source: Any, **options: Any) -> BlobResource:
        blob_id = str(source).removeprefix("blobs://")
        if not blob_id.isdigit():
            raise SourceNotFound(f"{source!r} is not blobs://<id>")
        return await anyio.to_thread.run_sync(self._open, int(blob_id))

    def _open(self, blob_id: int) -> BlobResource:
        try:
            connection = sqlite3.connect(self.database, check_same_thread=False)
            row = connection.execute(
                "SELECT length(data), updated, sha256, content_type, name FROM blobs WHERE id = ?",
                (blob_id,),
            ).fetchone()
        except sqlite3.Error as exc:
            raise BackendError(f"cannot read {self.database}: {exc}") from exc
        if row is None:
            connection.close()
            raise SourceNotFound(f"no blob {blob_id}")
        size, updated, sha256, content_type, name = row
        info = FileInfo(
            size=size,
            mtime=datetime.fromtimestamp(updated, tz=timezone.utc),
            etag=sha256,  # bare: sendfs adds the quotes
            content_type=content_type,
            name=name,
        )
        return BlobResource(connection, blob_id, info)


def install(database: str) -> None:
    """Serve ``blobs://`` URLs from ``database`` with the default registry."""
    registry.register("blobs", SQLiteBlobBackend(database))
