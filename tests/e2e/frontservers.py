"""Front servers for the offload tests: real nginx and lighttpd on 127.0.0.1.

:func:`running_nginx` and :func:`running_lighttpd` write a configuration into a directory of
the test, start the server in the foreground as the current user (nginx: ``daemon off;``,
lighttpd: ``-D``) on a free port, wait until it listens there, yield a :class:`FrontServer`
(``port, access_log``) and stop it by its PID: SIGTERM, a wait, then SIGKILL.

Everything the servers write (pid file, logs, nginx's temporary directories) stays in that
directory. A missing binary skips the test with the Debian package to install, except under CI
(``CI=true``), where it fails: ``.ci/run`` installs both servers, so CI must run these tests.

The nginx access log uses :data:`NGINX_LOG_FORMAT`, one tab-separated line per request whose
``$upstream_response_length`` lists the body length of every upstream the request went through
(the app first, then the storage an ``X-Accel-Redirect`` proxied to, separated by ``" : "``):
the proof that the app sent no body bytes. lighttpd buffers its access log until it stops.

The configurations under test are the ones the documentation shows (``docs/snippets/*.conf``):
:func:`documented_config` reads one and puts the test's paths and ports in place of the
page's.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple, NoReturn

import pytest

from tests.conftest import free_port

#: Where the documentation keeps the configurations it shows.
DOC_SNIPPETS = Path(__file__).resolve().parents[2] / "docs" / "snippets"
NGINX_PATHS = ("/usr/sbin/nginx",)
LIGHTTPD_PATHS = ("/usr/sbin/lighttpd",)
STARTUP_DEADLINE = 20.0
STOP_DEADLINE = 5.0
START_ATTEMPTS = 3

#: One line per request, tab-separated: see :func:`parse_nginx_log`.
NGINX_LOG_FORMAT = (
    "$request_method\\t$request_uri\\t$status\\t$body_bytes_sent\\t$upstream_status\\t"
    "$upstream_response_length\\t$upstream_bytes_received\\t$upstream_addr"
)
#: lighttpd's accesslog.format: method, URI, status, body bytes sent.
LIGHTTPD_LOG_FORMAT = "%m\\t%U\\t%s\\t%b"


class FrontServer(NamedTuple):
    """A running front server: its port on 127.0.0.1 and its access log."""

    port: int
    access_log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class NginxLogLine(NamedTuple):
    """One line of an nginx access log written with :data:`NGINX_LOG_FORMAT`."""

    method: str
    uri: str
    status: int
    body_bytes_sent: int
    upstream_statuses: list[str]
    #: The body bytes each upstream sent (``$upstream_response_length``), in order.
    upstream_lengths: list[str]
    #: All the bytes each upstream sent, headers included (``$upstream_bytes_received``).
    upstream_received: list[str]
    upstream_addrs: list[str]


def documented_config(name: str, values: Mapping[str, str]) -> str:
    """The configuration ``docs/snippets/<name>``, with each of ``values``' keys replaced.

    The keys are what the page names (``/srv/files``, the app's address); every one must
    occur in the file, so a page that stops naming one fails here instead of being tested
    with the page's own path or port.
    """
    text = (DOC_SNIPPETS / name).read_text(encoding="utf-8")
    for shown, used in values.items():
        assert shown in text, f"docs/snippets/{name} no longer names {shown!r}"
        text = text.replace(shown, used)
    return text


def _upstreams(field: str) -> list[str]:
    """One entry per upstream server: ``-`` when none answered.

    nginx separates the servers tried within one location with ``", "``, and the upstreams of
    the locations an internal redirect (``X-Accel-Redirect``) went through with ``" : "``.
    """
    if field == "-":
        return []
    return [part.strip() for group in field.split(" : ") for part in group.split(",")]


def parse_nginx_log(path: Path) -> list[NginxLogLine]:
    """The lines of an access log written with :data:`NGINX_LOG_FORMAT`, oldest first."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        method, uri, status, sent, statuses, lengths, received, addrs = line.split("\t")
        lines.append(
            NginxLogLine(
                method,
                uri,
                int(status),
                int(sent),
                _upstreams(statuses),
                _upstreams(lengths),
                _upstreams(received),
                _upstreams(addrs),
            )
        )
    return lines


def _unavailable(reason: str) -> NoReturn:
    """Skip locally, fail under CI (``CI=true``), where ``.ci/run`` installs the servers."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the front-server tests must run in CI: {reason}")
    pytest.skip(reason)


def _binary(name: str, paths: tuple[str, ...], package: str) -> str:
    # The servers live in /usr/sbin, which a non-root PATH often lacks.
    found = shutil.which(name) or next((p for p in paths if os.access(p, os.X_OK)), None)
    if found is None:
        _unavailable(f"{name} is not installed (Debian: apt-get install {package})")
    return found


def nginx_binary() -> str:
    """The nginx executable (skips, or fails under CI, when it is missing)."""
    return _binary("nginx", NGINX_PATHS, "nginx-light")


def lighttpd_binary() -> str:
    """The lighttpd executable (skips, or fails under CI, when it is missing)."""
    return _binary("lighttpd", LIGHTTPD_PATHS, "lighttpd")


def _user_and_group() -> tuple[str, str]:
    return pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, SIGKILL (its process group: nginx's workers too) after a deadline."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            # Started with start_new_session: the group id is the PID of the server.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_DEADLINE)


def _wait_listening(process: subprocess.Popen[bytes], port: int, pid_file: Path) -> bool:
    """True once the server wrote its pid file and accepts on ``port``; False if it exited.

    Both servers write the pid file only after they bound their listening socket, so the
    connection that succeeds then is to this server, not to another that took the port.
    """
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            written = pid_file.read_text().strip() == str(process.pid)
        except OSError:
            written = False
        if written and _accepts(port):
            return True
        time.sleep(0.02)
    return False


@contextmanager
def _serve(
    name: str,
    directory: Path,
    command: list[str],
    write_config: Callable[[int], None],
    error_log: Path,
    pid_file: Path,
    access_log: Path,
) -> Iterator[FrontServer]:
    for _ in range(START_ATTEMPTS):
        port = free_port()
        write_config(port)
        error_log.write_bytes(b"")
        pid_file.unlink(missing_ok=True)  # lighttpd creates it with O_EXCL
        output = directory / "stdout.log"
        with output.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=directory, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        if _wait_listening(process, port, pid_file):
            break
        _stop(process)
        logs = f"{error_log.read_text(errors='replace')}{output.read_text(errors='replace')}"
        if "address already in use" not in logs.lower():
            pytest.fail(f"{name} did not start (exit code {process.returncode}):\n{logs}")
    else:
        pytest.fail(f"{name}: no free port after {START_ATTEMPTS} attempts:\n{logs}")
    try:
        yield FrontServer(port, access_log)
    finally:
        _stop(process)


@contextmanager
def running_nginx(directory: Path, server: str, *, http: str = "") -> Iterator[FrontServer]:
    """nginx in the foreground, listening on a free port of 127.0.0.1.

    ``server`` goes into the ``server { }`` block after ``listen`` (the ``location`` blocks),
    ``http`` into the ``http { }`` block before it. The access log uses
    :data:`NGINX_LOG_FORMAT`; the error log (level ``info``) is ``error.log`` in ``directory``.
    """
    binary = nginx_binary()
    directory.mkdir(parents=True, exist_ok=True)
    conf, error_log = directory / "nginx.conf", directory / "error.log"
    pid_file, access_log = directory / "nginx.pid", directory / "access.log"
    temp = directory / "temp"
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (temp / kind).mkdir(parents=True, exist_ok=True)
    # As root, the workers would switch to "nobody", which cannot read the test's files.
    user = "user {} {};".format(*_user_and_group()) if os.geteuid() == 0 else ""

    def write_config(port: int) -> None:
        conf.write_text(
            f"""
{user}
daemon off;
worker_processes 1;
pid {pid_file};
lock_file {directory / "nginx.lock"};
error_log {error_log} info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    log_format offload "{NGINX_LOG_FORMAT}";
    client_body_temp_path {temp / "client_body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};
    default_type application/octet-stream;
{http}
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        access_log {access_log} offload;
{server}
    }}
}}
""",
            encoding="utf-8",
        )

    command = [binary, "-p", f"{directory}/", "-e", str(error_log), "-c", str(conf)]
    with _serve("nginx", directory, command, write_config, error_log, pid_file, access_log) as s:
        yield s


@contextmanager
def running_lighttpd(directory: Path, config: str) -> Iterator[FrontServer]:
    """lighttpd in the foreground (``-D``), listening on a free port of 127.0.0.1.

    ``config`` is appended to a configuration that loads mod_accesslog (``config`` loads
    mod_proxy, as the documented one does), binds, and logs to ``error.log`` and
    ``access.log`` (:data:`LIGHTTPD_LOG_FORMAT`) in ``directory``; its document root is an
    empty ``docroot`` there.
    """
    binary = lighttpd_binary()
    directory.mkdir(parents=True, exist_ok=True)
    conf, error_log = directory / "lighttpd.conf", directory / "error.log"
    pid_file, access_log = directory / "lighttpd.pid", directory / "access.log"
    docroot, uploads = directory / "docroot", directory / "uploads"
    docroot.mkdir(exist_ok=True)
    uploads.mkdir(exist_ok=True)

    def write_config(port: int) -> None:
        conf.write_text(
            f"""
server.modules = ( "mod_accesslog" )
server.bind = "127.0.0.1"
server.port = {port}
server.document-root = "{docroot}"
server.upload-dirs = ( "{uploads}" )
server.pid-file = "{pid_file}"
server.errorlog = "{error_log}"
accesslog.filename = "{access_log}"
accesslog.format = "{LIGHTTPD_LOG_FORMAT}"
{config}
""",
            encoding="utf-8",
        )

    command = [binary, "-D", "-f", str(conf)]
    with _serve("lighttpd", directory, command, write_config, error_log, pid_file, access_log) as s:
        yield s
