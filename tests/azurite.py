"""The Azurite blob emulator on 127.0.0.1, installed from the npm registry once per machine.

Azurite is installed into ``~/.cache/sendfs-tests/azurite`` (``AZURITE_HOME`` overrides it) by
``.ci/run`` or, failing that, on first use. Without Node.js the Azure tests are skipped, except
under CI (``CI=true``), where that is a failure: they must run there.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

#: The version the tests run against (``.ci/run`` installs the same).
AZURITE_VERSION = "3.37.0"
#: Azurite's well-known development account: public, documented, accepted only by emulators.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
START_TIMEOUT = 60


@dataclass(frozen=True)
class Azurite:
    """A running Azurite blob service."""

    endpoint: str
    pid: int

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.endpoint};"
        )


def azurite_home() -> Path:
    return Path(os.environ.get("AZURITE_HOME", Path.home() / ".cache" / "sendfs-tests" / "azurite"))


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the Azure tests must run in CI: {reason}")
    pytest.skip(reason)


def azurite_binary() -> Path:
    """The ``azurite-blob`` script, installing Azurite with npm if needed (skips without Node)."""
    binary = azurite_home() / "node_modules" / ".bin" / "azurite-blob"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        _unavailable("Node.js and npm are needed to run the Azurite emulator")
    home = azurite_home()
    home.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(home),
            f"azurite@{AZURITE_VERSION}",
            "--no-audit",
            "--no-fund",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0 or not binary.exists():
        _unavailable(f"npm could not install azurite: {done.stderr[-500:]}")
    return binary


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def running_azurite(port: int, workdir: Path) -> Iterator[Azurite]:
    """Start the blob service on 127.0.0.1:``port`` with its data in ``workdir``; stop it after."""
    binary = azurite_binary()
    log = (workdir / "azurite.log").open("wb")
    process = subprocess.Popen(
        [
            str(binary),
            *("--blobHost", "127.0.0.1", "--blobPort", str(port)),
            *("--location", str(workdir), "--silent", "--skipApiVersionCheck", "--loose"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Azurite did not start: see {workdir / 'azurite.log'}")
            time.sleep(0.1)
        yield Azurite(f"http://127.0.0.1:{port}/{ACCOUNT}", process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
