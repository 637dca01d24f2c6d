"""Real download clients against a real uvicorn server, the way users run them.

- curl and wget are killed in the middle of a rate-limited download, then ``curl -C -`` and
  ``wget -c`` finish the same file with a Range request: the result is byte-exact.
- aria2c assembles a file from parallel ranged connections (local file and S3 object).
- headless Chromium, driven over the DevTools protocol on a pipe (standard library only), saves
  an attachment under its non-ASCII ``filename*`` name.

Each test is skipped when its tool is missing; ``.ci/run`` installs them, so CI runs them all.
Every process a test starts is stopped by its PID (Chromium: by its own process group).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.app import ATTACHMENT_NAME
from tests.e2e.conftest import LARGE_SIZE, MEDIUM_SIZE, E2EData, Payload, UvicornServer

pytestmark = [pytest.mark.e2e]

MIB = 1024 * 1024
CURL = shutil.which("curl")
WGET = shutil.which("wget")
ARIA2C = shutil.which("aria2c")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: The rate the first, interrupted transfer is limited to, so it is still running when killed.
SLOW_RATE_BYTES = 2 * MIB
#: Kill the slow transfer once this much reached the disk (about half a second at 2 MiB/s).
KILL_AFTER_BYTES = MIB
TOOL_TIMEOUT = 60.0
#: Bounds of the waits: the first bytes of a slow transfer, a browser download, a clean exit.
FIRST_BYTES_DEADLINE = 15.0
DOWNLOAD_DEADLINE = 30.0
EXIT_DEADLINE = 10.0


def _needs(tool: str | None, name: str, package: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        tool is None, reason=f"{name} is not installed (Debian: apt-get install {package})"
    )


needs_curl = _needs(CURL, "curl", "curl")
needs_wget = _needs(WGET, "wget", "wget")
needs_aria2c = _needs(ARIA2C, "aria2c", "aria2")
needs_chromium = _needs(CHROMIUM, "chromium", "chromium")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def client_env(**extra: str) -> dict[str, str]:
    """This environment without proxy settings: every client talks to 127.0.0.1 directly."""
    env = {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")}
    return {**env, **extra}


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env=client_env(),
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        check=False,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process`` by its PID (if it still runs) and reap it."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=EXIT_DEADLINE)


def kill_mid_transfer(command: list[str], output: Path, log: Path) -> int:
    """Run a rate-limited download, SIGKILL it once KILL_AFTER_BYTES arrived; return the size.

    SIGKILL is what a crash, a closed laptop or a dropped link looks like to the client: no
    chance to clean up, the partial file stays as it is.
    """
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=output.parent, env=client_env(), stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + FIRST_BYTES_DEADLINE
        while time.monotonic() < deadline and process.poll() is None:
            if output.exists() and output.stat().st_size >= KILL_AFTER_BYTES:
                break
            time.sleep(0.02)
        assert process.poll() is None, (
            f"the slow download ended on its own ({process.returncode}):\n{log.read_text()}"
        )
        assert output.exists(), f"nothing arrived in {FIRST_BYTES_DEADLINE} s:\n{log.read_text()}"
    finally:
        stop(process)
    return output.stat().st_size


def header_blocks(raw: str) -> list[list[str]]:
    """Response header blocks (``-D`` of curl, ``-S`` of wget), each as stripped lines."""
    blocks: list[list[str]] = []
    for line in raw.splitlines():
        line = line.strip()
        if line.startswith("HTTP/"):
            blocks.append([])
        if blocks and line:
            blocks[-1].append(line)
    return blocks


def assert_resumed_with_206(raw_headers: str, offset: int, size: int) -> None:
    (block,) = header_blocks(raw_headers)  # one request: the resume is not a fresh download
    lowered = [line.lower() for line in block]
    assert lowered[0].split()[1] == "206", block
    assert f"content-range: bytes {offset}-{size - 1}/{size}" in lowered, block
    assert f"content-length: {size - offset}" in lowered, block


# -- curl -C - and wget -c: resume after a kill ------------------------------------------------


@needs_curl
def test_curl_continue_at_resumes_a_killed_download_byte_exact(
    uvicorn_server: UvicornServer, large_local: Payload, tmp_path: Path
) -> None:
    assert CURL is not None
    url = uvicorn_server.url + large_local.route
    out = tmp_path / "large.bin"
    base = [CURL, "-q", "-sS", "--noproxy", "*", "--max-time", str(int(TOOL_TIMEOUT))]
    rate = ["--limit-rate", str(SLOW_RATE_BYTES)]
    log = tmp_path / "interrupted.log"
    partial = kill_mid_transfer([*base, *rate, "-o", str(out), url], out, log)
    assert 0 < partial < LARGE_SIZE
    assert out.read_bytes() == large_local.data[:partial]

    headers = tmp_path / "resume-headers"
    done = run([*base, "--fail", "-C", "-", "-D", str(headers), "-o", str(out), url], tmp_path)
    assert done.returncode == 0, done.stderr
    assert_resumed_with_206(headers.read_text("latin-1"), partial, LARGE_SIZE)
    assert sha256(out.read_bytes()) == large_local.sha256


@needs_wget
def test_wget_continue_resumes_a_killed_download_byte_exact(
    uvicorn_server: UvicornServer, large_local: Payload, tmp_path: Path
) -> None:
    assert WGET is not None
    url = uvicorn_server.url + large_local.route
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    out = downloads / "large.bin"  # wget names the file after the URL's last segment
    base = [WGET, "--no-config", "--no-proxy", "--tries=1", "--timeout=10"]
    rate = [f"--limit-rate={SLOW_RATE_BYTES}"]
    partial = kill_mid_transfer([*base, *rate, "-q", url], out, tmp_path / "interrupted.log")
    assert 0 < partial < LARGE_SIZE
    assert out.read_bytes() == large_local.data[:partial]

    done = run([*base, "-c", "-nv", "--server-response", url], downloads)
    assert done.returncode == 0, done.stderr
    assert_resumed_with_206(done.stderr, partial, LARGE_SIZE)
    assert sorted(path.name for path in downloads.iterdir()) == [out.name], "not a new copy"
    assert sha256(out.read_bytes()) == large_local.sha256


# -- aria2c: parallel ranges -------------------------------------------------------------------

RANGE_REQUEST = re.compile(r"^Range: bytes=(\d+)-(\d+)\s*$", re.MULTILINE)
PARTIAL_RESPONSE = re.compile(r"^HTTP/1\.1 206 Partial Content\s*$", re.MULTILINE)
SEGMENT_DONE = re.compile(r"CUID#(\d+) - The download for one segment completed successfully")
#: The whole download's rate: slow enough (a fraction of a second for these sizes) that the
#: first, unranged connection cannot take every segment before the ranged ones are answered.
ARIA2_RATE = "64M"


def aria2c(url: str, connections: int, workdir: Path) -> tuple[Path, str]:
    """Download ``url`` with ``-x/-s connections -k1M``; return the file and aria2's log.

    The info-level log holds every request and response header aria2 exchanged, and which
    connection (CUID) completed each segment.
    """
    assert ARIA2C is not None
    log = workdir / "aria2.log"
    downloads = workdir / "downloads"
    command = [
        *(ARIA2C, "--no-conf", f"-x{connections}", f"-s{connections}", "-k1M"),
        *("--file-allocation=none", "--max-tries=1", "--connect-timeout=10", "--timeout=10"),
        f"--max-overall-download-limit={ARIA2_RATE}",
        *("--console-log-level=warn", "--summary-interval=0", "--download-result=hide"),
        *(f"--log={log}", "--log-level=info", "-d", str(downloads), "-o", "download.bin", url),
    ]
    done = run(command, workdir)
    text = log.read_text(errors="replace") if log.exists() else ""
    assert done.returncode == 0, f"{done.stdout}{done.stderr}\n{text[-4000:]}"
    assert sorted(path.name for path in downloads.iterdir()) == ["download.bin"], "no .aria2 left"
    return downloads / "download.bin", text


def assert_assembled_from_ranges(log: str, size: int, connections: int) -> None:
    """aria2c asked for ranges, got 206s, and several connections each completed segments."""
    ranges = sorted({(int(a), int(b)) for a, b in RANGE_REQUEST.findall(log)})
    assert len(ranges) >= connections - 1, f"{len(ranges)} ranged requests:\n{log[-4000:]}"
    assert all(0 < start <= stop < size for start, stop in ranges), ranges
    assert PARTIAL_RESPONSE.findall(log), f"no ranged request was answered 206:\n{log[-4000:]}"
    workers = set(SEGMENT_DONE.findall(log))
    assert len(workers) >= 2, f"segments completed by {len(workers)} connection(s) only"


@needs_aria2c
def test_aria2c_assembles_a_large_local_file_from_eight_parallel_ranges(
    uvicorn_server: UvicornServer, large_local: Payload, tmp_path: Path
) -> None:
    path, log = aria2c(uvicorn_server.url + large_local.route, 8, tmp_path)
    assert sha256(path.read_bytes()) == large_local.sha256
    assert_assembled_from_ranges(log, LARGE_SIZE, 8)


@needs_aria2c
def test_aria2c_assembles_an_s3_object_from_four_parallel_ranges(
    uvicorn_server: UvicornServer, medium_s3: Payload, tmp_path: Path
) -> None:
    path, log = aria2c(uvicorn_server.url + medium_s3.route, 4, tmp_path)
    assert sha256(path.read_bytes()) == medium_s3.sha256
    assert_assembled_from_ranges(log, MEDIUM_SIZE, 4)


# -- headless Chromium: the attachment's non-ASCII name ----------------------------------------

#: Runs in the child: puts the two pipe ends on fds 3 (commands in) and 4 (answers out), where
#: ``--remote-debugging-pipe`` expects them, then becomes Chromium (same PID). Both ends are
#: first moved above 9 so that neither overwrites the other.
_PIPE_LAUNCHER = """\
import fcntl, os, sys
ends = [fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3]]
for fd in sys.argv[1:3]:
    os.close(int(fd))
