"""``sendfs serve`` as a user runs it: a real process, a real port, real HTTP, Ctrl-C to stop.

Every process is started with a bounded wait and killed by its PID in ``finally``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sendfs.__about__ import __version__
from sendfs.cli import _bind
from tests.conftest import free_port

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 20.0
EXIT_TIMEOUT = 20.0
ERROR_TIMEOUT = 60.0

PAGE = b"served by the command line\x00\xff\r\n"


@dataclass
class Server:
    """A running ``sendfs serve`` process."""

    process: subprocess.Popen[bytes]
    port: int
    banner: str
    stderr: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as a user would; the exit code and what was written to stderr."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=EXIT_TIMEOUT)
        return code, self.stderr.read_text()


def sendfs_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "sendfs", *args]


def _wait_for_banner(process: subprocess.Popen[bytes], stdout: Path) -> str | None:
    """The "serving" line, or ``None`` when the process exited first."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        for line in stdout.read_text().splitlines():
            if line.startswith("sendfs: serving "):
                return line
        if process.poll() is not None:
            return None
        time.sleep(0.05)
    pytest.fail(f"sendfs serve printed no banner in {STARTUP_TIMEOUT} s")


@contextmanager
def serving(
    tmp_path: Path,
    source: str | None,
    *options: str,
    env: Any = None,
    launcher: list[str] | None = None,
    cwd: Path = PROJECT,
) -> Iterator[Server]:
    """Start ``sendfs serve SOURCE --port P OPTIONS...`` in ``cwd`` and wait for its banner.

    ``launcher`` replaces ``python -m sendfs serve`` (``./dev serve``); a ``None`` source is
    left out. A port found free can be taken by another process before the server binds it
    (other test runs share the machine): only then is the start retried, on another port.
    """
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    start = launcher if launcher is not None else sendfs_command("serve")
    for _ in range(3):
        port = free_port()
        command = [*start, *([source] if source is not None else []), "--port", str(port)]
        command += options
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err, env=env)
        try:
            banner = _wait_for_banner(process, stdout)
            if banner is not None:
                yield Server(process, port, banner, stderr)
                return
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=EXIT_TIMEOUT)
        if "Address already in use" not in stderr.read_text():
            break
    pytest.fail(f"sendfs serve exited with {process.returncode}: {stderr.read_text()}")


def http_client() -> httpx.Client:
    # trust_env=False: a proxy from the environment must not sit between us and 127.0.0.1.
    return httpx.Client(trust_env=False, timeout=10.0)


def run_sendfs(*args: str, env: Any = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        sendfs_command(*args),
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=ERROR_TIMEOUT,
        env=env,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sendfs: error: "), result.stderr
    assert result.stdout == ""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "page.txt").write_bytes(PAGE)
    (root / "a b.bin").write_bytes(b"spaced")
    return root


# -- serving ---------------------------------------------------------------------------------


def test_serve_directory_serves_files_and_listing_then_stops_cleanly_on_ctrl_c(
    tmp_path: Path, site: Path
) -> None:
    with serving(tmp_path, str(site), "--listing") as server:
        assert server.banner == (
            f"sendfs: serving {site} at http://127.0.0.1:{server.port}/ (Ctrl-C stops)"
        )
        with http_client() as client:
            page = client.get(f"{server.url}docs/page.txt")
            spaced = client.get(f"{server.url}a%20b.bin")
            ranged = client.get(f"{server.url}docs/page.txt", headers={"Range": "bytes=0-5"})
            listing = client.get(server.url)
            traversal = client.get(f"{server.url}..%2f..%2fetc/passwd")
        code, stderr = server.stop()
    assert page.status_code == 200
    assert page.content == PAGE
    assert page.headers["content-length"] == str(len(PAGE))
    assert spaced.content == b"spaced"
    assert ranged.status_code == 206
    assert ranged.content == PAGE[:6]
    assert listing.status_code == 200
    assert listing.headers["content-type"] == "text/html; charset=utf-8"
    assert '<a href="docs/">docs/</a>' in listing.text
    assert '<a href="a%20b.bin">a b.bin</a>' in listing.text
    assert traversal.status_code == 404
    assert code == 0
    assert "Traceback" not in stderr


