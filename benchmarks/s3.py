"""S3 sections: 2 (throughput vs raw aiobotocore), 3 (RSS, S3 part), 4 (requests per response).

The object lives on a moto server in a process of its own; every client (the sendfs server,
the raw reader, boto3 here) reaches it through ``AWS_ENDPOINT_URL`` with fake credentials.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.data import MIB, DataFiles, read_prefix
from benchmarks.local import concurrent_load
from benchmarks.measure import curl_download, rss_growth
from benchmarks.report import Row, verdict
from benchmarks.rounds import Settings, alternate
from benchmarks.servers import Server, Servers

__all__ = ["S3Object", "prepare_s3", "rss_s3", "s3_requests", "s3_throughput"]

Progress = Callable[[str], None]

#: Fake credentials: moto accepts anything, and real ones must never be used here.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
RAW_TIMEOUT = 300.0


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


def _raw_reader(s3_object: S3Object) -> Callable[[], float]:
    def read() -> float:
        command = [sys.executable, "-m", "benchmarks.s3_raw", s3_object.bucket, s3_object.key]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=RAW_TIMEOUT, check=True
        )
        result = json.loads(done.stdout)
        if result["bytes"] != s3_object.size:
            raise RuntimeError(f"raw reader got {result['bytes']} bytes of {s3_object.size}")
        return float(result["bytes"]) / float(result["seconds"]) / 1e6

    return read


def s3_throughput(
    servers: Servers, s3_object: S3Object, settings: Settings, progress: Progress
) -> list[Row]:
    """2. sendfs streaming the object to curl vs raw aiobotocore vs curl straight from moto."""
    size = s3_object.size
    server = servers.uvicorn("sendfs_app", name="uvicorn-sendfs-s3")
    try:
        contenders = {
            "sendfs send_file (uvicorn) to curl": lambda: (
                curl_download(server.url + "/s3", size).mb_per_s
            ),
            "raw aiobotocore get_object + iter_chunks(1 MiB)": _raw_reader(s3_object),
            "curl straight from moto (reference)": lambda: (
                curl_download(s3_object.presigned, size).mb_per_s
            ),
        }
        results = alternate(contenders, settings.rounds, progress)
    finally:
        servers.stop(server)
    section = f"2 S3 {size // MIB} MiB"
    names = list(results)
    sendfs, raw = results[names[0]], results[names[1]]
    ratio = sendfs.ratio(raw)
    return [
        Row(
            section,
            names[0],
            f"{sendfs.show('MB/s')}, {ratio:.2f}x raw",
            ">= 0.9x raw aiobotocore",
            verdict(ratio >= 0.9),
        ),
        *(Row(section, name, results[name].show("MB/s")) for name in names[1:]),
    ]


def rss_s3(
    servers: Servers, s3_object: S3Object, settings: Settings, progress: Progress
) -> list[Row]:
    """3 (S3). Peak RSS growth of a fresh sendfs server during concurrent S3 downloads."""
    server = servers.uvicorn("sendfs_app", name="uvicorn-sendfs-rss-s3")
    try:
        url, size, count = server.url + "/s3", s3_object.size, settings.concurrency
        growth = rss_growth(
            server.pid, lambda: curl_download(url, size), concurrent_load(url, count, size)
        )
    finally:
        servers.stop(server)
    progress(f"RSS S3: {growth.show()}")
    return [
        Row(
            "3 memory",
            f"RSS growth, {count} x {size // MIB} MiB S3 (uvicorn, sendfs)",
            growth.show(),
            "< 64 MiB",
            verdict(growth.mib < 64),
        )
    ]


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
    """4. S3 requests per response, counted by botocore hooks in the server; 1-byte range bytes."""
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
                    "4 S3 requests",
                    f"S3 requests per response: {case.label}",
                    result,
                    f"<= {case.limit}" + (" (stretch: 1)" if case.limit > 1 else ""),
                    verdict(ok),
                )
            )
        status, stats = _counted(server, "GET", {"Range": "bytes=1000-1000"})
        pulled = int(stats["get_bytes"])
        rows.append(
            Row(
                "4 S3 requests",
                f"bytes pulled from S3 for a 1-byte range of {s3_object.size // MIB} MiB",
                f"{pulled} B (HTTP {status})",
                "< 1 MiB",
                verdict(pulled < MIB and status == 206),
            )
        )
    finally:
        servers.stop(server)
    return rows
