"""How many S3 requests each answer costs: one for a GET, a range, a HEAD or a 304.

A GET opens the object with ONE ``get_object`` carrying the client's range and preconditions,
and takes the metadata from its answer. Whatever that request cannot settle exactly
(several ranges, If-Range, failed preconditions, unsatisfiable ranges, missing keys) falls
back to ``head_object`` first, so the answer is always the one ``decide`` gives.

Requests are observed with botocore's ``before-send`` hook on the client s3fs uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from sendfs import FileResponse, send_file
from sendfs.storages import StorageRegistry
from sendfs.storages.s3 import S3Resource
from tests.helpers import asgi_client, lilya_app, parse_multipart

pytestmark = [pytest.mark.anyio, pytest.mark.s3]

CONTENT = bytes((i * 7 + 3) % 256 for i in range(1000))
ETAG = hashlib.md5(CONTENT).hexdigest()


@dataclass
class S3Log:
    """Every S3 call the registry's client makes: the operation and its wire headers."""

    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)

    @property
    def operations(self) -> list[str]:
        return [operation for operation, _ in self.calls]

    def clear(self) -> None:
        self.calls.clear()
        self.bodies.clear()


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


@dataclass
class Served:
    """A registry whose S3 client is observed, the object's URL and a client factory."""

    registry: StorageRegistry
    url: str
    log: S3Log

    def client(self, **options: Any) -> httpx.AsyncClient:
        async def endpoint() -> FileResponse:
            return send_file(self.url, registry=self.registry, **options)

        return asgi_client(lilya_app(endpoint))

    async def get(self, headers: dict[str, str] | None = None, **options: Any) -> httpx.Response:
        self.log.clear()
        async with self.client(**options) as client:
            response = await client.get("/file", headers=headers or {})
        # Every body the requests opened is closed by the time the response is complete.
        assert all(body._raw_stream.closed for body in self.log.bodies)
        return response


@pytest.fixture
async def served(s3_client: Any, bucket: str) -> AsyncIterator[Served]:
    s3_client.put_object(Bucket=bucket, Key="data.bin", Body=CONTENT, ContentType="text/csv")
    registry = StorageRegistry()
    url = f"s3://{bucket}/data.bin"
    warm = await registry.open(url)  # creates the s3fs client, so hooks see every call
    assert isinstance(warm, S3Resource)
    await warm.aclose()
    log = S3Log()

    def before_send(request: Any, event_name: str, **_: Any) -> None:
        headers = {_text(k).lower(): _text(v) for k, v in request.headers.items()}
        log.calls.append((event_name.rsplit(".", 1)[-1], headers))

    def after_get(parsed: dict[str, Any], **_: Any) -> None:
        if "Body" in parsed:
            log.bodies.append(parsed["Body"])

    events = warm._fs._s3.meta.events
    events.register("before-send.s3", before_send)
    events.register("after-call.s3.GetObject", after_get)
    try:
        yield Served(registry, url, log)
    finally:
        await registry.aclose()


async def test_full_get_is_one_get_object_without_head(served: Served) -> None:
    response = await served.get()
    assert response.status_code == 200
    assert response.content == CONTENT
    assert served.log.operations == ["GetObject"]
    assert "range" not in served.log.calls[0][1]
    # The metadata came from the GetObject answer, and is what a HEAD (HeadObject) reports.
    assert response.headers["etag"] == f'"{ETAG}"'
    async with served.client() as client:
        head = await client.head("/file")
    for name in ("etag", "last-modified", "content-length", "content-type", "accept-ranges"):
        assert response.headers[name] == head.headers[name], name


async def test_the_stored_content_type_comes_from_the_get_object_answer(
    s3_client: Any, served: Served
) -> None:
    bucket = served.url.split("/")[2]
    s3_client.put_object(Bucket=bucket, Key="report", Body=b"a,b\n", ContentType="text/csv")
    served.url = f"s3://{bucket}/report"
    response = await served.get()
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert served.log.operations == ["GetObject"]


@pytest.mark.parametrize(
    ("range_header", "sent", "content_range", "piece"),
    [
        ("bytes=100-199", "bytes=100-199", "bytes 100-199/1000", slice(100, 200)),
        ("bytes=-100", "bytes=-100", "bytes 900-999/1000", slice(900, 1000)),
        ("bytes=990-", "bytes=990-", "bytes 990-999/1000", slice(990, 1000)),
        ("bytes=900-5000", "bytes=900-5000", "bytes 900-999/1000", slice(900, 1000)),
        ("bytes=-5000", "bytes=-5000", "bytes 0-999/1000", slice(0, 1000)),
    ],
)
async def test_single_range_is_one_get_object_for_that_range(
    served: Served, range_header: str, sent: str, content_range: str, piece: slice
) -> None:
    response = await served.get({"Range": range_header})
    assert response.status_code == 206
    assert response.headers["content-range"] == content_range
    assert response.content == CONTENT[piece]
    assert served.log.operations == ["GetObject"]
    assert served.log.calls[0][1]["range"] == sent


