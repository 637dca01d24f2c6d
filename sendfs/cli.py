"""The command line: ``sendfs serve [SOURCE]`` (also ``python -m sendfs serve``).

Serves a local directory or any fsspec URL (``s3://bucket/prefix``, ``memory://``...) over HTTP
with :class:`~sendfs.responses.static.StorageFiles` under uvicorn, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

from .exceptions import SendfsError
from .responses.file import DEFAULT_SEND_TIMEOUT, DEFAULT_STORAGE_TIMEOUT
from .responses.static import StorageFiles
from .storages.registry import StorageRegistry

__all__ = ["main"]

#: uvicorn's default backlog; it listens again with its own when it starts.
LISTEN_BACKLOG = 2048


def _option(text: str) -> tuple[str, Any]:
    """Parse ``key=value``; the value is read as JSON when it is JSON (``true``, ``3``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not key=value")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def _seconds(text: str) -> float:
    """Parse a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sendfs`` command."""
    parser = argparse.ArgumentParser(
        prog="sendfs", description="Serve downloads from any storage with correct HTTP."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a directory or storage URL over HTTP")
    serve.add_argument(
        "source",
        nargs="?",
        default=".",
        help="a local directory or an fsspec URL such as s3://bucket/prefix (default: .)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default: 8000)")
    serve.add_argument("--listing", action="store_true", help="list directories as HTML")
    serve.add_argument("--html", action="store_true", help="serve index.html for directories")
    serve.add_argument("--max-age", type=int, default=None, help="Cache-Control max-age, seconds")
    serve.add_argument(
        "--send-timeout",
        type=_seconds,
        default=DEFAULT_SEND_TIMEOUT,
        metavar="SECONDS",
        help="cut off a client that takes no data for this long (default: %(default)s)",
    )
    serve.add_argument(
        "--storage-timeout",
        type=_seconds,
        default=DEFAULT_STORAGE_TIMEOUT,
        metavar="SECONDS",
        help="answer 503 when the storage does not start answering in this long "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--option",
        "-o",
        action="append",
        type=_option,
        default=[],
        metavar="KEY=VALUE",
        help="a storage option, e.g. -o endpoint_url=http://127.0.0.1:9000 (repeatable)",
    )
    return parser


async def _check_source(registry: StorageRegistry, source: str, options: dict[str, Any]) -> None:
    """Fail early, with a clear message, when the source is not a reachable directory."""
    try:
        resolved = registry.locate(source, "", **options)
        await registry.list(resolved.target, **resolved.options)
    finally:
        await registry.aclose()


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket: connections queue from the moment the URL is printed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve(args: argparse.Namespace) -> int:
    """Run ``sendfs serve``; returns the exit status."""
    try:
        import uvicorn
    except ImportError:
        print("sendfs: error: serving needs uvicorn: pip install 'sendfs[cli]'", file=sys.stderr)
        return 2
    source = args.source if "://" in args.source else os.path.abspath(args.source)
    options = dict(args.option)
    registry = StorageRegistry()
    try:
        asyncio.run(_check_source(registry, source, options))
        app = StorageFiles(
            source,
            html=args.html,
            listing=args.listing,
            storage_options=options,
            registry=registry,
            max_age=args.max_age,
            send_timeout=args.send_timeout,
            storage_timeout=args.storage_timeout,
        )
        sock = _bind(args.host, args.port)
    except (SendfsError, OSError, ValueError, TypeError) as exc:
        print(f"sendfs: error: cannot serve {args.source}: {_describe(exc)}", file=sys.stderr)
        return 2
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"sendfs: serving {source} at http://{host}:{sock.getsockname()[1]}/ (Ctrl-C stops)")
    sys.stdout.flush()
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # pragma: no cover - uvicorn handles SIGINT itself
        pass
    finally:
        sock.close()
    return 0


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """The entry point of the ``sendfs`` command."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2  # pragma: no cover - argparse requires a command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
