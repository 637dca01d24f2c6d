"""S3 sections: 2 (sendfs vs the hand-written relay), the S3 half of 9 (RSS and ``/ping``
under concurrent downloads, issue 5's targets), 10 (S3 requests per response, issue 5's).

The object lives on a moto server in a process of its own; every client (the servers, boto3
here) reaches it through ``AWS_ENDPOINT_URL`` with fake credentials. The relay is what a user
writes without sendfs: Starlette's ``StreamingResponse`` over aiobotocore ``get_object`` +
``Body.iter_chunks(1 MiB)`` (``benchmarks.apps.starlette_app``), under the same uvicorn.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.data import MIB, DataFiles, read_prefix
from benchmarks.local import cpu_cell, metered, speed_cell
from benchmarks.measure import CPU_PER_GIB, MB_PER_S, curl_download
from benchmarks.report import Row, verdict
from benchmarks.rounds import Sample, Settings, alternate
from benchmarks.servers import Server, Servers
from benchmarks.underload import describe_load, fresh_uvicorn, load_rows, under_load

__all__ = ["S3Object", "prepare_s3", "s3_load", "s3_requests", "s3_throughput"]

Progress = Callable[[str], None]

#: Fake credentials: moto accepts anything, and real ones must never be used here.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
SENDFS = "uvicorn: sendfs send_file"
RELAY = (
    "uvicorn: hand-written relay (Starlette StreamingResponse over aiobotocore get_object +"
    " Body.iter_chunks(1 MiB))"
)
MOTO = "curl straight from moto (reference)"
#: sendfs against the relay: MB/s at least, CPU at most, these ratios.
SPEEDUP, CPU_RATIO = 1.0, 1.0
#: Issue 5's RSS target for S3 downloads.
RSS_TARGET = 64.0
SECTION_REQUESTS = "10 S3 requests"


@dataclass(frozen=True)
class S3Object:
    """The benchmark object on the moto server."""

    moto: Server
    bucket: str
    key: str
    size: int
    #: A presigned GET URL, for curl straight from moto (anonymous requests get 403).
    presigned: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def prepare_s3(servers: Servers, files: DataFiles, settings: Settings) -> S3Object:
    """Start moto, point this process and every server started later at it, upload the object."""
    import boto3

    moto = servers.moto()
    os.environ.update(FAKE_AWS_ENV)
    os.environ["AWS_ENDPOINT_URL"] = moto.url
    os.environ.pop("AWS_PROFILE", None)
    bucket, key = f"sendfs-bench-{secrets.token_hex(4)}", f"big-{settings.s3_size // MIB}MiB.bin"
    client = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key=key, Body=read_prefix(files.big, settings.s3_size))
    presigned = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=24 * 3600
    )
    s3_object = S3Object(moto, bucket, key, settings.s3_size, presigned)
    servers.env["SENDFS_BENCH_S3"] = s3_object.url
    return s3_object


def _from_moto(s3_object: S3Object) -> Callable[[], Sample]:
    return lambda: {MB_PER_S: curl_download(s3_object.presigned, s3_object.size).mb_per_s}


def s3_throughput(
    servers: Servers, s3_object: S3Object, settings: Settings, progress: Progress
) -> list[Row]:
    """2. sendfs vs the hand-written relay under the same uvicorn, and curl straight from moto."""
    size = s3_object.size
    started = [
        servers.uvicorn("sendfs_app", name="uvicorn-sendfs-s3"),
        servers.uvicorn("starlette_app", name="uvicorn-relay-s3"),
    ]
    try:
        contenders = {
            SENDFS: metered(started[0], "/s3", size),
            RELAY: metered(started[1], "/s3", size),
            MOTO: _from_moto(s3_object),
        }
        results = alternate(contenders, settings.rounds, progress)
    finally:
        for server in started:
            servers.stop(server)
    section = f"2 S3 {size // MIB} MiB"
    sendfs, relay = results[SENDFS], results[RELAY]
    speedup = sendfs[MB_PER_S].ratio(relay[MB_PER_S])
    cpu_ratio = sendfs[CPU_PER_GIB].ratio(relay[CPU_PER_GIB])
    return [
        Row(
            section,
            SENDFS,
            speed_cell(sendfs[MB_PER_S], relay[MB_PER_S], "relay"),
            cpu_cell(sendfs[CPU_PER_GIB], relay[CPU_PER_GIB], "relay"),
            f">= {SPEEDUP:g}x relay MB/s; CPU <= {CPU_RATIO:g}x relay's",
            verdict({"MB/s": speedup >= SPEEDUP, "CPU": cpu_ratio <= CPU_RATIO}),
        ),
        Row(section, RELAY, speed_cell(relay[MB_PER_S]), cpu_cell(relay[CPU_PER_GIB])),
        Row(section, MOTO, speed_cell(results[MOTO][MB_PER_S])),
    ]


def s3_load(
    servers: Servers, s3_object: S3Object, settings: Settings, progress: Progress
) -> list[Row]:
    """9 (S3). RSS growth and ``/ping`` p99 of fresh servers under concurrent S3 downloads."""
    size = s3_object.size
    contenders = {
        SENDFS: under_load(servers, fresh_uvicorn(servers, "sendfs_app"), "/s3", size, settings),
        RELAY: under_load(servers, fresh_uvicorn(servers, "starlette_app"), "/s3", size, settings),
    }
    results = alternate(contenders, settings.rounds, progress, warm_up=False)
    return load_rows(
        "9 under load",
        describe_load(settings, size, "S3"),
        results,
        SENDFS,
        RSS_TARGET,
        None,
        " (issue 5)",
    )


def _request(
    server: Server, method: str, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], int]:
    """One request on a fresh connection; the status, the headers, and the body's length."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        length = 0
        while chunk := response.read(MIB):
            length += len(chunk)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, length
    finally:
        connection.close()