for target, fd in zip((3, 4), ends):
    os.dup2(fd, target)
    os.close(fd)
os.execv(sys.argv[3], sys.argv[3:])
"""


class DevToolsPipe:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``.

    Messages are JSON texts ended by a NUL byte in both directions; events that arrive while
    waiting for an answer are kept in ``events``.
    """

    def __init__(self, commands: int, answers: int) -> None:
        self._commands = commands
        self._answers = answers
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no DevTools message in time")
            readable, _, _ = select.select([self._answers], [], [], left)
            if readable:
                data = os.read(self._answers, 1 << 16)
                if not data:
                    raise EOFError("Chromium closed the DevTools pipe")
                self._buffer += data
        message, _, self._buffer = self._buffer.partition(b"\0")
        parsed: dict[str, Any] = json.loads(message)
        return parsed

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        """Send one command and return its ``result``; raise on a protocol error."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._commands, data) :]
        deadline = time.monotonic() + DOWNLOAD_DEADLINE
        while True:
            answer = self._receive(deadline)
            if answer.get("id") != self._next_id:
                self.events.append(answer)
                continue
            if "error" in answer:
                raise RuntimeError(f"{method}: {answer['error']}")
            result: dict[str, Any] = answer["result"]
            return result

    def wait_for_event(self, method: str, timeout: float) -> dict[str, Any]:
        """The params of the first ``method`` event whose download state is final."""
        deadline = time.monotonic() + timeout
        while True:
            while self.events:
                event = self.events.pop(0)
                if event.get("method") == method and event["params"].get("state") != "inProgress":
                    params: dict[str, Any] = event["params"]
                    return params
            self.events.append(self._receive(deadline))


@contextmanager
def headless_chromium(tmp_path: Path) -> Iterator[DevToolsPipe]:
    """Chromium, headless, with a fresh profile and HOME; killed by its process group after."""
    assert CHROMIUM is not None
    commands_child, commands = os.pipe()
    answers, answers_child = os.pipe()
    home = tmp_path / "home"
    home.mkdir()
    flags = [
        *("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
        *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
        *("--no-default-browser-check", "--no-proxy-server", "--disable-dev-shm-usage"),
        *("--password-store=basic", f"--user-data-dir={tmp_path / 'profile'}"),
        *("--remote-debugging-pipe", "about:blank"),
    ]
    launcher = [sys.executable, "-c", _PIPE_LAUNCHER, str(commands_child), str(answers_child)]
    log = tmp_path / "chromium.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [*launcher, CHROMIUM, *flags],
            pass_fds=(commands_child, answers_child),
            env=client_env(HOME=str(home)),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its renderers and zygotes share the group of this PID
        )
    os.close(commands_child)
    os.close(answers_child)
    pipe = DevToolsPipe(commands, answers)
    try:
        try:
            pipe.call("Browser.getVersion")
        except (EOFError, TimeoutError) as exc:
            pytest.fail(f"Chromium did not start ({exc}):\n{log.read_text(errors='replace')}")
        yield pipe
        with suppress(EOFError):  # it may close the pipe before it answers
            pipe.call("Browser.close")
        process.wait(timeout=EXIT_DEADLINE)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=EXIT_DEADLINE)
        # The group id is Chromium's PID: what is left of it (helpers) goes too.
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        os.close(commands)
        os.close(answers)


@needs_chromium
def test_headless_chromium_saves_the_attachment_under_its_non_ascii_name(
    uvicorn_server: UvicornServer, e2e_data: E2EData, tmp_path: Path
) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with headless_chromium(tmp_path) as browser:
        browser.call(
            "Browser.setDownloadBehavior",
            {"behavior": "allow", "downloadPath": str(downloads), "eventsEnabled": True},
        )
        targets = browser.call("Target.getTargets")["targetInfos"]
        page = next(target for target in targets if target["type"] == "page")
        session = browser.call(
            "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}
        )
        browser.call(
            "Page.navigate", {"url": uvicorn_server.url + "/attachment"}, session["sessionId"]
        )
        progress = browser.wait_for_event("Browser.downloadProgress", DOWNLOAD_DEADLINE)
    assert progress["state"] == "completed", progress
    saved = downloads / ATTACHMENT_NAME  # résumé «final».pdf: Chromium reads filename*
    assert progress["filePath"] == str(saved)
    assert sorted(path.name for path in downloads.iterdir()) == [ATTACHMENT_NAME], "no .crdownload"
    assert sha256(saved.read_bytes()) == e2e_data.big_sha256
