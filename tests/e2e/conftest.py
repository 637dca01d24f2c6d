"""A real uvicorn server in a subprocess, serving ``tests.e2e.app`` on 127.0.0.1.

The module-scoped ``uvicorn_server`` fixture writes the test files, puts the S3 object into the
moto server, starts ``python -m uvicorn --factory tests.e2e.app:create_app`` and stops it by
its PID afterwards. ``start_uvicorn`` starts extra servers a test wants to stop itself.
``large_local`` and ``medium_s3`` add bigger payloads (32 MiB on disk, 8 MiB in the bucket) for
the download-manager and resume tests.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.app import BIG_NAME, LARGE_NAME, TEXT_NAME

#: /work/main: uvicorn imports ``tests.e2e.app`` from here.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
BIG_SIZE = 3 * 1024 * 1024
TEXT_CONTENT = "héllo, sendfs\n" * 10
S3_KEY = f"dir/{BIG_NAME}"
STARTUP_DEADLINE = 20.0
STOP_DEADLINE = 5.0
START_ATTEMPTS = 3
LARGE_SIZE = 32 * 1024 * 1024
MEDIUM_SIZE = 8 * 1024 * 1024
MEDIUM_S3_KEY = "dir/medium.bin"


@dataclass(frozen=True)
class E2EData:
    """What the server serves: the local directory, the bucket, and the expected bytes."""

    root: Path
    bucket: str
    big: bytes
    text: bytes

    @property
    def big_sha256(self) -> str:
        return hashlib.sha256(self.big).hexdigest()


@dataclass(frozen=True)
class Payload:
    """One more file the server serves: its route (from the server's root URL) and its bytes."""

    route: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class UvicornServer:
    """A running ``uvicorn`` process; ``stop()`` may be called more than once."""

    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> int:
        """SIGTERM by PID, wait, SIGKILL after STOP_DEADLINE; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_DEADLINE)
        return self.process.returncode

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def e2e_data(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> E2EData:
    """The local test files (3 MiB of random bytes, a small text) and the S3 object."""
    import boto3

    root = tmp_path_factory.mktemp("e2e-files")
    big = secrets.token_bytes(BIG_SIZE)
    text = TEXT_CONTENT.encode("utf-8")
    (root / BIG_NAME).write_bytes(big)
    (root / TEXT_NAME).write_bytes(text)
    bucket = f"sendfs-e2e-{secrets.token_hex(4)}"
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key=S3_KEY, Body=big)
    return E2EData(root=root, bucket=bucket, big=big, text=text)


def _ready(server: UvicornServer, token: str) -> bool:
    """Poll ``/ping`` until it answers ``token``; False if uvicorn exited (e.g. port taken).

    The token proves the answer comes from this process, not from another server that took
    the port between ``free_port()`` and uvicorn's bind.
    """
    deadline = time.monotonic() + STARTUP_DEADLINE
    with httpx.Client(base_url=server.url, timeout=1.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                return False
            try:
                if client.get("/ping").text == token:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    server.stop()
    pytest.fail(f"uvicorn did not answer within {STARTUP_DEADLINE} s:\n{server.log_text()}")


def _spawn(
    factory: str, env: Mapping[str, str], token_variable: str, token: str, log: Path, http: str
) -> UvicornServer:
    port = free_port()
    command = [
        *(sys.executable, "-m", "uvicorn", "--factory", factory),
        *("--host", "127.0.0.1", "--port", str(port), "--http", http, "--no-access-log"),
        *("--lifespan", "on", "--timeout-graceful-shutdown", "3"),
    ]
    full_env = {
        **os.environ,  # AWS_ENDPOINT_URL and the fake credentials of the moto fixture
        **env,
        token_variable: token,
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=full_env, stdout=log_file, stderr=subprocess.STDOUT
        )
    return UvicornServer(url=f"http://127.0.0.1:{port}", log=log, process=process)


@contextmanager
def running_uvicorn(
    factory: str, env: Mapping[str, str], token_variable: str, log: Path, http: str = "auto"
) -> Iterator[UvicornServer]:
    """Start an app factory under uvicorn on a free port of 127.0.0.1; stop it afterwards.

    The app answers ``GET /ping`` with the token it reads from ``token_variable``, which tells
    it from another process on the port. A port taken meanwhile is retried with another.

    Args:
        factory: The ``module:function`` that makes the app.
        env: The app's settings (besides this process's environment).
        token_variable: The variable the app reads its token from.
        log: Where uvicorn's output goes.
        http: uvicorn's ``--http``.
    """
    token = secrets.token_hex(8)
    for _ in range(START_ATTEMPTS):
        server = _spawn(factory, env, token_variable, token, log, http)
        if _ready(server, token):
            break
        if "address already in use" not in server.log_text().lower():
            pytest.fail(f"uvicorn exited with {server.process.returncode}:\n{server.log_text()}")
    else:
        pytest.fail(f"no free port after {START_ATTEMPTS} attempts:\n{server.log_text()}")
    try:
        yield server
    finally:
        server.stop()


def _run_uvicorn(
    data: E2EData, log: Path, http: str = "auto"
) -> AbstractContextManager[UvicornServer]:
    """``tests.e2e.app`` under uvicorn (see :func:`running_uvicorn`)."""
    env = {"SENDFS_E2E_ROOT": str(data.root), "SENDFS_E2E_BUCKET": data.bucket}
    return running_uvicorn("tests.e2e.app:create_app", env, "SENDFS_E2E_TOKEN", log, http)


@pytest.fixture(scope="module", params=["h11", "httptools"])
def uvicorn_server(
    request: pytest.FixtureRequest, e2e_data: E2EData, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UvicornServer]:
    """A uvicorn server per HTTP implementation, shared by the module; ready when yielded.

    h11 checks the framing the app sends (a body shorter or longer than its Content-Length is
    an error on the server side); httptools is what ``uvicorn[standard]`` runs in production.
    """
    http = str(request.param)
    if importlib.util.find_spec(http) is None:
        pytest.skip(f"uvicorn's {http} implementation needs the {http} package")
    log = tmp_path_factory.mktemp(f"e2e-log-{http}") / "uvicorn.log"
    with _run_uvicorn(e2e_data, log, http) as server:
        yield server


@pytest.fixture
def start_uvicorn(
    e2e_data: E2EData, tmp_path: Path
) -> Callable[[], AbstractContextManager[UvicornServer]]:
    """A factory of extra servers, for tests that stop the server themselves."""

    def start() -> AbstractContextManager[UvicornServer]:
        return _run_uvicorn(e2e_data, tmp_path / f"uvicorn-{secrets.token_hex(3)}.log")

    return start


@pytest.fixture(scope="module")
def large_local(e2e_data: E2EData) -> Payload:
    """32 MiB of random bytes behind ``/large/large.bin`` (written while the server may run)."""
    data = secrets.token_bytes(LARGE_SIZE)
    (e2e_data.root / LARGE_NAME).write_bytes(data)
    return Payload(route=f"/large/{LARGE_NAME}", data=data)


def put_s3_payload(data: E2EData, moto_endpoint: str, key: str, size: int) -> Payload:
    """``size`` random bytes put in the e2e bucket under ``key``, behind ``/s3/<key>``."""
    import boto3

    body = secrets.token_bytes(size)
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.put_object(Bucket=data.bucket, Key=key, Body=body)
    return Payload(route=f"/s3/{key}", data=body)


@pytest.fixture(scope="module")
def medium_s3(e2e_data: E2EData, moto_endpoint: str) -> Payload:
    """8 MiB of random bytes in the e2e bucket, behind ``/s3/dir/medium.bin``."""
    return put_s3_payload(e2e_data, moto_endpoint, MEDIUM_S3_KEY, MEDIUM_SIZE)
