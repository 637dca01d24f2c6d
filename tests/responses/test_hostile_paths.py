"""Request paths a client makes up never make sendfs log at WARNING, and logs stay short.

A path of 8 KiB, one of 4,000 segments, or a name longer than any storage allows names no
object: it is a 404, logged at DEBUG like any missing file, with the path cut short in the
log line. A WARNING means the storage failed, which a client must not be able to fake.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from sendfs import StorageFiles
from sendfs.storages import StorageRegistry
from sendfs.storages.paths import LOG_VALUE_LIMIT
from tests.helpers import asgi_client, captured_logs

pytestmark = pytest.mark.anyio

HOSTILE_PATHS = {
    "8 KiB name": "/" + "a" * 8192,
    "4000 segments": "/" + "a/" * 4000 + "f.txt",
    "256-byte segment": "/" + "b" * 256 + "/f.txt",
    "1100-byte key": "/" + "/".join(["c" * 99] * 11),
    "long listing": "/" + "d/" * 3000,
}
#: The longest log line: a message cut to its limit, plus the prefix and the status.
LOG_LINE_LIMIT = 600


@pytest.fixture(params=["local", "memory", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        (tmp_path / "f.txt").write_bytes(b"f")
        return str(tmp_path)
    if request.param == "memory":
        return "memory://sendfs-hostile-paths"
    request.getfixturevalue("moto_endpoint")
    s3_client: Any = request.getfixturevalue("s3_client")
    bucket: str = request.getfixturevalue("bucket")
    s3_client.put_object(Bucket=bucket, Key="f.txt", Body=b"f")
    return f"s3://{bucket}"


@pytest.mark.parametrize("path", HOSTILE_PATHS.values(), ids=HOSTILE_PATHS.keys())
async def test_hostile_paths_are_404s_logged_quietly_and_briefly(root: str, path: str) -> None:
    registry = StorageRegistry(entry_points=False)
    app = StorageFiles(root, registry=registry, listing=True)
    try:
        async with asgi_client(app) as client:
            with captured_logs() as records:
                answer = await client.get(path)
    finally:
        await registry.aclose()
    assert answer.status_code in (404, 414), answer.text
    assert [r.getMessage() for r in records if r.levelno > logging.INFO] == []
    assert all(len(r.getMessage()) <= LOG_LINE_LIMIT for r in records)


def test_log_values_are_cut_to_their_limit() -> None:
    from sendfs.storages.paths import shorten

    assert shorten("x" * 10) == "x" * 10
    long = shorten("y" * 5000)
    assert len(long) == LOG_VALUE_LIMIT
    assert long.endswith("...")
