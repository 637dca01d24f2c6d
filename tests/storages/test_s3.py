"""S3 through s3fs on the moto server: one pinned, ranged GET per range, and honest errors.

Requests are observed with botocore's event hooks on the client s3fs uses, never patched:
``before-send`` shows the request as it goes on the wire, ``after-call`` the parsed answer.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest

from sendfs.exceptions import SourceChanged, SourceNotFound
from sendfs.storages import StorageRegistry
from sendfs.storages.s3 import S3Resource

pytestmark = [pytest.mark.anyio, pytest.mark.s3]

CONTENT = bytes((i * 13 + 5) % 251 for i in range(1000))
ETAG = hashlib.md5(CONTENT).hexdigest()


@dataclass
class GetObjectLog:
    """What the client sent and received for each GetObject call."""

    urls: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    content_lengths: list[int] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)

    @property
    def ranges(self) -> list[str | None]:
        return [headers.get("range") for headers in self.headers]

    def query(self, index: int) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.urls[index]).query)


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def observe_get_object(resource: S3Resource) -> GetObjectLog:
    """Record every GetObject the resource's s3fs client makes from now on."""
    log = GetObjectLog()
    client = resource._fs._s3
    assert client is not None

    def before_send(request: Any, **_: Any) -> None:
        log.urls.append(request.url)
        log.headers.append({_text(k).lower(): _text(v) for k, v in request.headers.items()})

    def after_call(parsed: dict[str, Any], **_: Any) -> None:
        if "Error" in parsed:  # a failed precondition: no body
            return
        log.content_lengths.append(parsed["ContentLength"])
        log.bodies.append(parsed["Body"])

    client.meta.events.register("before-send.s3.GetObject", before_send)
    client.meta.events.register("after-call.s3.GetObject", after_call)
    return log


async def open_s3(registry: StorageRegistry, url: str) -> S3Resource:
    resource = await registry.open(url)
    assert isinstance(resource, S3Resource)
    return resource


async def read(resource: S3Resource, start: int, stop: int | None, chunk_size: int) -> bytes:
    pieces = [piece async for piece in resource.iter_range(start, stop, chunk_size)]
    assert all(0 < len(piece) <= chunk_size for piece in pieces)
    return b"".join(pieces)


async def read_into(
    received: bytearray, resource: S3Resource, start: int, stop: int | None, chunk_size: int
) -> None:
    """Append what ``iter_range`` yields to ``received``, so a test sees bytes before an error."""
    async for piece in resource.iter_range(start, stop, chunk_size):
        received += piece


@pytest.fixture
def obj(s3_client: Any, bucket: str) -> str:
    """``s3://bucket/data.bin`` holding CONTENT."""
    s3_client.put_object(Bucket=bucket, Key="data.bin", Body=CONTENT, ContentType="text/csv")
    return f"s3://{bucket}/data.bin"


@pytest.fixture
def versioned_bucket(s3_client: Any, bucket: str) -> str:
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


# -- one request per range, for exactly that range -------------------------------------------


@pytest.mark.parametrize(
    ("start", "stop", "header", "length"),
    [
        (0, 1, "bytes=0-0", 1),
        (999, 1000, "bytes=999-999", 1),
        (100, 200, "bytes=100-199", 100),
        (0, 1000, "bytes=0-999", 1000),
        (0, None, "bytes=0-999", 1000),
        (250, None, "bytes=250-999", 750),
        (990, 5000, "bytes=990-999", 10),
    ],
)
async def test_range_read_is_one_get_object_for_exactly_that_range(
    storage_registry: StorageRegistry,
    obj: str,
    start: int,
    stop: int | None,
    header: str,
    length: int,
) -> None:
    resource = await open_s3(storage_registry, obj)
    log = observe_get_object(resource)
    try:
        data = await read(resource, start, stop, 64)
    finally:
        await resource.aclose()
    assert data == CONTENT[start:stop]
    assert log.ranges == [header]
    assert log.content_lengths == [length]
    assert log.headers[0]["if-match"] == f'"{ETAG}"'
    assert "versionId" not in log.query(0)