def test_serve_relative_directory_prints_its_absolute_path(tmp_path: Path, site: Path) -> None:
    relative = os.path.relpath(site, PROJECT)
    with serving(tmp_path, relative) as server:
        assert server.banner == f"sendfs: serving {site} at {server.url} (Ctrl-C stops)"
        with http_client() as client:
            page = client.get(f"{server.url}docs/page.txt")
        code, stderr = server.stop()
    assert page.content == PAGE
    assert code == 0
    assert "Traceback" not in stderr


def test_serve_without_flags_lists_hides_dotfiles_and_logs_each_request(
    tmp_path: Path, site: Path
) -> None:
    # What users of `python -m http.server` expect, minus the .env and .git it would leak.
    (site / ".env").write_bytes(b"SECRET=1")
    (site / ".git").mkdir()
    (site / ".git" / "config").write_bytes(b"[core]")
    with serving(tmp_path, str(site)) as server:
        with http_client() as client:
            listing = client.get(server.url)
            env = client.get(f"{server.url}.env")
            git = client.get(f"{server.url}.git/config")
            missing = client.get(f"{server.url}missing.txt")
        code, stderr = server.stop()
    assert listing.status_code == 200
    assert hrefs(listing.text) == ["docs/", "a%20b.bin"]
    assert (env.status_code, git.status_code, missing.status_code) == (404, 404, 404)
    lines = stderr.splitlines()
    assert "INFO:     127.0.0.1:" in stderr
    assert any(line.endswith('"GET / HTTP/1.1" 200 OK') for line in lines), stderr
    assert any(line.endswith('"GET /.env HTTP/1.1" 404 Not Found') for line in lines), stderr
    assert "sendfs: 404 /.env: a name starting with '.' is hidden (dotfiles=False)" in lines
    assert any(
        line.startswith("sendfs: 404 /missing.txt: ") and str(site / "missing.txt") in line
        for line in lines
    ), stderr
    assert "Uvicorn running" not in stderr  # the banner says where; no second address
    assert code == 0
    assert "Traceback" not in stderr


def test_serve_no_listing_answers_404_for_directories_and_says_why(
    tmp_path: Path, site: Path
) -> None:
    with serving(tmp_path, str(site), "--no-listing") as server:
        with http_client() as client:
            root = client.get(server.url)
            page = client.get(f"{server.url}docs/page.txt")
        code, stderr = server.stop()
    assert root.status_code == 404
    assert page.content == PAGE
    assert "sendfs: 404 /: a directory, and listing is off" in stderr.splitlines()
    assert code == 0


def test_serve_hidden_serves_and_lists_dotfiles(tmp_path: Path, site: Path) -> None:
    (site / ".env").write_bytes(b"SECRET=1")
    with serving(tmp_path, str(site), "--hidden") as server:
        with http_client() as client:
            listing = client.get(server.url)
            env = client.get(f"{server.url}.env")
        code, _ = server.stop()
    assert ".env" in hrefs(listing.text)
    assert env.content == b"SECRET=1"
    assert code == 0


@pytest.mark.parametrize("options", [("--quiet",), ("--log-level", "warning")])
def test_serve_quiet_or_warning_logs_no_requests(
    tmp_path: Path, site: Path, options: tuple[str, ...]
) -> None:
    with serving(tmp_path, str(site), *options) as server:
        with http_client() as client:
            assert client.get(f"{server.url}docs/page.txt").status_code == 200
            assert client.get(f"{server.url}missing.txt").status_code == 404
        code, stderr = server.stop()
    assert stderr == ""
    assert code == 0


def test_serve_debug_log_level_shows_the_server_and_storage_details(
    tmp_path: Path, site: Path
) -> None:
    with serving(tmp_path, str(site), "--log-level", "debug") as server:
        with http_client() as client:
            assert client.get(f"{server.url}missing.txt").status_code == 404
        code, stderr = server.stop()
    assert "sendfs: 404 /missing.txt: " in stderr
    assert "sendfs: HTTP 404: " in stderr  # the storage error, logged where statuses are chosen
    assert "INFO:     Started server process" in stderr  # uvicorn's start-up lines
    assert code == 0


