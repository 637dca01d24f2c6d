"""Real servers for the contract suite: one per face and server, on 127.0.0.1.

Each face's app (``tests/faces/apps``) runs under the server its users run it under: uvicorn
for the ASGI faces (Lilya, FastAPI, Litestar, Django's async views), gunicorn and waitress for
Flask, gunicorn for Django's sync views. Werkzeug's development server is not one of them.
Every server is started on a free port, waited for until ``/ping`` answers its own token,
and stopped by its PID.
"""

from __future__ import annotations

import gzip
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE = 30.0
STOP_DEADLINE = 10.0
BIG_SIZE = 3 * 1024 * 1024
TEXT = "contract: héllo, faces\n" * 20
#: A file in a subdirectory, its names with a space and non-ASCII letters (percent-encoded in
#: URLs and in the offload headers).
NESTED = "sub dir/ré sumé.txt"


#: Where a server's command takes its address: replaced by :func:`_bind`'s arguments.
BIND = "{bind}"


def _uvicorn(target: str, *, factory: bool = True) -> list[str]:
    return [
        *(sys.executable, "-m", "uvicorn", *(["--factory"] if factory else [])),
        *("--no-access-log", BIND, target),
    ]


def _gunicorn(target: str) -> list[str]:
    # gthread: a few requests at once in one worker; no control socket, which gunicorn 27
    # shares at ~/.gunicorn between every server of the user.
    return [
        *(sys.executable, "-m", "gunicorn", "--worker-class", "gthread", "--threads", "8"),
        *("--no-control-socket", BIND, target),
    ]


#: face and server -> (app module, the command with :data:`BIND` where the address goes, kind).
SERVERS: dict[str, tuple[str, list[str], str]] = {
    "lilya-uvicorn": ("lilya_app", _uvicorn("tests.faces.apps.lilya_app:create_app"), "uvicorn"),
    "fastapi-uvicorn": (
        "fastapi_app",
        _uvicorn("tests.faces.apps.fastapi_app:create_app"),
        "uvicorn",
    ),
    "litestar-uvicorn": (
        "litestar_app",
        _uvicorn("tests.faces.apps.litestar_app:create_app"),
        "uvicorn",
    ),
    "flask-gunicorn": (
        "flask_app",
        _gunicorn("tests.faces.apps.flask_app:create_app()"),
        "gunicorn",
    ),
    "flask-waitress": (
        "flask_app",
        # waitress reads options up to the first argument: the address before --call.
        [
            *(sys.executable, "-m", "waitress", "--threads=8", BIND),
            *("--call", "tests.faces.apps.flask_app:create_app"),
        ],
        "waitress",
    ),
    "django-gunicorn": (
        "django_app",
        _gunicorn("tests.faces.apps.django_app.wsgi:application"),
        "gunicorn",
    ),
    "django-uvicorn": (
        "django_app",
        _uvicorn("tests.faces.apps.django_app.asgi:application", factory=False),
        "uvicorn",
    ),
}


def _bind(kind: str, port: int) -> list[str]:
    if kind == "uvicorn":
        return ["--host", "127.0.0.1", "--port", str(port)]
    if kind == "gunicorn":
        return ["--bind", f"127.0.0.1:{port}"]
    return [f"--listen=127.0.0.1:{port}"]


def _command(face: str, port: int) -> list[str]:
    _, template, kind = SERVERS[face]
    command: list[str] = []
    for part in template:
        command.extend(_bind(kind, port) if part == BIND else [part])
    return command


@dataclass(frozen=True)
class FacesData:
    """What every contract server serves: the local files, the bucket, the bytes.

    ``gz`` and ``br`` are the precompressed siblings ``text.txt.gz`` and ``text.txt.br``:
    bytes of their own (the server never decodes them), so a test tells which one came.
    """

    root: Path
    bucket: str
    big: bytes
    text: bytes
    azure: str
    container: str
    gz: bytes
    br: bytes


@dataclass
class FaceServer:
    """A running server of one face."""

    face: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL after :data:`STOP_DEADLINE`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_DEADLINE)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="session")
def faces_data(
    tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str, azurite: Any
) -> FacesData:
    """The files on disk, in a fresh bucket and container.

    3 MiB of random bytes (``big.bin``) and a text (``text.txt``) everywhere; on disk also the
    text's precompressed siblings and a copy of it at :data:`NESTED`.
    """
    import boto3
    from azure.storage.blob import BlobServiceClient

    root = tmp_path_factory.mktemp("faces-files")
    big = secrets.token_bytes(BIG_SIZE)
    text = TEXT.encode("utf-8")
    (root / "big.bin").write_bytes(big)
    (root / "text.txt").write_bytes(text)
    gz = gzip.compress(text, mtime=0)
    # Not Brotli: any bytes do, the server sends them as they are.
    br = b"sendfs-faces-br:" + secrets.token_bytes(64)
    (root / "text.txt.gz").write_bytes(gz)
    (root / "text.txt.br").write_bytes(br)
    (root / NESTED).parent.mkdir()
    (root / NESTED).write_bytes(text)
    bucket = f"sendfs-faces-{secrets.token_hex(4)}"
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="big.bin", Body=big)
    client.put_object(Bucket=bucket, Key="text.txt", Body=text)
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.create_container(bucket)
    container.upload_blob("big.bin", big)
    return FacesData(root, bucket, big, text, azurite.connection_string, bucket, gz, br)


def _start(face: str, data: FacesData, log: Path) -> FaceServer:
    token = secrets.token_hex(8)
    for _ in range(3):
        port = free_port()
        env: dict[str, Any] = {
            **os.environ,  # the moto endpoint and its fake credentials
            "SENDFS_FACES_ROOT": str(data.root),
            "SENDFS_FACES_BUCKET": data.bucket,
            "SENDFS_FACES_TOKEN": token,
            "SENDFS_FACES_AZURE": data.azure,
            "SENDFS_FACES_CONTAINER": data.container,
            "PYTHONUNBUFFERED": "1",
        }
        with log.open("wb") as output:
            process = subprocess.Popen(
                _command(face, port),
                cwd=PROJECT_ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        server = FaceServer(face, f"http://127.0.0.1:{port}", process, log)
        if _ready(server, token):
            return server
        server.stop()
        if "address already in use" not in server.log_text().lower():
            break
    pytest.fail(f"{face} did not start:\n{server.log_text()}")


def _ready(server: FaceServer, token: str) -> bool:
    deadline = time.monotonic() + STARTUP_DEADLINE
    with httpx.Client(base_url=server.url, timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                return False
            try:
                if client.get("/ping").text == token:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    return False


@pytest.fixture(scope="module", params=sorted(SERVERS))
def face_server(
    request: pytest.FixtureRequest,
    faces_data: FacesData,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FaceServer]:
    """Each face under each of its servers, in turn."""
    face = str(request.param)
    log = tmp_path_factory.mktemp(f"faces-{face}") / "server.log"
    server = _start(face, faces_data, log)
    try:
        yield server
    finally:
        server.stop()