async def test_small_chunks_do_not_add_requests(
    storage_registry: StorageRegistry, obj: str
) -> None:
    resource = await open_s3(storage_registry, obj)
    log = observe_get_object(resource)
    pieces = [piece async for piece in resource.iter_range(100, 900, 10)]
    await resource.aclose()
    assert len(pieces) == 80
    assert all(len(piece) == 10 for piece in pieces)
    assert b"".join(pieces) == CONTENT[100:900]
    assert log.ranges == ["bytes=100-899"]
    assert log.content_lengths == [800]


async def test_each_iter_range_call_makes_exactly_one_request(
    storage_registry: StorageRegistry, obj: str
) -> None:
    resource = await open_s3(storage_registry, obj)
    log = observe_get_object(resource)
    try:
        assert await read(resource, 0, 10, 4) == CONTENT[0:10]
        assert await read(resource, 500, 520, 4) == CONTENT[500:520]
        assert await read(resource, 0, 10, 4) == CONTENT[0:10]
    finally:
        await resource.aclose()
    assert log.ranges == ["bytes=0-9", "bytes=500-519", "bytes=0-9"]
    assert log.content_lengths == [10, 20, 10]


@pytest.mark.parametrize(("start", "stop"), [(5, 5), (0, 0), (1000, None), (1000, 2000)])
async def test_empty_range_makes_no_request(
    storage_registry: StorageRegistry, obj: str, start: int, stop: int | None
) -> None:
    resource = await open_s3(storage_registry, obj)
    log = observe_get_object(resource)
    try:
        assert await read(resource, start, stop, 64) == b""
    finally:
        await resource.aclose()
    assert log.urls == []


async def test_empty_object_reads_nothing_without_a_request(
    storage_registry: StorageRegistry, s3_client: Any, bucket: str
) -> None:
    s3_client.put_object(Bucket=bucket, Key="empty.bin", Body=b"")
    resource = await open_s3(storage_registry, f"s3://{bucket}/empty.bin")
    log = observe_get_object(resource)
    try:
        assert resource.info.size == 0
        assert await read(resource, 0, None, 64) == b""
    finally:
        await resource.aclose()
    assert log.urls == []


async def test_one_byte_of_a_large_object_pulls_one_byte(
    storage_registry: StorageRegistry, s3_client: Any, bucket: str
) -> None:
    big = bytes(range(256)) * (3 * 1024 * 4)  # 3 MiB
    s3_client.put_object(Bucket=bucket, Key="big.bin", Body=big)
    resource = await open_s3(storage_registry, f"s3://{bucket}/big.bin")
    log = observe_get_object(resource)
    try:
        assert resource.info.size == 3 * 1024 * 1024
        offset = 2 * 1024 * 1024 + 77
        assert await read(resource, offset, offset + 1, 1024 * 1024) == big[offset : offset + 1]
    finally:
        await resource.aclose()
    assert log.ranges == [f"bytes={offset}-{offset}"]
    assert log.content_lengths == [1]


async def test_abandoned_range_read_closes_the_response_body(
    storage_registry: StorageRegistry, obj: str
) -> None:
    resource = await open_s3(storage_registry, obj)
    log = observe_get_object(resource)
    try:
        pieces = cast(AsyncGenerator[bytes, None], resource.iter_range(0, None, 10))
        assert await pieces.__anext__() == CONTENT[:10]
        await pieces.aclose()
        assert log.bodies[0].raw_stream.closed
        assert await read(resource, 10, 20, 64) == CONTENT[10:20]
    finally:
        await resource.aclose()


# -- pinned to the object seen at open time --------------------------------------------------


async def test_versioned_bucket_pins_reads_to_the_version_id(
    storage_registry: StorageRegistry, s3_client: Any, versioned_bucket: str
) -> None:
    put = s3_client.put_object(Bucket=versioned_bucket, Key="v.bin", Body=CONTENT)
    resource = await open_s3(storage_registry, f"s3://{versioned_bucket}/v.bin")
    log = observe_get_object(resource)
    try:
        assert await read(resource, 10, 30, 64) == CONTENT[10:30]
    finally:
        await resource.aclose()
    assert log.ranges == ["bytes=10-29"]
    assert log.query(0)["versionId"] == [put["VersionId"]]
    assert log.content_lengths == [20]


