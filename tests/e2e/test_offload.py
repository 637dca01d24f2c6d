"""Front-server offload end to end: curl -> nginx or lighttpd -> uvicorn (sendfs) -> bytes.

The app (``tests/e2e/offload_app.py``) answers with an empty body and ``X-Accel-Redirect`` or
``X-Sendfile``; the front server (``tests/e2e/frontservers.py``) sends the bytes:

- nginx, a local file: ``X-Accel-Redirect: /_files/<path>``, served from an ``internal`` alias;
- nginx, an S3 object (moto): ``X-Accel-Redirect: /_reproxy`` and a presigned URL in
  ``X-Reproxy-URL``, which nginx proxies;
- lighttpd, a local file: ``X-Sendfile: <path>``, honoured by mod_proxy.

The front servers run the configurations the Scaling out page shows
(``docs/snippets/nginx_offload.conf`` and ``lighttpd_offload.conf``).

Each checks that the body is byte-exact (1 MiB and 64 MiB), that a range is 206 with the right
bytes, that a revalidation is 304, that the app's Content-Disposition and Cache-Control reach
the client once each, and that the app sent 0 body bytes: counted in the app itself (see
:class:`tests.e2e.offload_app.BodyCounter`) and, for nginx, read from its access log
(``$upstream_response_length`` of the app, and of the storage for an object).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.conftest import UvicornServer, running_uvicorn
from tests.e2e.frontservers import (
    FrontServer,
    NginxLogLine,
    documented_config,
    parse_nginx_log,
    running_lighttpd,
    running_nginx,
)
from tests.e2e.offload_app import MAX_AGE

CURL = shutil.which("curl")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.s3,
    pytest.mark.skipif(CURL is None, reason="curl is not installed (Debian: apt-get install curl)"),
]

MIB = 1024 * 1024
SIZES = {"small.bin": MIB, "large.bin": 64 * MIB}
#: Names that need percent-encoding on the way to the front server (served by StorageFiles).
#: "%20" on purpose: a front server that percent-decodes a raw name would open "a b".
ODD_NAMES = ("with space.bin", "50%20off 100%.bin", "ünï cødé 名前.bin", "hash#tag?.bin")
ODD_SIZE = 10_000
#: The S3 keys of the odd names.
ODD_PREFIX = "odd names/"
CURL_TIMEOUT = 60.0
#: How long nginx and the app may take to log a request curl has seen the end of.
LOG_DEADLINE = 5.0

#: The nginx configuration under test: the one the Scaling out page shows, inside
#: ``server { }`` (the launcher adds ``listen``), with this machine's paths and ports.
NGINX_CONFIG = "nginx_offload.conf"
#: The lighttpd configuration under test: the page's, after the launcher's own lines.
LIGHTTPD_CONFIG = "lighttpd_offload.conf"
#: What the page's configurations name, replaced by the test's own values.
DOC_FILES_DIR = "/srv/files"
DOC_MEDIA_DIR = "/srv/media"
DOC_APP_URL = "http://127.0.0.1:8000"
DOC_APP_PORT = '"port" => 8000,'
DOC_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class OffloadData:
    """The files on disk (and the same bytes in the bucket) the app serves."""

    root: Path
    bucket: str
    files: dict[str, bytes]


@dataclass(frozen=True)
class Fetched:
    """What curl got: the status, the header fields of the last response, the body file."""

    status: int
    fields: list[tuple[str, str]]
    body: Path

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.fields if key == name.lower()]

    def one(self, name: str) -> str:
        values = self.values(name)
        assert len(values) == 1, f"{name}: {values!r} in {self.fields!r}"
        return values[0]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def new_rid() -> str:
    """A request id: in the query, so the app's counter and nginx's log name the request."""
    return secrets.token_hex(6)


def curl(url: str, body: Path, *options: str) -> Fetched:
    """``curl`` ``url`` into ``body``; the header dump is parsed for the last response."""
    assert CURL is not None
    dump = body.with_name(body.name + ".headers")
    done = subprocess.run(
        [CURL, "-sS", "--noproxy", "*", "-D", str(dump), "-o", str(body), *options, url],
        capture_output=True,
        text=True,
        timeout=CURL_TIMEOUT,
    )
    assert done.returncode == 0, f"curl {url}: exit {done.returncode}: {done.stderr}"
    blocks = [b for b in dump.read_bytes().decode("latin-1").split("\r\n\r\n") if b.strip()]
    status_line, *lines = blocks[-1].split("\r\n")
    fields = []
    for line in lines:
        name, _, value = line.partition(":")
        fields.append((name.strip().lower(), value.strip()))
    if not body.exists():  # nothing written: a HEAD or a 304
        body.write_bytes(b"")
    return Fetched(int(status_line.split()[1]), fields, body)


def app_record(app: UvicornServer, rid: str) -> dict[str, Any]:
    """The app's own count of what it sent for request ``rid``, once it finished."""
    deadline = time.monotonic() + LOG_DEADLINE
    with httpx.Client(base_url=app.url, timeout=5.0, trust_env=False) as client:
        while True:
            answer = client.get("/stats", params={"rid": rid})
            record: dict[str, Any] | None = answer.json()
            if record is not None and record["complete"]:
                return record
            if time.monotonic() > deadline:
                pytest.fail(f"the app did not finish request {rid}: {record!r}")
            time.sleep(0.02)


