"""Start and stop the servers under test on 127.0.0.1: uvicorn, granian, gunicorn, nginx (alone,
or in front of an app for the offload section) and moto.

Every server runs in its own session (process group), logs to a file in the work directory,
and is stopped by its PID: SIGTERM and a wait of up to STOP_DEADLINE, then SIGKILL for whatever
is left of its process group (granian, gunicorn and nginx have worker processes). ``Servers`` stops
everything it started on exit, also on Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

__all__ = ["GUNICORN_WORKER", "ROOT", "Server", "Servers", "free_port", "nginx_binary"]

#: The project root: the servers import ``benchmarks.apps`` from here.
ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
READY_DEADLINE = 30.0
STOP_DEADLINE = 5.0
START_ATTEMPTS = 3
#: The gunicorn worker of the Flask and Django sections: one process, threads for the clients.
GUNICORN_WORKER = ("gthread", 1, 4)

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running server process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM by PID, wait, then SIGKILL its process group (workers included)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_DEADLINE)
        # The group id is the PID of the process we started (start_new_session=True).
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_DEADLINE)

    def log_tail(self, lines: int = 20) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def nginx_binary() -> str | None:
    """nginx's path (``/usr/sbin`` is not on every PATH), or ``None``."""
    found = shutil.which("nginx")
    if found:
        return found
    candidates = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
    return next((path for path in candidates if os.access(path, os.X_OK)), None)


def _answers(url: str) -> bool:
    try:
        with _NO_PROXY.open(url, timeout=1.0) as response:
            return int(response.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


@dataclass
class Servers:
    """Starts servers in ``workdir`` and stops every one of them on exit (also on Ctrl-C)."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    running: list[Server] = field(default_factory=list)

    def __enter__(self) -> Servers:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    def stop_all(self) -> None:
        while self.running:
            self.running.pop().stop()

    def stop(self, server: Server) -> None:
        server.stop()
        if server in self.running:
            self.running.remove(server)

    def start(
        self,
        name: str,
        command: list[str],
        probe: str,
        env: dict[str, str],
        prepare: Callable[[int], None] | None = None,
    ) -> Server:
        """Run ``command`` (``{port}`` replaced) until ``probe`` answers; retry on a lost port.

        ``prepare(port)`` runs first (nginx writes its configuration file there).
        """
        for _ in range(START_ATTEMPTS):
            port = free_port()
            if prepare is not None:
                prepare(port)
            log = self.workdir / f"{name}.log"
            with log.open("ab") as log_file:
                process = subprocess.Popen(
                    [part.replace("{port}", str(port)) for part in command],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            server = Server(name, port, process, log)
            self.running.append(server)
            if self._wait_ready(server, probe):
                return server
            self.stop(server)
        raise RuntimeError(f"{name} did not start:\n{server.log_tail()}")

    @staticmethod
    def _wait_ready(server: Server, probe: str) -> bool:
        deadline = time.monotonic() + READY_DEADLINE
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                return False
            if _answers(server.url + probe):
                return True
            time.sleep(0.05)
        return False

    def _python_env(self) -> dict[str, str]:
        pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        return {**os.environ, **self.env, "PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1"}

    def uvicorn(self, factory: str, name: str | None = None) -> Server:
        """uvicorn with httptools and uvloop, one worker, no access log."""
        command = [
            *(sys.executable, "-m", "uvicorn", "--factory", f"benchmarks.apps:{factory}"),
            *("--host", HOST, "--port", "{port}", "--http", "httptools", "--loop", "uvloop"),
            *("--no-access-log", "--log-level", "warning", "--lifespan", "on"),
            *("--timeout-graceful-shutdown", "2"),
        ]
        return self.start(name or f"uvicorn-{factory}", command, "/ping", self._python_env())

    def granian(self, factory: str, name: str | None = None) -> Server:
        """granian's ASGI interface (it offers ``http.response.pathsend``), one worker."""
        command = [
            *(sys.executable, "-m", "granian", "--interface", "asgi", "--factory"),
            *("--host", HOST, "--port", "{port}", "--workers", "1", "--http", "1", "--no-ws"),
            *("--loop", "uvloop", "--log-level", "warning", f"benchmarks.apps:{factory}"),
        ]
        return self.start(name or f"granian-{factory}", command, "/ping", self._python_env())

    def gunicorn(self, app: str, name: str) -> Server:
        """gunicorn serving the WSGI app ``benchmarks.wsgi_apps:<app>`` (``"factory()"``).

        :data:`GUNICORN_WORKER`: one gthread worker with 4 threads; sendfile on (the default),
        no access log.
        """
        kind, workers, threads = GUNICORN_WORKER
        command = [
            *(sys.executable, "-m", "gunicorn", "--bind", f"{HOST}:{{port}}"),
            *("--worker-class", kind, "--workers", str(workers), "--threads", str(threads)),
            *("--graceful-timeout", "2", "--log-level", "warning"),
            f"benchmarks.wsgi_apps:{app}",
        ]
        return self.start(name, command, "/ping", self._python_env())

    def _nginx(self, name: str, server_block: str, probe: str) -> Server | None:
        binary = nginx_binary()
        if binary is None:
            return None
        prefix = self.workdir / name
        prefix.mkdir(exist_ok=True)
        template = _nginx_config(prefix, server_block)

        def write_config(port: int) -> None:
            (prefix / f"nginx-{port}.conf").write_text(template.replace("{port}", str(port)))

        command = [binary, "-p", str(prefix), "-c", str(prefix / "nginx-{port}.conf")]
        command += ["-e", str(prefix / "error.log")]
        return self.start(name, command, probe, dict(os.environ), prepare=write_config)

    def nginx(self, root: Path, probe: str) -> Server | None:
        """nginx with sendfile serving ``root``; ``None`` when nginx is not installed."""
        return self._nginx("nginx", f"        root {root};\n", probe)

    def nginx_front(self, app: Server, root: Path, name: str) -> Server | None:
        """nginx proxying to ``app``, serving ``root`` at the internal location ``/_files/``.

        What an app answers with ``X-Accel-Redirect: /_files/<path>`` is sent by nginx from
        ``root``. Proxied bodies are not spooled to temporary files
        (``proxy_max_temp_file_size 0``). ``None`` when nginx is not installed.
        """
        block = f"""\
        location /_files/ {{
            internal;
            disable_symlinks on;
            alias {root}/;
        }}
        location / {{
            proxy_pass {app.url};
            proxy_max_temp_file_size 0;
        }}
"""
        return self._nginx(name, block, "/ping")

    def moto(self) -> Server:
        """moto's ThreadedMotoServer in a process of its own."""
        command = [sys.executable, "-m", "benchmarks.moto_server", "{port}"]
        return self.start("moto", command, "/moto-api/", self._python_env())


def _nginx_config(prefix: Path, server_block: str) -> str:
    """A whole configuration: one worker, sendfile, no access log, ``server_block`` inside."""
    temp = prefix / "temp"
    temp.mkdir(exist_ok=True)
    temps = "\n".join(
        f"    {kind}_temp_path {temp / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
daemon off;
worker_processes 1;
pid {prefix}/nginx-{{port}}.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
{temps}
    server {{
        listen 127.0.0.1:{{port}};
{server_block}    }}
}}
"""
