"""One contract, every face: the same requests get the same answers from each framework.

Each check runs against every face under its real server (see ``conftest.py``) and every
source kind the contract app serves: a local file, one found under a root, a ``BytesIO``,
``memory://``, ``s3://`` on the moto server and ``az://`` on Azurite. A face only translates
the core's answer, so a difference here is a face that decides HTTP itself, or a framework
that rewrites the answer.

The options that change the answer's shape are checked the same way, on routes every app
has (see ``apps/common.py``): ``offload=`` (an empty 200 naming the file for nginx or
Apache, a presigned URL for nginx to proxy), ``signer=`` (403 before the storage is touched,
unless the link is signed for this very path and unexpired) and ``precompressed=`` (the
``.br`` / ``.gz`` sibling the client accepts, byte for byte, with its own tag and ranges).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from email.utils import format_datetime
from urllib.parse import quote

import httpx
import pytest

from sendfs import LinkSigner
from tests.faces.apps.common import LINK_SECRET, OFFLOAD_LOCATION, REPROXY_LOCATION
from tests.faces.conftest import NESTED, FacesData, FaceServer
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


# -- front-server offload, signed links, precompressed siblings ---------------------------------
#
# Read with a client that sends no Accept-Encoding unless told to and never decodes a
# Content-Encoding: the precompressed siblings are compared byte for byte.

#: What the app leaves to the front server: an offloaded answer carries none of these.
FRONT_SERVER_FIELDS = ("etag", "last-modified", "accept-ranges", "content-range")
#: The fields the app owns in an offloaded answer, the same as when it sends the file itself.
APP_FIELDS = ("content-type", "content-disposition", "cache-control")


@pytest.fixture
def raw_client(face_server: FaceServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=face_server.url, timeout=30.0, trust_env=False) as client:
        del client.headers["accept-encoding"]
        yield client


def fetch(
    client: httpx.Client, method: str, url: str, headers: dict[str, str] | None = None
) -> tuple[httpx.Response, bytes]:
    """The response and its body exactly as sent (no content decoding)."""
    with client.stream(method, url, headers=headers) as response:
        body = b"".join(response.iter_raw())
    return response, body


def varies_on_accept_encoding(response: httpx.Response) -> bool:
    names = ",".join(response.headers.get_list("vary")).split(",")
    return "accept-encoding" in {name.strip().lower() for name in names}


def assert_offloaded(response: httpx.Response, body: bytes, reference: httpx.Response) -> None:
    """An empty 200 with the app's fields of ``reference`` (the file sent by the app)."""
    assert response.status_code == 200
    assert body == b""
    assert response.headers["content-length"] == "0"
    for name in APP_FIELDS:
        assert response.headers.get(name) == reference.headers.get(name), name
    for name in FRONT_SERVER_FIELDS:
        assert name not in response.headers, name


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("name", ["text.txt", NESTED])
def test_offload_to_nginx_names_the_file_under_its_location(
    raw_client: httpx.Client, method: str, name: str
) -> None:
    reference = raw_client.head(quote(f"/files/{name}"))
    assert reference.status_code == 200
    response, body = fetch(raw_client, method, quote(f"/offload/local/{name}"))
    assert_offloaded(response, body, reference)
    assert response.headers["x-accel-redirect"] == OFFLOAD_LOCATION + quote(name)
    assert "x-sendfile" not in response.headers
    assert "x-reproxy-url" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [{"Range": "bytes=0-3"}, {"If-None-Match": "*"}, {"If-Match": '"not-the-tag"'}],
    ids=["range", "if-none-match", "if-match"],
)
def test_an_offload_leaves_ranges_and_conditions_to_the_front_server(
    raw_client: httpx.Client, headers: dict[str, str]
) -> None:
    reference = raw_client.head("/files/text.txt")
    response, body = fetch(raw_client, "GET", "/offload/local/text.txt", headers)
    assert_offloaded(response, body, reference)
    assert response.headers["x-accel-redirect"] == OFFLOAD_LOCATION + "text.txt"
    sendfile, sendfile_body = fetch(raw_client, "GET", "/sendfile/text.txt", headers)
    assert_offloaded(sendfile, sendfile_body, reference)
    assert "x-sendfile" in sendfile.headers