def nginx_line(front: FrontServer, rid: str) -> NginxLogLine:
    """nginx's access-log line of request ``rid`` (nginx logs once the response is out)."""
    deadline = time.monotonic() + LOG_DEADLINE
    while True:
        lines = [line for line in parse_nginx_log(front.access_log) if f"rid={rid}" in line.uri]
        if lines:
            assert len(lines) == 1, lines
            return lines[0]
        if time.monotonic() > deadline:
            pytest.fail(f"no access-log line for {rid}:\n{front.access_log.read_text()}")
        time.sleep(0.02)


def app_fields(app: UvicornServer, path: str, method: str = "GET") -> httpx.Headers:
    """The app's own answer to ``path``, asked directly (not through the front server)."""
    with httpx.Client(base_url=app.url, timeout=10.0, trust_env=False) as client:
        answer = client.request(method, path)
    assert answer.status_code == 200, answer.text
    return answer.headers


def assert_app_sent_no_body(app: UvicornServer, rid: str) -> None:
    record = app_record(app, rid)
    assert record["status"] == 200
    assert record["body_bytes"] == 0, record
    assert record["other"] == [], record


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def offload_data(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> OffloadData:
    """1 MiB and 64 MiB of random bytes, and small files with odd names, on disk and in S3."""
    import boto3

    # Resolved: nginx's disable_symlinks refuses a root reached through a link.
    root = tmp_path_factory.mktemp("offload-files").resolve()
    files = {name: secrets.token_bytes(size) for name, size in SIZES.items()}
    files.update({name: secrets.token_bytes(ODD_SIZE) for name in ODD_NAMES})
    for name, data in files.items():
        (root / name).write_bytes(data)
    bucket = f"sendfs-offload-{secrets.token_hex(4)}"
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    for name in SIZES:
        client.put_object(Bucket=bucket, Key=name, Body=files[name])
    for name in ODD_NAMES:
        client.put_object(Bucket=bucket, Key=ODD_PREFIX + name, Body=files[name])
    return OffloadData(root=root, bucket=bucket, files=files)


@pytest.fixture(scope="module")
def offload_app(
    offload_data: OffloadData, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UvicornServer]:
    """uvicorn serving ``tests.e2e.offload_app`` on a free port of 127.0.0.1."""
    log = tmp_path_factory.mktemp("offload-app") / "uvicorn.log"
    env = {
        "SENDFS_OFFLOAD_ROOT": str(offload_data.root),
        "SENDFS_OFFLOAD_BUCKET": offload_data.bucket,
    }
    factory = "tests.e2e.offload_app:create_app"
    with running_uvicorn(factory, env, "SENDFS_OFFLOAD_TOKEN", log) as server:
        yield server


@pytest.fixture(scope="module")
def nginx(
    offload_data: OffloadData,
    offload_app: UvicornServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FrontServer]:
    import certifi

    locations = documented_config(
        NGINX_CONFIG,
        {
            DOC_FILES_DIR: str(offload_data.root),
            # Served by no route of the app: nginx must start with the location, that is all.
            DOC_MEDIA_DIR: str(tmp_path_factory.mktemp("offload-media")),
            DOC_APP_URL: offload_app.url,
            # Debian's bundle may be missing; the page's objects are reached over plain HTTP.
            DOC_CA_BUNDLE: certifi.where(),
        },
    )
    with running_nginx(tmp_path_factory.mktemp("nginx"), locations) as front:
        yield front


@pytest.fixture(scope="module")
def lighttpd(
    offload_data: OffloadData,
    offload_app: UvicornServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FrontServer]:
    port = offload_app.url.rsplit(":", 1)[1]
    config = documented_config(
        LIGHTTPD_CONFIG,
        {DOC_FILES_DIR: str(offload_data.root), DOC_APP_PORT: f'"port" => {port},'},
    )
    with running_lighttpd(tmp_path_factory.mktemp("lighttpd"), config) as front:
        yield front


# -- nginx, local files -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SIZES))
def test_nginx_sends_a_local_file(
    name: str,
    nginx: FrontServer,
    offload_app: UvicornServer,
    offload_data: OffloadData,
    tmp_path: Path,
) -> None:
    route = f"/nginx/local/{name}"
    own = app_fields(offload_app, route)
    assert own["x-accel-redirect"] == f"/_files/{name}"
    assert own["content-length"] == "0"
    rid = new_rid()

    got = curl(f"{nginx.url}{route}?rid={rid}", tmp_path / name)

    assert got.status == 200
    assert file_sha256(got.body) == sha256(offload_data.files[name])
    assert got.one("content-length") == str(SIZES[name])
    assert got.one("content-disposition") == own["content-disposition"]
    assert got.one("cache-control") == own["cache-control"] == f"public, max-age={MAX_AGE}"
    assert got.one("content-type") == own["content-type"]
    assert got.values("x-accel-redirect") == []
    assert_app_sent_no_body(offload_app, rid)
    line = nginx_line(nginx, rid)
    assert line.upstream_lengths == ["0"]  # the app, and no other upstream: nginx read the disk
    assert line.body_bytes_sent == SIZES[name]


@pytest.fixture(params=["nginx", "lighttpd"])
def front(request: pytest.FixtureRequest) -> tuple[str, FrontServer]:
    """Each front server in turn, with the prefix of its routes in the offload app."""
    kind = str(request.param)
    server: FrontServer = request.getfixturevalue(kind)
    return kind, server


def test_the_front_server_answers_a_range_of_a_local_file(
    front: tuple[str, FrontServer],
    offload_app: UvicornServer,
    offload_data: OffloadData,
    tmp_path: Path,
) -> None:
    kind, server = front
    rid = new_rid()
    url = f"{server.url}/{kind}/local/large.bin?rid={rid}"
    got = curl(url, tmp_path / "part", "-r", "1000-1999")

    assert got.status == 206
    assert got.one("content-range") == f"bytes 1000-1999/{SIZES['large.bin']}"
    assert got.body.read_bytes() == offload_data.files["large.bin"][1000:2000]
    assert_app_sent_no_body(offload_app, rid)


def test_the_front_server_revalidates_a_local_file(
    front: tuple[str, FrontServer], offload_app: UvicornServer, tmp_path: Path
) -> None:
    kind, server = front
    url = f"{server.url}/{kind}/local/small.bin"
    first = curl(url, tmp_path / "first", "-I")
    etag, modified = first.one("etag"), first.one("last-modified")

    rid = new_rid()
    by_etag = curl(f"{url}?rid={rid}", tmp_path / "etag", "-H", f"If-None-Match: {etag}")
    by_date = curl(url, tmp_path / "date", "-H", f"If-Modified-Since: {modified}")

    assert (by_etag.status, by_date.status) == (304, 304)
    assert by_etag.body.read_bytes() == b""
    assert_app_sent_no_body(offload_app, rid)
    if kind == "nginx":  # nginx sends its own validators and keeps the app's Cache-Control
        assert by_etag.one("etag") == etag
        assert by_etag.one("cache-control") == f"public, max-age={MAX_AGE}"


@pytest.mark.parametrize("name", ODD_NAMES)
def test_the_front_server_sends_odd_names_from_storage_files(
    name: str,
    front: tuple[str, FrontServer],
    offload_app: UvicornServer,
    offload_data: OffloadData,
    tmp_path: Path,
) -> None:
    kind, server = front
    route = f"/{kind}/files/{quote(name)}"
    rid = new_rid()
    got = curl(f"{server.url}{route}?rid={rid}", tmp_path / "body")

    assert got.status == 200
    assert got.body.read_bytes() == offload_data.files[name]
    assert got.one("content-disposition") == app_fields(offload_app, route)["content-disposition"]
    assert_app_sent_no_body(offload_app, rid)


@pytest.mark.parametrize("name", sorted(SIZES))
def test_nginx_proxies_an_s3_object(
    name: str,
    nginx: FrontServer,
    offload_app: UvicornServer,
    offload_data: OffloadData,
    tmp_path: Path,
) -> None:
    route = f"/nginx/s3/{name}"
    own = app_fields(offload_app, route)
    assert own["x-accel-redirect"] == "/_reproxy"
    assert own["x-reproxy-url"].startswith(os.environ["AWS_ENDPOINT_URL"])
    # The app's HEAD is answered by the app itself: its Content-Disposition is the reference.
    disposition = app_fields(offload_app, route, "HEAD")["content-disposition"]
    rid = new_rid()

    got = curl(f"{nginx.url}{route}?rid={rid}", tmp_path / name)

    assert got.status == 200
    assert file_sha256(got.body) == sha256(offload_data.files[name])
    assert got.one("content-disposition") == disposition  # from the presigned URL, once
    assert got.one("cache-control") == own["cache-control"]
    assert got.one("content-type") == own["content-type"]
    assert got.values("x-reproxy-url") == []
    assert got.values("x-accel-redirect") == []
    assert_app_sent_no_body(offload_app, rid)
    line = nginx_line(nginx, rid)
    # The app's body, then the storage's: nginx fetched the bytes from S3 itself.
    assert line.upstream_lengths == ["0", str(SIZES[name])]
    assert line.upstream_statuses == ["200", "200"]
    assert line.body_bytes_sent == SIZES[name]


def test_nginx_forwards_a_range_to_s3(
    nginx: FrontServer, offload_app: UvicornServer, offload_data: OffloadData, tmp_path: Path
) -> None:
    rid = new_rid()
    got = curl(f"{nginx.url}/nginx/s3/large.bin?rid={rid}", tmp_path / "part", "-r", "5000-5999")

    assert got.status == 206
    assert got.one("content-range") == f"bytes 5000-5999/{SIZES['large.bin']}"
    assert got.body.read_bytes() == offload_data.files["large.bin"][5000:6000]
    assert_app_sent_no_body(offload_app, rid)
    assert nginx_line(nginx, rid).upstream_lengths == ["0", "1000"]


def test_nginx_revalidates_an_s3_object(
    nginx: FrontServer, offload_app: UvicornServer, tmp_path: Path
) -> None:
    url = f"{nginx.url}/nginx/s3/small.bin"
    etag = curl(url, tmp_path / "first").one("etag")

    rid = new_rid()
    again = curl(f"{url}?rid={rid}", tmp_path / "again", "-H", f"If-None-Match: {etag}")

    assert again.status == 304
    assert again.body.read_bytes() == b""
    assert again.one("cache-control") == f"public, max-age={MAX_AGE}"
    assert_app_sent_no_body(offload_app, rid)
    assert nginx_line(nginx, rid).upstream_statuses == ["200", "304"]


def test_nginx_head_of_an_s3_object_is_answered_by_the_app(
    nginx: FrontServer, offload_app: UvicornServer, tmp_path: Path
) -> None:
    rid = new_rid()
    got = curl(f"{nginx.url}/nginx/s3/large.bin?rid={rid}", tmp_path / "head", "-I")

    assert got.status == 200
    assert got.one("content-length") == str(SIZES["large.bin"])
    assert got.one("content-disposition").startswith("attachment")
    assert got.values("x-reproxy-url") == []
    assert nginx_line(nginx, rid).upstream_lengths == ["0"]  # no trip to S3


@pytest.mark.parametrize("name", ODD_NAMES)
def test_nginx_proxies_odd_s3_keys(
    name: str,
    nginx: FrontServer,
    offload_app: UvicornServer,
    offload_data: OffloadData,
    tmp_path: Path,
) -> None:
    rid = new_rid()
    got = curl(f"{nginx.url}/nginx/s3/{quote(ODD_PREFIX + name)}?rid={rid}", tmp_path / "body")

    assert got.status == 200
    assert got.body.read_bytes() == offload_data.files[name]
    assert_app_sent_no_body(offload_app, rid)
    assert nginx_line(nginx, rid).upstream_lengths == ["0", str(ODD_SIZE)]


# -- lighttpd, X-Sendfile -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SIZES))
def test_lighttpd_sends_a_local_file(
    name: str,
    lighttpd: FrontServer,
    offload_app: UvicornServer,
    offload_data: OffloadData,
    tmp_path: Path,
) -> None:
    route = f"/lighttpd/local/{name}"
    own = app_fields(offload_app, route)
    assert own["x-sendfile"] == str(offload_data.root / name)
    assert own["content-length"] == "0"
    rid = new_rid()

    got = curl(f"{lighttpd.url}{route}?rid={rid}", tmp_path / name)

    assert got.status == 200
    assert file_sha256(got.body) == sha256(offload_data.files[name])
    assert got.one("content-length") == str(SIZES[name])
    assert got.one("content-disposition") == own["content-disposition"]
    assert got.one("cache-control") == own["cache-control"]
    assert got.values("x-sendfile") == []
    assert_app_sent_no_body(offload_app, rid)
