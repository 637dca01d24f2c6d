"""In-process ASGI tests of send_file / FileResponse over every built-in backend."""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import anyio
import fsspec
import httpx
import pytest

from sendfs import BackendError, FileResponse, UnknownScheme, send_file
from sendfs.storages import FileInfo, ResourceBase
from tests.helpers import (
    Recorded,
    SpyRegistry,
    asgi_client,
    http_scope,
    lilya_app,
    parse_multipart,
    record_call,
)

pytestmark = pytest.mark.anyio

CONTENT = bytes(range(256)) * 40  # 10240 bytes: big enough for multipart to pay off
SIZE = len(CONTENT)

SourceFactory = Callable[[], Any]


# -- sources ------------------------------------------------------------------------------------


@pytest.fixture(params=["local", "bytesio", "memory", "s3"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_source(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[SourceFactory]:
    """A factory of fresh sources holding CONTENT under the name ``data.bin``."""
    if kind == "local":
        path = tmp_path / "data.bin"
        path.write_bytes(CONTENT)
        yield lambda: str(path)
    elif kind == "bytesio":
        yield lambda: io.BytesIO(CONTENT)
    elif kind == "memory":
        url = f"memory://sendfs-tests/{secrets.token_hex(6)}/data.bin"
        with fsspec.open(url, "wb") as handle:
            handle.write(CONTENT)
        yield lambda: url
        fsspec.filesystem("memory").rm(url)
    else:
        bucket = request.getfixturevalue("bucket")
        client = request.getfixturevalue("s3_client")
        client.put_object(Bucket=bucket, Key="dir/data.bin", Body=CONTENT)
        yield lambda: f"s3://{bucket}/dir/data.bin"


@pytest.fixture
async def spy() -> AsyncIterator[SpyRegistry]:
    reg = SpyRegistry()
    try:
        yield reg
    finally:
        await reg.aclose()


@pytest.fixture
def serve(make_source: SourceFactory, spy: SpyRegistry) -> Callable[..., httpx.AsyncClient]:
    """serve(**send_file_options) -> a client whose GET /file answers with send_file."""

    def factory(**options: Any) -> httpx.AsyncClient:
        async def endpoint() -> FileResponse:
            return send_file(make_source(), registry=spy, **options)

        return asgi_client(lilya_app(endpoint))

    return factory


def has_validators(kind: str) -> bool:
    return kind != "bytesio"


# -- 200 and HEAD -------------------------------------------------------------------------------


async def test_get_sends_exact_bytes_and_representation_headers(
    serve: Callable[..., httpx.AsyncClient], kind: str, spy: SpyRegistry
) -> None:
    async with serve() as client:
        response = await client.get("/file")
    assert response.status_code == 200
    assert response.content == CONTENT
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["cache-control"] == "no-cache"
    expected_disposition = None if kind == "bytesio" else 'inline; filename="data.bin"'
    assert response.headers.get("content-disposition") == expected_disposition
    if has_validators(kind):
        etag = response.headers["etag"]
        assert etag.startswith('"')
        assert etag.endswith('"')
        assert response.headers["last-modified"].endswith(" GMT")
    else:
        assert "etag" not in response.headers
    assert spy.closed == [True]


async def test_head_sends_get_headers_and_reads_no_body(
    serve: Callable[..., httpx.AsyncClient], spy: SpyRegistry
) -> None:
    async with serve() as client:
        get = await client.get("/file")
        spy.reads.clear()
        head = await client.head("/file")
    assert head.status_code == 200
    assert head.content == b""
    assert spy.reads == []
    for name in ("content-length", "content-type", "etag", "last-modified", "accept-ranges"):
        assert head.headers.get(name) == get.headers.get(name)


async def test_head_ignores_range(serve: Callable[..., httpx.AsyncClient]) -> None:
    async with serve() as client:
        response = await client.head("/file", headers={"Range": "bytes=0-9"})
    assert response.status_code == 200
    assert response.headers["content-length"] == str(SIZE)


async def test_max_age_makes_the_response_publicly_cacheable(
    serve: Callable[..., httpx.AsyncClient],
) -> None:
    async with serve(max_age=3600) as client:
        response = await client.get("/file")
    assert response.headers["cache-control"] == "public, max-age=3600"


# -- ranges -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-0", 0, 1),
        ("bytes=0-99", 0, 100),
        (f"bytes={SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE),
        ("bytes=100-", 100, SIZE),
        ("bytes=-100", SIZE - 100, SIZE),
        (f"bytes=-{SIZE * 2}", 0, SIZE),
        (f"bytes=10-{SIZE * 5}", 10, SIZE),
        ("BYTES=5-9", 5, 10),
    ],
    ids=[
        "first-byte",
        "first-100",
        "last-byte",
        "open-end",
        "suffix",
        "suffix-longer",
        "clamped",
        "unit-case",
    ],
)
async def test_single_range_returns_206_with_exact_slice(
    serve: Callable[..., httpx.AsyncClient], spy: SpyRegistry, header: str, start: int, stop: int
) -> None:
    async with serve() as client:
        response = await client.get("/file", headers={"Range": header})
    assert response.status_code == 206
    assert response.content == CONTENT[start:stop]
    assert response.headers["content-range"] == f"bytes {start}-{stop - 1}/{SIZE}"
    assert response.headers["content-length"] == str(stop - start)
    assert spy.reads == [(start, stop)]


@pytest.mark.parametrize(
    "header", ["bytes=abc", "bytes=5-2", "items=0-1", "bytes", "bytes=", "0-1"], ids=str
)
async def test_malformed_or_foreign_range_is_ignored(
    serve: Callable[..., httpx.AsyncClient], header: str
) -> None:
    async with serve() as client:
        response = await client.get("/file", headers={"Range": header})
    assert response.status_code == 200
    assert response.content == CONTENT


async def test_unsatisfiable_range_is_416_with_the_size(
    serve: Callable[..., httpx.AsyncClient],
) -> None:
    async with serve() as client:
        response = await client.get("/file", headers={"Range": f"bytes={SIZE}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"
    assert response.content == b""


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(
            "bytes=0-9, 100-199, -5", [(0, 10), (100, 200), (SIZE - 5, SIZE)], id="ascending"
        ),
        # RFC 9110 section 15.3.7.2: parts SHOULD follow the order of the range-specs; a
        # coalesced range takes the place of its earliest member.
        pytest.param(
            "bytes=-5, 100-149, 0-9, 140-199",
            [(SIZE - 5, SIZE), (100, 200), (0, 10)],
            id="request-order",
        ),
    ],
)
async def test_several_ranges_are_multipart_byteranges_in_request_order(
    serve: Callable[..., httpx.AsyncClient], header: str, expected: list[tuple[int, int]]
) -> None:
    async with serve() as client:
        response = await client.get("/file", headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["content-length"] == str(len(response.content))
    parts = parse_multipart(response.headers["content-type"], response.content)
    assert [p.body for p in parts] == [CONTENT[a:b] for a, b in expected]
    assert [p.headers["content-range"] for p in parts] == [
        f"bytes {a}-{b - 1}/{SIZE}" for a, b in expected
    ]
    assert all(p.headers["content-type"] == "application/octet-stream" for p in parts)


async def test_multipart_boundary_is_random_per_response(
    serve: Callable[..., httpx.AsyncClient],
) -> None:
    async with serve() as client:
        first = await client.get("/file", headers={"Range": "bytes=0-9,20-29"})
        second = await client.get("/file", headers={"Range": "bytes=0-9,20-29"})
    assert first.headers["content-type"] != second.headers["content-type"]


async def test_overlapping_ranges_are_coalesced_into_one(
    serve: Callable[..., httpx.AsyncClient],
) -> None:
    async with serve() as client:
        response = await client.get("/file", headers={"Range": "bytes=0-99,50-149,150-199"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 0-199/{SIZE}"
    assert response.content == CONTENT[:200]


async def test_too_many_ranges_get_the_whole_file(serve: Callable[..., httpx.AsyncClient]) -> None:
    header = "bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(40))
    async with serve() as client:
        response = await client.get("/file", headers={"Range": header})
    assert response.status_code == 200
    assert response.content == CONTENT


# -- conditional requests -----------------------------------------------------------------------


@pytest.fixture
async def validators(serve: Callable[..., httpx.AsyncClient], kind: str) -> tuple[str, str]:
    if not has_validators(kind):
        pytest.skip("a BytesIO has no validators")
    async with serve() as client:
        response = await client.get("/file")
    return response.headers["etag"], response.headers["last-modified"]


async def test_if_none_match_hit_is_304_with_validators_and_no_body(
    serve: Callable[..., httpx.AsyncClient], validators: tuple[str, str], spy: SpyRegistry
) -> None:
    etag, last_modified = validators
    spy.reads.clear()
    async with serve(max_age=60) as client:
        response = await client.get("/file", headers={"If-None-Match": f'"nope", W/{etag}'})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["last-modified"] == last_modified
    assert response.headers["cache-control"] == "public, max-age=60"
    assert "content-length" not in response.headers
    assert spy.reads == []


async def test_if_modified_since_not_modified_is_304(
    serve: Callable[..., httpx.AsyncClient], validators: tuple[str, str]
) -> None:
    _, last_modified = validators
    async with serve() as client:
        response = await client.get("/file", headers={"If-Modified-Since": last_modified})
    assert response.status_code == 304


async def test_if_modified_since_is_ignored_when_if_none_match_is_present(
    serve: Callable[..., httpx.AsyncClient], validators: tuple[str, str]
) -> None:
    _, last_modified = validators
    headers = {"If-None-Match": '"other"', "If-Modified-Since": last_modified}
    async with serve() as client:
        response = await client.get("/file", headers=headers)
    assert response.status_code == 200
    assert response.content == CONTENT


async def test_if_match_mismatch_is_412(
    serve: Callable[..., httpx.AsyncClient], validators: tuple[str, str]
) -> None:
    async with serve() as client:
        miss = await client.get("/file", headers={"If-Match": '"other"'})
        hit = await client.get("/file", headers={"If-Match": validators[0]})
    assert miss.status_code == 412
    assert miss.content == b""
    assert hit.status_code == 200


async def test_if_unmodified_since_in_the_past_is_412(
    serve: Callable[..., httpx.AsyncClient], validators: tuple[str, str]
) -> None:
    past = format_datetime(datetime(2000, 1, 1, tzinfo=timezone.utc), usegmt=True)
    async with serve() as client:
        response = await client.get("/file", headers={"If-Unmodified-Since": past})
    assert response.status_code == 412


async def test_precondition_is_evaluated_before_range(
    serve: Callable[..., httpx.AsyncClient], validators: tuple[str, str]
) -> None:
    async with serve() as client:
        response = await client.get(
            "/file", headers={"If-None-Match": validators[0], "Range": "bytes=0-1"}
        )
    assert response.status_code == 304


@pytest.mark.parametrize(
    ("if_range", "status"),
    [("etag", 206), ("weak-etag", 200), ("other-etag", 200), ("date", 206), ("old-date", 200)],
)
async def test_if_range_serves_the_range_only_when_it_holds(
    serve: Callable[..., httpx.AsyncClient],
    validators: tuple[str, str],
    if_range: str,
    status: int,
) -> None:
    etag, last_modified = validators
    value = {
        "etag": etag,
        "weak-etag": f"W/{etag}",
        "other-etag": '"other"',
        "date": last_modified,
        "old-date": "Sat, 01 Jan 2000 00:00:00 GMT",
    }[if_range]
    async with serve() as client:
        response = await client.get("/file", headers={"Range": "bytes=0-9", "If-Range": value})
    assert response.status_code == status
    assert response.content == (CONTENT[:10] if status == 206 else CONTENT)


async def test_if_range_without_validators_sends_the_whole_file() -> None:
    async def endpoint() -> FileResponse:
        return send_file(io.BytesIO(CONTENT))

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file", headers={"Range": "bytes=0-9", "If-Range": '"x"'})
    assert response.status_code == 200
    assert response.content == CONTENT


async def test_conditional_false_ignores_preconditions_and_ranges(
    serve: Callable[..., httpx.AsyncClient],
) -> None:
    async with serve(conditional=False) as client:
        response = await client.get("/file", headers={"If-None-Match": "*", "Range": "bytes=0-1"})
    assert response.status_code == 200
    assert response.content == CONTENT


# -- options ------------------------------------------------------------------------------------


async def test_attachment_with_non_ascii_name(serve: Callable[..., httpx.AsyncClient]) -> None:
    async with serve(as_attachment=True, download_name="résumé 2024.pdf") as client:
        response = await client.get("/file")
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"resume 2024.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%202024.pdf"
    )
    assert response.headers["content-type"] == "application/pdf"


async def test_download_name_alone_is_inline_with_the_name(
    serve: Callable[..., httpx.AsyncClient],
) -> None:
    async with serve(download_name="report.csv") as client:
        response = await client.get("/file")
    assert response.headers["content-disposition"] == 'inline; filename="report.csv"'
    assert response.headers["content-type"] == "text/csv; charset=utf-8"


async def test_lilya_positional_call_and_attachment_filename_alias(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")

    async def endpoint() -> FileResponse:
        return send_file(str(path), "text/plain", True, "notes.txt", 120)

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="notes.txt"'
    assert response.headers["cache-control"] == "public, max-age=120"


async def test_explicit_etag_and_last_modified_are_used(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    moment = datetime(2021, 5, 6, 7, 8, 9, tzinfo=timezone.utc)

    async def endpoint() -> FileResponse:
        return send_file(str(path), etag='"v1"', last_modified=moment.timestamp())

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file")
        not_modified = await client.get("/file", headers={"If-None-Match": '"v1"'})
    assert response.headers["etag"] == '"v1"'
    assert response.headers["last-modified"] == "Thu, 06 May 2021 07:08:09 GMT"
    assert not_modified.status_code == 304


async def test_a_modification_time_in_the_future_is_sent_as_the_response_time(
    tmp_path: Path,
) -> None:
    # RFC 9110 8.8.2.1: never a Last-Modified later than the response; If-Modified-Since
    # (which ignores future dates) then works with the date the client was given.
    path = tmp_path / "from-the-future.bin"
    path.write_bytes(b"abc")
    future = datetime(2099, 1, 1, tzinfo=timezone.utc).timestamp()
    os.utime(path, (future, future))

    async def endpoint() -> FileResponse:
        return send_file(path)

    async with asgi_client(lilya_app(endpoint)) as client:
        before = datetime.now(timezone.utc).replace(microsecond=0)
        response = await client.get("/file")
        after = datetime.now(timezone.utc)
        last_modified = response.headers["last-modified"]
        not_modified = await client.get("/file", headers={"If-Modified-Since": last_modified})
    assert before <= parsedate_to_datetime(last_modified) <= after
    assert not_modified.status_code == 304


async def test_a_content_type_in_the_headers_labels_the_multipart_parts_too(
    serve: Callable[..., httpx.AsyncClient],
) -> None:
    async with serve(headers={"Content-Type": "application/x-custom"}) as client:
        whole = await client.get("/file")
        ranges = await client.get("/file", headers={"Range": "bytes=0-9,20-29"})
    assert whole.headers["content-type"] == "application/x-custom"
    assert ranges.headers["content-type"].startswith("multipart/byteranges; boundary=")
    parts = parse_multipart(ranges.headers["content-type"], ranges.content)
    assert [p.headers["content-type"] for p in parts] == ["application/x-custom"] * 2


@pytest.mark.parametrize(
    ("as_attachment", "expected"),
    [(True, 'attachment; filename="download.bin"'), (False, None)],
)
@pytest.mark.parametrize("name", ["..", "\n", "\u200b", " . "])
async def test_a_download_name_with_nothing_usable_left_is_no_name(
    name: str, as_attachment: bool, expected: str | None
) -> None:
    async def endpoint() -> FileResponse:
        return send_file(io.BytesIO(b"abc"), download_name=name, as_attachment=as_attachment)

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file")
    assert response.headers.get("content-disposition") == expected


async def test_etag_false_sends_no_etag(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")

    async def endpoint() -> FileResponse:
        return send_file(str(path), etag=False)

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file")
    assert "etag" not in response.headers
    assert "last-modified" in response.headers


async def test_caller_headers_override_computed_ones_but_not_framing(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    headers = {"Cache-Control": "private, max-age=5", "Content-Length": "999", "X-Extra": "1"}

    async def endpoint() -> FileResponse:
        return send_file(str(path), headers=headers)

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file")
    assert response.headers["cache-control"] == "private, max-age=5"
    assert response.headers["content-length"] == "3"
    assert response.headers["x-extra"] == "1"


async def test_status_code_other_than_200_turns_ranges_off(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abcdef")

    async def endpoint() -> FileResponse:
        return send_file(str(path), status_code=203)

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file", headers={"Range": "bytes=0-1"})
    assert response.status_code == 203
    assert response.content == b"abcdef"
    assert response.headers["accept-ranges"] == "none"


async def test_text_file_gets_utf8_charset_from_its_name(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("héllo", encoding="utf-8")

    async def endpoint() -> FileResponse:
        return send_file(path)

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "héllo"


async def test_s3_content_type_is_used_when_the_name_says_nothing(
    s3_client: Any, bucket: str, storage_registry: Any
) -> None:
    s3_client.put_object(Bucket=bucket, Key="report", Body=b"%PDF", ContentType="application/pdf")

    async def endpoint() -> FileResponse:
        return send_file(f"s3://{bucket}/report", registry=storage_registry)

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file")
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["etag"] == s3_client.head_object(Bucket=bucket, Key="report")["ETag"]


async def test_deduce_media_type_from_body_sniffs_with_python_magic() -> None:
    pytest.importorskip("magic")

    async def endpoint() -> FileResponse:
        return send_file(io.BytesIO(b"%PDF-1.4\n" + b"x" * 5000), deduce_media_type_from_body=True)

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file")
    assert response.headers["content-type"] == "application/pdf"
    assert len(response.content) == 5009


async def test_sniffing_reads_nothing_for_a_304(tmp_path: Path, spy: SpyRegistry) -> None:
    pytest.importorskip("magic")
    path = tmp_path / "doc"
    path.write_bytes(b"%PDF-1.4\n" + b"x" * 5000)

    async def endpoint() -> FileResponse:
        return send_file(path, deduce_media_type_from_body=True, registry=spy)

    async with asgi_client(lilya_app(endpoint)) as client:
        first = await client.get("/file")
        reads_for_200 = list(spy.reads)
        spy.reads.clear()
        cached = await client.get("/file", headers={"If-None-Match": first.headers["etag"]})
        ranged = await client.get("/file", headers={"Range": "bytes=0-3"})
    assert first.headers["content-type"] == "application/pdf"
    assert reads_for_200[0] == (0, 2048)  # the sniff, then the body
    assert cached.status_code == 304
    assert ranged.status_code == 206
    assert ranged.content == b"%PDF"
    # The 304 read nothing; the 206 sniffed, then read its range.
    assert spy.reads == [(0, 2048), (0, 4)]


async def test_a_content_type_in_the_headers_means_no_sniffing(
    tmp_path: Path, spy: SpyRegistry
) -> None:
    pytest.importorskip("magic")
    path = tmp_path / "doc"
    path.write_bytes(b"%PDF-1.4\n" + b"x" * 5000)

    async def endpoint() -> FileResponse:
        return send_file(
            path,
            deduce_media_type_from_body=True,
            headers={"Content-Type": "application/x-report"},
            registry=spy,
        )

    async with asgi_client(lilya_app(endpoint)) as client:
        head = await client.head("/file")
        ranged = await client.get("/file", headers={"Range": "bytes=0-3"})
    assert head.headers["content-type"] == "application/x-report"
    assert ranged.headers["content-type"] == "application/x-report"
    assert spy.reads == [(0, 4)]  # the range only: nothing read to sniff


async def test_empty_file_is_200_and_any_range_is_416(tmp_path: Path) -> None:
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")

    async def endpoint() -> FileResponse:
        return send_file(path)

    async with asgi_client(lilya_app(endpoint)) as client:
        full = await client.get("/file")
        ranged = await client.get("/file", headers={"Range": "bytes=0-"})
    assert (full.status_code, full.content, full.headers["content-length"]) == (200, b"", "0")
    assert ranged.status_code == 416
    assert ranged.headers["content-range"] == "bytes */0"


async def test_non_seekable_stream_is_sent_whole_without_length_or_ranges() -> None:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, CONTENT[:4000])
    os.close(write_fd)

    async def endpoint() -> FileResponse:
        return send_file(os.fdopen(read_fd, "rb", buffering=0))

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file", headers={"Range": "bytes=0-9"})
    assert response.status_code == 200
    assert response.content == CONTENT[:4000]
    assert "content-length" not in response.headers
    assert response.headers["accept-ranges"] == "none"


async def test_one_response_instance_serves_many_requests(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(CONTENT)
    response_object = send_file(path)

    async def endpoint() -> FileResponse:
        return response_object

    async with asgi_client(lilya_app(endpoint)) as client:
        ranged = await client.get("/file", headers={"Range": "bytes=0-9"})
        full = await client.get("/file")
    assert ranged.status_code == 206
    assert full.status_code == 200
    assert full.content == CONTENT


async def test_background_task_runs_after_the_body(tmp_path: Path) -> None:
    from lilya.background import Task

    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    ran: list[str] = []

    async def endpoint() -> FileResponse:
        return send_file(path, background=Task(ran.append, "done"))

    async with asgi_client(lilya_app(endpoint)) as client:
        await client.get("/file")
    assert ran == ["done"]


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["local", "memory", "s3"])
async def test_missing_source_is_404(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, storage_registry: Any
) -> None:
    if kind == "s3":
        source = f"s3://{request.getfixturevalue('bucket')}/missing.bin"
    elif kind == "memory":
        source = "memory://sendfs-tests/missing.bin"
    else:
        source = str(tmp_path / "missing.bin")

    async def endpoint() -> FileResponse:
        return send_file(source, registry=storage_registry)

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file")
    assert response.status_code == 404
    assert "missing" not in response.text  # no path leaks into the error page


async def test_directory_is_404(tmp_path: Path) -> None:
    async def endpoint() -> FileResponse:
        return send_file(tmp_path)

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file")
    assert response.status_code == 404


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
async def test_unreadable_file_is_403(tmp_path: Path) -> None:
    path = tmp_path / "secret.bin"
    path.write_bytes(b"x")
    path.chmod(0)

    async def endpoint() -> FileResponse:
        return send_file(path)

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file")
    assert response.status_code == 403


async def test_unreachable_s3_endpoint_is_502(moto_endpoint: str, storage_registry: Any) -> None:
    from tests.conftest import free_port

    options = {
        "endpoint_url": f"http://127.0.0.1:{free_port()}",
        "retries": 1,
        "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2},
    }

    async def endpoint() -> FileResponse:
        return send_file("s3://nobucket/key", storage_options=options, registry=storage_registry)

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file")
    assert response.status_code == 502


class _FailingResource(ResourceBase):
    def __init__(self, fail_after: int) -> None:
        self._info = FileInfo(size=3 * 1024, name="x.bin")
        self._fail_after = fail_after

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        for _ in range(self._fail_after):
            yield b"x" * 1024
        raise BackendError("disk on fire")


class _FailingBackend:
    def __init__(self, fail_after: int) -> None:
        self.fail_after = fail_after

    async def open(self, source: Any, **options: Any) -> _FailingResource:
        return _FailingResource(self.fail_after)


async def test_failure_before_the_first_byte_is_a_clean_502() -> None:
    reg = SpyRegistry()
    reg.register("broken", _FailingBackend(fail_after=0))

    async def endpoint() -> FileResponse:
        return send_file("broken://x", registry=reg)

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file")
    assert response.status_code == 502


async def test_failure_after_the_first_byte_aborts_the_response() -> None:
    reg = SpyRegistry()
    reg.register("broken", _FailingBackend(fail_after=1))
    sent: list[MutableMapping[str, Any]] = []

    async def endpoint() -> FileResponse:
        return send_file("broken://x", registry=reg)

    request_read = anyio.Event()

    async def receive() -> dict[str, Any]:
        if request_read.is_set():
            await anyio.sleep_forever()  # like a server: nothing more until a disconnect
        request_read.set()
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    response = send_file("broken://x", registry=reg)
    scope = {"type": "http", "method": "GET", "headers": [], "path": "/"}
    with pytest.raises(BackendError):
        await response(scope, receive, send)
    assert sent[0]["status"] == 200
    assert not any(m.get("more_body") is False for m in sent[1:])
    assert reg.closed == [True]


async def test_client_disconnect_stops_reading_and_closes(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"z" * (4 * 1024 * 1024))
    reg = SpyRegistry()
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    response = send_file(path, registry=reg, chunk_size=64 * 1024)
    await response({"type": "http", "method": "GET", "headers": []}, receive, send)
    body_bytes = sum(len(m.get("body", b"")) for m in sent)
    assert body_bytes < 4 * 1024 * 1024
    assert reg.closed == [True]


# -- programmer errors at send_file() time --------------------------------------------------------


def test_text_stream_is_a_type_error_that_says_what_to_pass() -> None:
    with pytest.raises(TypeError, match=r"binary file object.*'rb'"):
        send_file(io.StringIO("hello"))  # type: ignore[arg-type]


def test_unknown_scheme_is_raised_at_call_time_naming_registered_schemes() -> None:
    with pytest.raises(UnknownScheme, match="file"):
        send_file("nosuchscheme://x")


@pytest.mark.parametrize(
    "options",
    [{"max_age": -1}, {"chunk_size": 0}, {"headers": {"X-A": "a\r\nb"}}, {"etag": 'a"b'}],
    ids=["max_age", "chunk_size", "header-crlf", "etag-quote"],
)
def test_bad_options_are_value_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        send_file("/etc/hostname", **options)


def test_both_names_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        send_file("/etc/hostname", download_name="a", attachment_filename="b")


# -- other frameworks -----------------------------------------------------------------------------


async def test_the_starlette_face_works_in_starlette_and_errors_reach_its_handlers(
    tmp_path: Path,
) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    from sendfs import starlette

    path = tmp_path / "x.txt"
    path.write_bytes(b"hello starlette")

    async def found(request: Request) -> starlette.FileResponse:
        return starlette.send_file(path)

    async def missing(request: Request) -> starlette.FileResponse:
        return starlette.send_file(tmp_path / "nope")

    app = Starlette(routes=[Route("/found", found), Route("/missing", missing)])
    async with asgi_client(app) as client:
        ok = await client.get("/found", headers={"Range": "bytes=6-"})
        gone = await client.get("/missing")
    assert ok.status_code == 206
    assert ok.content == b"starlette"
    assert gone.status_code == 404


# -- zero-copy hand-off -------------------------------------------------------------------------


async def _call(
    response: FileResponse, headers: list[tuple[bytes, bytes]], extensions: dict[str, Any]
) -> list[MutableMapping[str, Any]]:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "headers": headers, "extensions": extensions}
    await response(scope, receive, send)
    return sent


async def test_full_local_response_is_handed_to_the_server_by_path(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(CONTENT)
    sent = await _call(send_file(path), [], {"http.response.pathsend": {}})
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    assert sent[1]["path"] == str(path)
    assert (b"content-length", str(SIZE).encode()) in sent[0]["headers"]


async def test_relative_local_path_is_handed_over_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rel.bin").write_bytes(b"abc")
    monkeypatch.chdir(tmp_path)
    sent = await _call(send_file("rel.bin"), [], {"http.response.pathsend": {}})
    assert sent[1]["path"] == str(tmp_path / "rel.bin")


async def test_ranges_stream_even_when_the_server_offers_pathsend(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(CONTENT)
    sent = await _call(send_file(path), [(b"range", b"bytes=0-9")], {"http.response.pathsend": {}})
    assert sent[0]["status"] == 206
    assert b"".join(m.get("body", b"") for m in sent[1:]) == CONTENT[:10]


async def test_without_the_extension_the_body_is_streamed(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(CONTENT)
    sent = await _call(send_file(path), [], {})
    assert all(m["type"] != "http.response.pathsend" for m in sent)
    assert b"".join(m.get("body", b"") for m in sent[1:]) == CONTENT


# -- bodies that come in one chunk -------------------------------------------------------------


@pytest.mark.parametrize(
    ("range_header", "expected"),
    [
        pytest.param(None, CONTENT, id="whole-file"),
        pytest.param("bytes=100-199", CONTENT[100:200], id="one-range"),
        pytest.param("bytes=-0,5-", CONTENT[5:], id="open-range"),
    ],
)
async def test_a_body_in_one_chunk_goes_out_in_one_message_with_nothing_to_watch(
    tmp_path: Path, range_header: str | None, expected: bytes
) -> None:
    path = tmp_path / "small.bin"
    path.write_bytes(CONTENT)
    headers = [(b"range", range_header.encode())] if range_header else None
    recorded = await record_call(send_file(path), http_scope(headers))
    messages = recorded.messages
    assert [m["type"] for m in messages] == ["http.response.start", "http.response.body"]
    assert messages[1]["body"] == expected
    assert not messages[1].get("more_body", False)
    # No disconnect watcher was started: nothing but the app itself could call receive().
    assert recorded.receive_calls == 0


async def test_an_empty_file_is_one_empty_message(tmp_path: Path) -> None:
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    messages = (await record_call(send_file(path))).messages
    assert messages[0]["status"] == 200
    assert messages[1:] == [{"type": "http.response.body", "body": b"", "more_body": False}]


async def test_a_body_larger_than_a_chunk_streams_and_watches_for_a_disconnect(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(CONTENT)
    recorded = await record_call(send_file(path, chunk_size=4096))
    bodies = [m for m in recorded.messages if m["type"] == "http.response.body"]
    assert b"".join(m["body"] for m in bodies) == CONTENT
    assert [m.get("more_body", False) for m in bodies][-1] is False
    assert len(bodies) > 2
    # The watcher: it takes the request message, then waits for a disconnect.
    assert recorded.receive_calls == 2


class MisreportingResource(ResourceBase):
    """Claims ``size`` bytes and yields ``pieces`` for any range: a backend bug the response
    must not pass on."""

    def __init__(self, size: int, pieces: list[bytes]) -> None:
        self._info = FileInfo(size=size, name="misreported.bin")
        self._pieces = pieces

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece


class MisreportingRegistry(SpyRegistry):
    def __init__(self, size: int, pieces: list[bytes]) -> None:
        super().__init__()
        self.size = size
        self.pieces = pieces

    async def open(self, source: Any, **options: Any) -> Any:
        return MisreportingResource(self.size, self.pieces)


def misreported(size: int, *pieces: bytes) -> FileResponse:
    return send_file("misreported.bin", registry=MisreportingRegistry(size, list(pieces)))


def body_messages(recorded: Recorded) -> list[tuple[bytes, bool]]:
    return [
        (m["body"], m.get("more_body", False))
        for m in recorded.messages
        if m["type"] == "http.response.body"
    ]


async def test_a_source_longer_than_its_size_is_a_502_before_anything_is_sent() -> None:
    recorded = await record_call(misreported(3, b"abc", b"d"), raises=True)
    assert getattr(recorded.error, "status_code", None) == 502
    assert isinstance(getattr(recorded.error, "__cause__", None), BackendError)
    assert recorded.messages == []


async def test_a_later_chunk_past_the_size_aborts_before_it_is_sent() -> None:
    recorded = await record_call(misreported(6, b"ab", b"cd", b"efg"), raises=True)
    assert isinstance(recorded.error, BackendError)
    assert str(recorded.error) == "the source sent more than its 6 bytes"
    assert body_messages(recorded) == [(b"ab", True), (b"cd", True)]


async def test_a_source_shorter_than_its_size_aborts_instead_of_ending_the_body() -> None:
    recorded = await record_call(misreported(6, b"ab", b"cd"), raises=True)
    assert isinstance(recorded.error, BackendError)
    assert str(recorded.error) == "the source ended after 4 of its 6 bytes"
    assert body_messages(recorded) == [(b"ab", True), (b"cd", True)]  # no final message


@pytest.mark.parametrize("piece", [b"x", b"xyz"], ids=["short", "long"])
async def test_a_multipart_part_of_the_wrong_length_aborts_the_response(piece: bytes) -> None:
    # Big enough for a multipart answer: framing larger than the file gets the whole file.
    scope = http_scope([(b"range", b"bytes=0-1,5000-5001")])
    recorded = await record_call(misreported(10_000, piece), scope, raises=True)
    assert isinstance(recorded.error, BackendError)
    assert str(recorded.error) == f"the source sent {len(piece)} bytes for a range of 2"
    assert recorded.messages[0]["status"] == 206
    assert all(more for _, more in body_messages(recorded))  # never a final message


async def test_a_first_chunk_longer_than_the_size_is_a_502_before_any_byte() -> None:
    async def endpoint() -> FileResponse:
        return misreported(3, b"abcd")

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file")
    assert response.status_code == 502
    assert b"abcd" not in response.content