async def test_head_is_one_head_object(served: Served) -> None:
    served.log.clear()
    async with served.client() as client:
        response = await client.head("/file")
    assert response.status_code == 200
    assert response.headers["content-length"] == "1000"
    assert served.log.operations == ["HeadObject"]


@pytest.mark.parametrize("tag", [f'"{ETAG}"', f'W/"{ETAG}"'])
async def test_not_modified_is_one_get_object_without_a_body(served: Served, tag: str) -> None:
    response = await served.get({"If-None-Match": tag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == f'"{ETAG}"'
    assert served.log.operations == ["GetObject"]
    assert served.log.calls[0][1]["if-none-match"] == f'"{ETAG}"'


async def test_if_none_match_that_differs_streams_from_the_same_request(served: Served) -> None:
    response = await served.get({"If-None-Match": '"other"'})
    assert response.status_code == 200
    assert response.content == CONTENT
    assert served.log.operations == ["GetObject"]


async def test_tag_lists_are_evaluated_by_the_app_after_a_head(served: Served) -> None:
    response = await served.get({"If-None-Match": f'"other", "{ETAG}"'})
    assert response.status_code == 304
    assert served.log.operations == ["HeadObject"]


async def test_if_modified_since_gets_304_even_when_the_storage_omits_last_modified(
    served: Served,
) -> None:
    first = await served.get()
    response = await served.get({"If-Modified-Since": first.headers["last-modified"]})
    assert response.status_code == 304
    # moto's 304 carries no Last-Modified (S3's does), so the app confirms with a HEAD.
    assert served.log.operations[0] == "GetObject"
    assert served.log.calls[0][1]["if-modified-since"] == first.headers["last-modified"]
    assert served.log.operations[1:] in ([], ["HeadObject"])


async def test_failed_if_match_is_412_after_a_head(served: Served) -> None:
    response = await served.get({"If-Match": '"other"'})
    assert response.status_code == 412
    assert served.log.operations == ["GetObject", "HeadObject"]


async def test_matching_if_match_streams_from_one_request(served: Served) -> None:
    response = await served.get({"If-Match": f'"{ETAG}"', "Range": "bytes=0-9"})
    assert response.status_code == 206
    assert response.content == CONTENT[:10]
    assert served.log.operations == ["GetObject"]


async def test_unsatisfiable_range_is_416_with_the_size_from_a_head(served: Served) -> None:
    response = await served.get({"Range": "bytes=5000-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */1000"
    assert served.log.operations == ["GetObject", "HeadObject"]


async def test_missing_key_is_404_after_the_head_confirms_it(served: Served) -> None:
    served.url = served.url.replace("data.bin", "missing.bin")
    response = await served.get()
    assert response.status_code == 404
    # s3fs tells a missing key from a prefix ("directory") with HeadObject, then a listing.
    assert served.log.operations[:2] == ["GetObject", "HeadObject"]


async def test_multipart_ranges_head_first_then_one_get_per_range(served: Served) -> None:
    response = await served.get({"Range": "bytes=0-9, 500-509"})
    assert response.status_code == 206
    parts = parse_multipart(response.headers["content-type"], response.content)
    assert [part.body for part in parts] == [CONTENT[:10], CONTENT[500:510]]
    assert served.log.operations == ["HeadObject", "GetObject", "GetObject"]


async def test_if_range_heads_first(served: Served) -> None:
    response = await served.get({"Range": "bytes=0-9", "If-Range": f'"{ETAG}"'})
    assert response.status_code == 206
    assert served.log.operations == ["HeadObject", "GetObject"]


async def test_ignored_range_reads_the_whole_object_in_one_request(served: Served) -> None:
    response = await served.get({"Range": "bytes=9-5"})
    assert response.status_code == 200
    assert response.content == CONTENT
    assert served.log.operations == ["GetObject"]
    assert "range" not in served.log.calls[0][1]


async def test_without_conditional_handling_the_request_asks_for_the_whole_object(
    served: Served,
) -> None:
    response = await served.get(
        {"Range": "bytes=0-9", "If-None-Match": f'"{ETAG}"'}, conditional=False
    )
    assert response.status_code == 200
    assert response.content == CONTENT
    assert served.log.operations == ["GetObject"]
    assert {"range", "if-none-match"}.isdisjoint(served.log.calls[0][1])


async def test_caller_etag_preconditions_are_evaluated_by_the_app(served: Served) -> None:
    response = await served.get({"If-None-Match": '"mine"'}, etag="mine")
    assert response.status_code == 304
    assert served.log.operations == ["HeadObject"]
    assert "if-none-match" not in served.log.calls[0][1]


async def test_an_answer_the_app_overrules_never_leaks_the_storage_body(served: Served) -> None:
    # If-None-Match: * matches any current representation (RFC 9110 13.1.2): a 304, whatever
    # the storage made of it; any body it started is closed (checked in Served.get).
    response = await served.get({"If-None-Match": "*"})
    assert response.status_code == 304
    assert response.content == b""
    assert served.log.operations[0] == "GetObject"
