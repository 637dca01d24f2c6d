"""Shared fixtures: the anyio backend, a moto S3 server on 127.0.0.1, and registries."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

# Hypothesis imports its optimiser lazily, in the middle of a test, where pytest rewrites and
# compiles it; on CPython 3.11.7 compiling at that stack depth can fail with "SystemError: AST
# constructor recursion depth mismatch" (an interpreter bug). Importing it here, at collection,
# compiles it at a shallow depth once.
import hypothesis.internal.conjecture.optimiser  # noqa: F401
import pytest

from sendfs.storages import StorageRegistry

#: Fake credentials: moto accepts anything, and real ones must never be used by tests.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    # s3fs and aiobotocore are asyncio-only, so the suite runs on asyncio.
    return "asyncio"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3 HTTP endpoint: moto's ThreadedMotoServer on 127.0.0.1.

    The process environment points every AWS client (s3fs in this process, servers started
    by e2e tests) at it with fake credentials, so ``s3://bucket/key`` works as it would for a
    user with ``AWS_ENDPOINT_URL`` set.
    """
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {key: os.environ.get(key) for key in [*FAKE_AWS_ENV, "AWS_ENDPOINT_URL", "AWS_PROFILE"]}
    os.environ.update(FAKE_AWS_ENV)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield endpoint
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The Azurite blob emulator on 127.0.0.1 (skipped without Node.js, except in CI)."""
    from tests.azurite import running_azurite

    with running_azurite(free_port(), tmp_path_factory.mktemp("azurite")) as service:
        yield service


@pytest.fixture
def s3_client(moto_endpoint: str) -> Any:
    """A plain boto3 client for arranging test objects (not the code under test)."""
    import boto3

    return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(s3_client: Any) -> str:
    """A fresh, empty bucket."""
    name = f"sendfs-{secrets.token_hex(6)}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
async def storage_registry() -> AsyncIterator[StorageRegistry]:
    """A fresh registry whose async sessions are closed after the test."""
    reg = StorageRegistry()
    try:
        yield reg
    finally:
        await reg.aclose()


@pytest.fixture
def registry(storage_registry: StorageRegistry) -> StorageRegistry:
    """:func:`storage_registry` under the name most tests give it."""
    return storage_registry