@pytest.mark.parametrize("name", ["text.txt", NESTED])
def test_x_sendfile_names_the_absolute_path(
    raw_client: httpx.Client, faces_data: FacesData, name: str
) -> None:
    reference = raw_client.head(quote(f"/files/{name}"))
    response, body = fetch(raw_client, "GET", quote(f"/sendfile/{name}"))
    assert_offloaded(response, body, reference)
    assert response.headers["x-sendfile"] == quote(str(faces_data.root / name))
    assert "x-accel-redirect" not in response.headers


def test_offload_of_an_s3_object_hands_nginx_a_presigned_url(
    raw_client: httpx.Client, faces_data: FacesData, moto_endpoint: str
) -> None:
    reference = raw_client.head("/s3/big.bin")
    response, body = fetch(raw_client, "GET", "/offload/s3/big.bin")
    assert response.status_code == 200
    assert body == b""
    assert response.headers["content-length"] == "0"
    assert response.headers["x-accel-redirect"] == REPROXY_LOCATION
    assert response.headers["content-type"] == reference.headers["content-type"]
    assert response.headers["cache-control"] == reference.headers["cache-control"]
    # The download name travels in the presigned URL: nginx would keep both.
    for name in (*FRONT_SERVER_FIELDS, "content-disposition"):
        assert name not in response.headers, name
    url = httpx.URL(response.headers["x-reproxy-url"])
    assert (url.scheme, url.host, url.port) == (
        "http",
        "127.0.0.1",
        httpx.URL(moto_endpoint).port,
    )
    assert url.path.endswith("/big.bin")
    assert {"X-Amz-Signature", "Signature"} & set(url.params)
    # What nginx would proxy: the object itself.
    proxied = httpx.get(url, timeout=30.0, trust_env=False)
    assert proxied.status_code == 200
    assert proxied.content == faces_data.big


def test_a_head_of_an_offloaded_s3_object_is_answered_by_the_app(
    raw_client: httpx.Client, faces_data: FacesData
) -> None:
    reference = raw_client.head("/s3/big.bin")
    response, body = fetch(raw_client, "HEAD", "/offload/s3/big.bin")
    assert response.status_code == 200
    assert body == b""
    assert response.headers["content-length"] == str(len(faces_data.big))
    for name in ("content-type", "etag", "last-modified", "accept-ranges"):
        assert response.headers.get(name) == reference.headers.get(name), name
    assert "x-accel-redirect" not in response.headers
    assert "x-reproxy-url" not in response.headers


@pytest.mark.parametrize(
    "path",
    [
        "/offload/local/no-such-file",
        "/offload/local/sub%20dir/no-such-file",
        "/offload/local/..%2fsecret",
        "/sendfile/no-such-file",
        "/offload/s3/no/such/key",
    ],
)
def test_an_offloaded_missing_file_is_the_frameworks_404(
    raw_client: httpx.Client, path: str
) -> None:
    response = raw_client.get(path)
    assert response.status_code == 404
    for name in ("x-accel-redirect", "x-sendfile", "x-reproxy-url"):
        assert name not in response.headers, name


def link(path: str, *, signer: LinkSigner | None = None) -> str:
    """A link to ``path`` (decoded) valid for a minute, from the contract's secret."""
    return (signer or LinkSigner(LINK_SECRET)).sign(path, expires_in=60)


@pytest.mark.parametrize("name", ["text.txt", NESTED])
def test_a_signed_link_serves_the_file(
    raw_client: httpx.Client, faces_data: FacesData, name: str
) -> None:
    url = link(f"/signed/{name}")
    response, body = fetch(raw_client, "GET", url)
    assert response.status_code == 200
    assert body == faces_data.text
    head = raw_client.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(faces_data.text))
    # Other query parameters are not bound.
    assert raw_client.get(f"{url}&download=1").content == faces_data.text
    path, _, query = url.partition("?")
    assert raw_client.get(f"{path}?download=1&{query}").content == faces_data.text