async def test_overwritten_object_raises_source_changed_without_new_bytes(
    storage_registry: StorageRegistry, s3_client: Any, bucket: str, obj: str
) -> None:
    resource = await open_s3(storage_registry, obj)
    s3_client.put_object(Bucket=bucket, Key="data.bin", Body=b"NEW" * 400)
    received = bytearray()
    try:
        with pytest.raises(SourceChanged):
            await read_into(received, resource, 0, None, 64)
    finally:
        await resource.aclose()
    assert bytes(received) == b""


async def test_overwritten_object_on_versioned_bucket_still_serves_the_opened_version(
    storage_registry: StorageRegistry, s3_client: Any, versioned_bucket: str
) -> None:
    s3_client.put_object(Bucket=versioned_bucket, Key="v.bin", Body=CONTENT)
    resource = await open_s3(storage_registry, f"s3://{versioned_bucket}/v.bin")
    s3_client.put_object(Bucket=versioned_bucket, Key="v.bin", Body=b"NEW" * 400)
    try:
        assert await read(resource, 0, None, 256) == CONTENT
    finally:
        await resource.aclose()


@pytest.fixture
def suspended_bucket(s3_client: Any, bucket: str) -> str:
    for status in ("Enabled", "Suspended"):
        s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
    return bucket


async def test_null_version_reads_are_pinned_with_if_match_too(
    storage_registry: StorageRegistry, s3_client: Any, suspended_bucket: str
) -> None:
    """Suspended versioning reports version "null", which an overwrite replaces in place.

    moto leaves the version header out, so the null version is set on the opened metadata.
    """
    s3_client.put_object(Bucket=suspended_bucket, Key="n.bin", Body=CONTENT)
    resource = await open_s3(storage_registry, f"s3://{suspended_bucket}/n.bin")
    resource._info = dataclasses.replace(resource.info, version="null")
    log = observe_get_object(resource)
    try:
        assert await read(resource, 0, 10, 64) == CONTENT[:10]
        s3_client.put_object(Bucket=suspended_bucket, Key="n.bin", Body=b"NEW" * 400)
        received = bytearray()
        with pytest.raises(SourceChanged):
            await read_into(received, resource, 10, 20, 64)
    finally:
        await resource.aclose()
    assert bytes(received) == b""
    assert [query["versionId"] for query in map(log.query, (0, 1))] == [["null"], ["null"]]
    assert [headers["if-match"] for headers in log.headers] == [f'"{ETAG}"'] * 2


async def test_deleted_object_raises_source_changed(
    storage_registry: StorageRegistry, s3_client: Any, bucket: str, obj: str
) -> None:
    resource = await open_s3(storage_registry, obj)
    s3_client.delete_object(Bucket=bucket, Key="data.bin")
    try:
        with pytest.raises(SourceChanged):
            await read(resource, 0, 10, 64)
    finally:
        await resource.aclose()


# -- opening ---------------------------------------------------------------------------------


async def test_missing_key_raises_source_not_found(
    storage_registry: StorageRegistry, bucket: str
) -> None:
    with pytest.raises(SourceNotFound):
        await storage_registry.open(f"s3://{bucket}/no/such/key.bin")


async def test_missing_bucket_raises_source_not_found(
    storage_registry: StorageRegistry, moto_endpoint: str
) -> None:
    with pytest.raises(SourceNotFound):
        await storage_registry.open("s3://sendfs-no-such-bucket/key.bin")