def hrefs(page: str) -> list[str]:
    return re.findall(r'<a href="([^"]*)">', page)


def test_dev_serve_serves_the_directory_it_is_called_from(tmp_path: Path, site: Path) -> None:
    # The README's first command: its default source is the caller's current directory, not
    # the checkout that holds ./dev. It runs in the environment ./dev picks (VENV, as ./dev
    # reads it), which may be one the serve path alone created.
    venv = PROJECT / os.environ.get("VENV", ".venv")
    changed = (PROJECT / "pyproject.toml").stat().st_mtime
    stamps = [venv / ".installed", venv / ".installed-serve"]
    if not any(s.exists() and s.stat().st_mtime >= changed for s in stamps):
        pytest.skip(f"./dev would install the environment in {venv} first")
    with serving(tmp_path, None, launcher=[str(PROJECT / "dev"), "serve"], cwd=site) as server:
        assert server.banner == f"sendfs: serving {site} at {server.url} (Ctrl-C stops)"
        with http_client() as client:
            page = client.get(f"{server.url}docs/page.txt")
        code, stderr = server.stop()
    assert page.content == PAGE
    assert code == 0
    assert "Traceback" not in stderr


def test_serve_options_reach_the_responses(tmp_path: Path, site: Path) -> None:
    (site / "docs" / "index.html").write_bytes(b"<p>index</p>")
    with serving(tmp_path, str(site), "--html", "--max-age", "60") as server:
        with http_client() as client:
            page = client.get(f"{server.url}docs/page.txt")
            redirect = client.get(f"{server.url}docs")
            index = client.get(f"{server.url}docs/")
        code, stderr = server.stop()
    assert page.headers["cache-control"] == "public, max-age=60"
    assert redirect.status_code == 307
    assert redirect.headers["location"] == "/docs/"
    assert index.content == b"<p>index</p>"
    assert code == 0
    assert "Traceback" not in stderr


@pytest.mark.s3
def test_serve_s3_prefix_serves_objects_and_closes_its_sessions(
    tmp_path: Path, s3_client: Any, bucket: str
) -> None:
    s3_client.put_object(Bucket=bucket, Key="prefix/docs/page.txt", Body=PAGE)
    s3_client.put_object(Bucket=bucket, Key="outside.txt", Body=b"outside")
    source = f"s3://{bucket}/prefix"
    with serving(tmp_path, source, "--listing", env=os.environ.copy()) as server:
        assert server.banner == f"sendfs: serving {source} at {server.url} (Ctrl-C stops)"
        with http_client() as client:
            page = client.get(f"{server.url}docs/page.txt")
            again = client.get(f"{server.url}docs/page.txt")
            listing = client.get(server.url)
            outside = client.get(f"{server.url}..%2foutside.txt")
        code, stderr = server.stop()
    assert page.status_code == 200
    assert page.content == PAGE
    assert again.content == PAGE
    assert page.headers["etag"] == again.headers["etag"]
    assert listing.status_code == 200
    assert '<a href="docs/">docs/</a>' in listing.text
    assert outside.status_code == 404
    assert code == 0
    assert "Traceback" not in stderr
    assert "Unclosed" not in stderr


def test_bound_socket_accepts_connections_before_the_server_starts() -> None:
    # The "serving" line is printed before uvicorn starts: its URL must already accept
    # connections (they wait in the backlog), or a client reading the line is refused.
    sock = _bind("127.0.0.1", 0)
    try:
        with socket.create_connection(sock.getsockname()[:2], timeout=10):
            pass
    finally:
        sock.close()


# -- errors ----------------------------------------------------------------------------------


def test_unknown_scheme_is_a_one_line_error() -> None:
    result = run_sendfs("serve", "nope://x", "--port", str(free_port()))
    assert_one_line_error(result)
    assert result.stderr.startswith("sendfs: error: cannot serve nope://x: ")


def test_missing_directory_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_sendfs("serve", str(tmp_path / "missing"), "--port", str(free_port()))
    assert_one_line_error(result)
    assert str(tmp_path / "missing") in result.stderr