def test_a_signed_link_to_a_missing_file_is_a_404(raw_client: httpx.Client) -> None:
    assert raw_client.get(link("/signed/no-such-file")).status_code == 404


def test_a_link_without_a_valid_signature_is_a_403(raw_client: httpx.Client) -> None:
    valid = link("/signed/text.txt")
    path, _, query = valid.partition("?")
    fields = dict(part.split("=", 1) for part in query.split("&"))
    expires, signature = fields["expires"], fields["signature"]
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    expired = LinkSigner(LINK_SECRET, clock=lambda: time.time() - 7200).sign(
        "/signed/text.txt", expires_in=60
    )
    refused = {
        "no signature": path,
        "no signature, missing file": "/signed/no-such-file",
        "expires only": f"{path}?expires={expires}",
        "signature only": f"{path}?signature={signature}",
        "expired": expired,
        "later expiry": f"{path}?expires={int(expires) + 3600}&signature={signature}",
        "other signature": f"{path}?expires={expires}&signature={flipped}",
        "repeated": f"{valid}&signature={signature}",
        "another path's link": "/signed/text.txt?" + link("/signed/big.bin").partition("?")[2],
        "another secret": link("/signed/text.txt", signer=LinkSigner("x" * 32)),
    }
    for why, url in refused.items():
        for method in ("GET", "HEAD"):
            response, body = fetch(raw_client, method, url)
            assert response.status_code == 403, (why, method)
            assert b"contract" not in body, why
    assert raw_client.get(valid).status_code == 200


#: Accept-Encoding -> the coding sent (``None``: the file itself).
NEGOTIATED = {
    "br": "br",
    "gzip": "gzip",
    "x-gzip": "gzip",
    "gzip, br": "br",
    "br;q=0.5, gzip": "gzip",
    "*": "br",
    "identity": None,
    "br;q=0, gzip;q=0": None,
    "deflate": None,
}


def sibling(data: FacesData, encoding: str | None) -> bytes:
    """The bytes of ``text.txt`` sent with ``encoding``."""
    return {"br": data.br, "gzip": data.gz, None: data.text}[encoding]


@pytest.mark.parametrize("accept", [None, *NEGOTIATED])
def test_a_precompressed_sibling_is_sent_when_accepted(
    raw_client: httpx.Client, faces_data: FacesData, accept: str | None
) -> None:
    encoding = NEGOTIATED.get(accept or "identity")
    expected = sibling(faces_data, encoding)
    headers = {} if accept is None else {"Accept-Encoding": accept}
    reference = raw_client.head("/files/text.txt")
    response, body = fetch(raw_client, "GET", "/precompressed/text.txt", headers)
    assert response.status_code == 200
    assert body == expected
    assert response.headers["content-length"] == str(len(expected))
    assert response.headers.get("content-encoding") == encoding
    assert varies_on_accept_encoding(response)
    # The type is the file's, whichever coding carries it.
    assert response.headers["content-type"] == reference.headers["content-type"]
    assert response.headers["accept-ranges"] == "bytes"
    head, head_body = fetch(raw_client, "HEAD", "/precompressed/text.txt", headers)
    assert head.status_code == 200
    assert head_body == b""
    for name in ("content-length", "content-encoding", "etag", "last-modified", "content-type"):
        assert head.headers.get(name) == response.headers.get(name), name
    assert varies_on_accept_encoding(head)


def test_each_sibling_has_its_own_etag(raw_client: httpx.Client) -> None:
    tags = {
        encoding: raw_client.head(
            "/precompressed/text.txt", headers={"Accept-Encoding": encoding or "identity"}
        ).headers["etag"]
        for encoding in ("br", "gzip", None)
    }
    assert len(set(tags.values())) == 3, tags
    # The file itself, sent by the app without precompressed=, has the identity's tag.
    assert raw_client.head("/files/text.txt").headers["etag"] == tags[None]