async def test_metadata_is_normalised(
    storage_registry: StorageRegistry, s3_client: Any, bucket: str, obj: str
) -> None:
    head = s3_client.head_object(Bucket=bucket, Key="data.bin")
    resource = await open_s3(storage_registry, obj)
    await resource.aclose()
    info = resource.info
    assert info.size == len(CONTENT)
    assert info.etag == ETAG
    assert head["ETag"] == f'"{ETAG}"'
    assert info.mtime == head["LastModified"]
    assert info.mtime is not None
    assert info.mtime.utcoffset() == timedelta(0)
    assert info.mtime.tzinfo is not None
    assert info.mtime.astimezone(timezone.utc) == info.mtime
    assert info.content_type == "text/csv"
    assert info.name == "data.bin"
    assert info.version is None


async def test_versioned_bucket_reports_the_version_id(
    storage_registry: StorageRegistry, s3_client: Any, versioned_bucket: str
) -> None:
    s3_client.put_object(Bucket=versioned_bucket, Key="v.bin", Body=b"one")
    second = s3_client.put_object(Bucket=versioned_bucket, Key="v.bin", Body=b"two!")
    resource = await open_s3(storage_registry, f"s3://{versioned_bucket}/v.bin")
    await resource.aclose()
    assert resource.info.version == second["VersionId"]
    assert resource.info.size == 4
    assert resource.info.etag == hashlib.md5(b"two!").hexdigest()


async def test_multipart_etag_is_unquoted_and_pins_reads(
    storage_registry: StorageRegistry, s3_client: Any, bucket: str
) -> None:
    part1 = b"a" * (5 * 1024 * 1024)
    part2 = b"tail-of-the-object"
    upload = s3_client.create_multipart_upload(Bucket=bucket, Key="multi.bin")
    parts = []
    for number, body in enumerate([part1, part2], start=1):
        answer = s3_client.upload_part(
            Bucket=bucket,
            Key="multi.bin",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=body,
        )
        parts.append({"ETag": answer["ETag"], "PartNumber": number})
    done = s3_client.complete_multipart_upload(
        Bucket=bucket,
        Key="multi.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    resource = await open_s3(storage_registry, f"s3://{bucket}/multi.bin")
    log = observe_get_object(resource)
    try:
        assert resource.info.etag == done["ETag"].strip('"')
        assert resource.info.etag is not None
        assert resource.info.etag.endswith("-2")
        size = len(part1) + len(part2)
        assert await read(resource, size - 4, None, 64) == b"ject"
    finally:
        await resource.aclose()
    assert log.headers[0]["if-match"] == done["ETag"]
    assert log.content_lengths == [4]


@pytest.mark.parametrize(
    "key", ["dir/my file ü.txt", "a+b.txt", "a#b.txt", "a?b.txt", "a%20b.txt", "a=b&c.txt"]
)
async def test_keys_with_url_special_characters_are_read_exactly(
    storage_registry: StorageRegistry, s3_client: Any, bucket: str, key: str
) -> None:
    # What the key would turn into if it were URL-decoded or cut at "#" or "?" on the way.
    for decoy in ("a", "a b.txt", "a b", "dir/my file"):
        s3_client.put_object(Bucket=bucket, Key=decoy, Body=b"WRONG-FILE-DECOY")
    s3_client.put_object(Bucket=bucket, Key=key, Body=b"0123456789")
    resource = await open_s3(storage_registry, f"s3://{bucket}/{key}")
    try:
        assert resource.info.size == 10
        assert resource.info.name == key.rsplit("/", 1)[-1]
        assert await read(resource, 2, 5, 64) == b"234"
    finally:
        await resource.aclose()


async def test_registry_opens_new_sessions_after_aclose(
    storage_registry: StorageRegistry, obj: str
) -> None:
    first = await open_s3(storage_registry, obj)
    assert await read(first, 0, 3, 64) == CONTENT[:3]
    await first.aclose()
    await storage_registry.aclose()
    second = await open_s3(storage_registry, obj)
    try:
        assert second._fs is not first._fs
        assert await read(second, 3, 6, 64) == CONTENT[3:6]
    finally:
        await second.aclose()


async def test_resources_opened_through_one_registry_share_one_filesystem(
    storage_registry: StorageRegistry, obj: str
) -> None:
    first = await open_s3(storage_registry, obj)
    second = await open_s3(storage_registry, obj)
    await first.aclose()
    await second.aclose()
    assert first._fs is second._fs