def _stats(server: Server, method: str = "GET") -> dict[str, Any]:
    """The server's S3 counters (``POST`` resets them first)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, "/_stats")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"/_stats answered {response.status}: {body[:200]!r}")
        stats: dict[str, Any] = json.loads(body)
        return stats
    finally:
        connection.close()


def _counted(server: Server, method: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Reset the counters, make one request to ``/s3``; its status and the S3 traffic it caused."""
    _stats(server, "POST")
    status, _, _ = _request(server, method, "/s3", headers)
    return status, _stats(server)


def _describe(status: int, stats: dict[str, Any]) -> tuple[int, str]:
    requests: dict[str, int] = stats["requests"]
    total = sum(requests.values())
    parts = ", ".join(f"{name} {count}" for name, count in sorted(requests.items()))
    return total, f"{total} ({parts or 'none'}; HTTP {status})"


@dataclass(frozen=True)
class _Case:
    label: str
    method: str
    headers: dict[str, str]
    status: int
    limit: int


def _request_cases(etag: str) -> list[_Case]:
    one_mib = {"Range": f"bytes={MIB}-{2 * MIB - 1}"}
    return [
        _Case("full GET", "GET", {}, 200, 2),
        _Case("single range GET (1 MiB)", "GET", one_mib, 206, 2),
        _Case("HEAD", "HEAD", {}, 200, 1),
        _Case("304 (If-None-Match)", "GET", {"If-None-Match": etag}, 304, 1),
    ]


def s3_requests(servers: Servers, s3_object: S3Object, progress: Progress) -> list[Row]:
    """10. S3 requests per response, counted by botocore hooks in the server; 1-byte range bytes."""
    servers.env["SENDFS_BENCH_S3_STATS"] = "1"
    try:
        server = servers.uvicorn("sendfs_app", name="uvicorn-sendfs-s3-stats")
    finally:
        servers.env.pop("SENDFS_BENCH_S3_STATS")
    rows = []
    try:
        _, head, _ = _request(server, "HEAD", "/s3", {})  # warm-up; and the ETag for the 304
        etag = head.get("etag", '"none"')
        for case in _request_cases(etag):
            status, stats = _counted(server, case.method, case.headers)
            total, result = _describe(status, stats)
            progress(f"S3 requests, {case.label}: {result}")
            ok = total <= case.limit and status == case.status
            rows.append(
                Row(
                    SECTION_REQUESTS,
                    f"S3 requests per response: {case.label}",
                    result,
                    target=f"<= {case.limit}"
                    + (" (stretch: 1)" if case.limit > 1 else "")
                    + " (issue 5)",
                    verdict=verdict(ok),
                )
            )
        status, stats = _counted(server, "GET", {"Range": "bytes=1000-1000"})
        pulled = int(stats["get_bytes"])
        rows.append(
            Row(
                SECTION_REQUESTS,
                f"bytes pulled from S3 for a 1-byte range of {s3_object.size // MIB} MiB",
                f"{pulled} B (HTTP {status})",
                target="< 1 MiB (issue 5)",
                verdict=verdict(pulled < MIB and status == 206),
            )
        )
    finally:
        servers.stop(server)
    return rows
