"""One contract, every face: the same requests get the same answers from each framework.

Each check runs against every face under its real server (see ``conftest.py``) and every
source kind the contract app serves: a local file, one found under a root, a ``BytesIO``,
``memory://``, ``s3://`` on the moto server and ``az://`` on Azurite. A face only translates
the core's answer, so a difference here is a face that decides HTTP itself, or a framework
that rewrites the answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone
from email.utils import format_datetime

import httpx
import pytest

from tests.faces.conftest import FacesData, FaceServer
from tests.helpers import parse_multipart

pytestmark = [pytest.mark.e2e, pytest.mark.s3, pytest.mark.azure]

#: Route prefixes of the big file, by source kind.
SOURCES = {
    "local": "/local/big.bin",
    "confined": "/files/big.bin",
    "bytesio": "/bytes/big.bin",
    "memory": "/memory/big.bin",
    "s3": "/s3/big.bin",
    "az": "/az/big.bin",
}
#: Sources without validators (a BytesIO has no modification time or tag).
UNVALIDATED = {"bytesio"}


@pytest.fixture
def client(face_server: FaceServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=face_server.url, timeout=30.0, trust_env=False) as client:
        yield client


@pytest.fixture(params=sorted(SOURCES))
def source(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_full_get_is_exact_with_its_fields(
    client: httpx.Client, faces_data: FacesData, source: str
) -> None:
    response = client.get(SOURCES[source])
    assert response.status_code == 200
    assert response.content == faces_data.big
    assert response.headers["content-length"] == str(len(faces_data.big))
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["accept-ranges"] == "bytes"
    assert "inline" in response.headers.get("content-disposition", "inline")
    if source not in UNVALIDATED:
        assert re.fullmatch(r'"[^"]+"', response.headers["etag"])
        assert response.headers["last-modified"].endswith(" GMT")


def test_head_has_the_fields_of_get_and_no_body(client: httpx.Client, source: str) -> None:
    get = client.get(SOURCES[source])
    head = client.head(SOURCES[source])
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-length", "content-type", "accept-ranges", "etag", "last-modified"):
        assert head.headers.get(name) == get.headers.get(name), name


@pytest.mark.parametrize(
    ("spec", "start", "stop"),
    [("bytes=100-199", 100, 200), ("bytes=-500", -500, None), ("bytes=3145000-", 3145000, None)],
)
def test_one_range_is_a_206_with_exactly_those_bytes(
    client: httpx.Client,
    faces_data: FacesData,
    source: str,
    spec: str,
    start: int,
    stop: int | None,
) -> None:
    response = client.get(SOURCES[source], headers={"Range": spec})
    expected = faces_data.big[start:stop]
    assert response.status_code == 206
    assert response.content == expected
    assert response.headers["content-length"] == str(len(expected))
    first = start % len(faces_data.big)
    assert response.headers["content-range"] == (
        f"bytes {first}-{first + len(expected) - 1}/{len(faces_data.big)}"
    )


def test_several_ranges_are_one_multipart_206(
    client: httpx.Client, faces_data: FacesData, source: str
) -> None:
    response = client.get(SOURCES[source], headers={"Range": "bytes=0-9,1000000-1000009"})
    assert response.status_code == 206
    assert response.headers["content-length"] == str(len(response.content))
    parts = parse_multipart(response.headers["content-type"], response.content)
    assert [part.body for part in parts] == [
        faces_data.big[0:10],
        faces_data.big[1000000:1000010],
    ]


def test_an_unsatisfiable_range_is_a_416(
    client: httpx.Client, faces_data: FacesData, source: str
) -> None:
    response = client.get(SOURCES[source], headers={"Range": "bytes=99999999-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(faces_data.big)}"


def test_a_malformed_range_is_ignored(
    client: httpx.Client, faces_data: FacesData, source: str
) -> None:
    response = client.get(SOURCES[source], headers={"Range": "bytes=abc"})
    assert response.status_code == 200
    assert response.content == faces_data.big


def test_validators_answer_304_412_and_if_range(
    client: httpx.Client, faces_data: FacesData, source: str
) -> None:
    if source in UNVALIDATED:
        pytest.skip("a BytesIO has no validators")
    head = client.head(SOURCES[source])
    etag, modified = head.headers["etag"], head.headers["last-modified"]
    not_modified = client.get(SOURCES[source], headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    since = client.get(SOURCES[source], headers={"If-Modified-Since": modified})
    assert since.status_code == 304
    past = format_datetime(datetime(2000, 1, 1, tzinfo=timezone.utc), usegmt=True)
    assert client.get(SOURCES[source], headers={"If-Unmodified-Since": past}).status_code == 412
    failed = client.get(SOURCES[source], headers={"If-Match": '"not-the-tag"'})
    assert failed.status_code == 412
    stale = client.get(SOURCES[source], headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert stale.status_code == 200
    assert stale.content == faces_data.big
    fresh = client.get(SOURCES[source], headers={"Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status_code == 206
    assert fresh.content == faces_data.big[:10]


def test_a_missing_source_is_the_frameworks_404(client: httpx.Client) -> None:
    assert client.get("/missing").status_code == 404
    assert client.get("/s3/no/such/key").status_code == 404


def test_a_path_leaving_its_root_is_a_404(client: httpx.Client) -> None:
    for path in ("/files/..%2fsecret", "/files/%2e%2e/secret", "/files/sub/..%2f..%2fetc"):
        assert client.get(path).status_code == 404, path


def test_an_attachment_carries_its_non_ascii_name(
    client: httpx.Client, faces_data: FacesData
) -> None:
    response = client.get("/attachment/text.txt")
    assert response.status_code == 200
    assert response.content == faces_data.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment; ")
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20text.txt" in disposition