def test_a_file_without_siblings_still_varies(
    raw_client: httpx.Client, faces_data: FacesData
) -> None:
    response, body = fetch(
        raw_client, "GET", quote(f"/precompressed/{NESTED}"), {"Accept-Encoding": "br, gzip"}
    )
    assert response.status_code == 200
    assert body == faces_data.text
    assert "content-encoding" not in response.headers
    assert varies_on_accept_encoding(response)
    missing = raw_client.get("/precompressed/no-such-file", headers={"Accept-Encoding": "gzip"})
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("encoding", "spec", "start", "stop"),
    [("gzip", "bytes=2-9", 2, 10), ("br", "bytes=-10", -10, None), (None, "bytes=5-", 5, None)],
)
def test_a_range_counts_the_encoded_bytes(
    raw_client: httpx.Client,
    faces_data: FacesData,
    encoding: str | None,
    spec: str,
    start: int,
    stop: int | None,
) -> None:
    whole = sibling(faces_data, encoding)
    expected = whole[start:stop]
    first = start % len(whole)
    response, body = fetch(
        raw_client,
        "GET",
        "/precompressed/text.txt",
        {"Accept-Encoding": encoding or "identity", "Range": spec},
    )
    assert response.status_code == 206
    assert body == expected
    assert response.headers["content-length"] == str(len(expected))
    assert response.headers["content-range"] == (
        f"bytes {first}-{first + len(expected) - 1}/{len(whole)}"
    )
    assert response.headers.get("content-encoding") == encoding
    assert varies_on_accept_encoding(response)


def test_an_unsatisfiable_range_counts_the_encoded_bytes(
    raw_client: httpx.Client, faces_data: FacesData
) -> None:
    # Past the end of the gzip sibling, inside the file itself.
    spec = f"bytes={len(faces_data.gz)}-"
    assert len(faces_data.gz) < len(faces_data.text)
    response, _ = fetch(
        raw_client, "GET", "/precompressed/text.txt", {"Accept-Encoding": "gzip", "Range": spec}
    )
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(faces_data.gz)}"
    assert varies_on_accept_encoding(response)
    identity, body = fetch(raw_client, "GET", "/precompressed/text.txt", {"Range": spec})
    assert identity.status_code == 206
    assert body == faces_data.text[len(faces_data.gz) :]


def test_a_sibling_revalidates_with_its_own_etag(
    raw_client: httpx.Client, faces_data: FacesData
) -> None:
    gzip = {"Accept-Encoding": "gzip"}
    etag = raw_client.head("/precompressed/text.txt", headers=gzip).headers["etag"]
    response, body = fetch(
        raw_client, "GET", "/precompressed/text.txt", {**gzip, "If-None-Match": etag}
    )
    assert response.status_code == 304
    assert body == b""
    assert response.headers["etag"] == etag
    assert varies_on_accept_encoding(response)
    # Another coding is another representation: the gzip tag does not match it.
    other, other_body = fetch(
        raw_client,
        "GET",
        "/precompressed/text.txt",
        {"Accept-Encoding": "br", "If-None-Match": etag},
    )
    assert other.status_code == 200
    assert other_body == faces_data.br
    assert other.headers["content-encoding"] == "br"
    # A range of the gzip sibling under its own tag, and a stale one.
    fresh, fresh_body = fetch(
        raw_client,
        "GET",
        "/precompressed/text.txt",
        {**gzip, "Range": "bytes=0-3", "If-Range": etag},
    )
    assert fresh.status_code == 206
    assert fresh_body == faces_data.gz[:4]
    stale, stale_body = fetch(
        raw_client,
        "GET",
        "/precompressed/text.txt",
        {"Accept-Encoding": "br", "Range": "bytes=0-3", "If-Range": etag},
    )
    assert stale.status_code == 200
    assert stale_body == faces_data.br