def test_file_instead_of_directory_is_a_one_line_error(site: Path) -> None:
    result = run_sendfs("serve", str(site / "docs" / "page.txt"), "--port", str(free_port()))
    assert_one_line_error(result)


@pytest.mark.s3
def test_missing_bucket_is_a_one_line_error(moto_endpoint: str) -> None:
    result = run_sendfs(
        "serve", "s3://no-such-bucket-xyz", "--port", str(free_port()), env=os.environ.copy()
    )
    assert_one_line_error(result)
    assert result.stderr.startswith("sendfs: error: cannot serve s3://no-such-bucket-xyz: ")


def test_port_in_use_is_a_one_line_error(site: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_sendfs("serve", str(site), "--port", str(port))
    assert_one_line_error(result)
    assert result.stderr.startswith(f"sendfs: error: cannot serve {site}: ")


def test_bad_storage_option_is_a_usage_error() -> None:
    result = run_sendfs("serve", ".", "-o", "not-key-value")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "is not key=value" in result.stderr


# -- help ------------------------------------------------------------------------------------


def test_help_describes_the_serve_command() -> None:
    result = run_sendfs("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: sendfs ")
    assert "serve" in result.stdout
    assert result.stderr == ""


def test_serve_help_lists_its_options() -> None:
    result = run_sendfs("serve", "--help")
    assert result.returncode == 0
    options = ("--host", "--port", "--no-listing", "--html", "--hidden", "--max-age", "--option")
    for option in (*options, "--log-level", "--quiet"):
        assert option in result.stdout


def test_version_prints_the_package_version() -> None:
    result = run_sendfs("--version")
    assert result.returncode == 0
    assert result.stdout == f"sendfs {__version__}\n"


def test_quiet_and_log_level_are_exclusive() -> None:
    result = run_sendfs("serve", ".", "--quiet", "--log-level", "debug")
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr


LINK_SECRET = "k" * 32


def test_sign_prints_a_link_that_serve_signed_accepts(tmp_path: Path, site: Path) -> None:
    env = {**os.environ, "SENDFS_LINK_SECRETS": f"{LINK_SECRET},{'old' * 11}"}
    signed = run_sendfs("sign", "/docs/page.txt", "--expires-in", "60", env=env)
    assert signed.returncode == 0, signed.stderr
    link = signed.stdout.strip()
    assert link.startswith("/docs/page.txt?expires=")
    with serving(tmp_path, str(site), "--signed", env=env) as server:
        with http_client() as client:
            ok = client.get(f"{server.url}{link.lstrip('/')}")
            unsigned = client.get(f"{server.url}docs/page.txt")
            listing = client.get(server.url)
        code, _ = server.stop()
    assert ok.status_code == 200
    assert unsigned.status_code == 403
    assert listing.status_code in (403, 404)  # --signed turns listings off
    assert code == 0


def test_sign_without_secrets_is_a_one_line_error() -> None:
    env = {key: value for key, value in os.environ.items() if key != "SENDFS_LINK_SECRETS"}
    result = run_sendfs("sign", "/a.pdf", env=env)
    assert_one_line_error(result)
    assert "SENDFS_LINK_SECRETS" in result.stderr


def test_serve_precompressed_and_x_accel_redirect(tmp_path: Path, site: Path) -> None:
    (site / "docs" / "page.txt.gz").write_bytes(b"gzipped")
    with serving(tmp_path, str(site), "--precompressed") as server:
        with http_client() as client:
            request = client.build_request(
                "GET", f"{server.url}docs/page.txt", headers={"accept-encoding": "gzip"}
            )
            encoded = client.send(request, stream=True)
            raw = b"".join(encoded.iter_raw())
            encoded.close()
        server.stop()
    assert raw == b"gzipped"
    assert encoded.headers["content-encoding"] == "gzip"
    with serving(tmp_path, str(site), "--x-accel-redirect", "/_site") as server:
        with http_client() as client:
            offloaded = client.get(f"{server.url}docs/page.txt")
        server.stop()
    assert offloaded.headers["x-accel-redirect"] == "/_site/docs/page.txt"
    assert offloaded.content == b""
