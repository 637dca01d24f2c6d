"""The command line: ``sendfs serve [SOURCE]`` and ``sendfs sign PATH`` (also ``python -m sendfs``).

``serve`` serves a local directory or any fsspec URL (``s3://bucket/prefix``, ``memory://``...)
over HTTP with :class:`~sendfs.responses.static.StorageFiles` under uvicorn, until Ctrl-C. Like
``python -m http.server`` it lists directories and logs each request on stderr; unlike it, it
hides dotfiles (``.env``, ``.git/``) unless asked, and says why a request got a 404.

``serve --signed`` answers only links signed with a secret of ``SENDFS_LINK_SECRETS`` (comma
separated, the first signs), which ``sign`` mints.
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

from .__about__ import __version__
from .exceptions import SendfsError
from .responses.file import DEFAULT_SEND_TIMEOUT, DEFAULT_STORAGE_TIMEOUT
from .responses.links import LinkSigner
from .responses.offload import Offload, XAccelRedirect, XSendfile
from .responses.static import StorageFiles
from .storages.registry import StorageRegistry

__all__ = ["main"]

#: uvicorn's default backlog; it listens again with its own when it starts.
LISTEN_BACKLOG = 2048

LOG_LEVELS = ("debug", "info", "warning", "error")

#: The environment variable holding the link secrets of ``--signed`` and ``sign``.
SECRETS_VARIABLE = "SENDFS_LINK_SECRETS"

#: The logger StorageFiles tells why each 404 on (at DEBUG); shown from ``--log-level info``.
NOT_FOUND_LOGGER = "sendfs.responses.static"


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
    parser.add_argument("--version", action="version", version=f"sendfs {__version__}")
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
    serve.add_argument(
        "--listing",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="list directories as HTML (default: on, off with --signed; --no-listing "
        "answers 404 instead)",
    )
    serve.add_argument("--html", action="store_true", help="serve index.html for directories")
    serve.add_argument(
        "--hidden",
        action="store_true",
        help="serve and list dotfiles (.env, .git/...); by default they are hidden (404)",
    )
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
        "--precompressed",
        action="store_true",
        help="serve NAME.br / NAME.gz beside NAME to clients that accept the encoding",
    )
    offload = serve.add_mutually_exclusive_group()
    offload.add_argument(
        "--x-accel-redirect",
        metavar="LOCATION",
        help="let nginx send the bytes: LOCATION is its internal location serving the "
        "directory (a local source) or proxying X-Reproxy-URL (a URL source)",
    )
    offload.add_argument(
        "--x-sendfile",
        action="store_true",
        help="let Apache (mod_xsendfile) or lighttpd send local files (X-Sendfile)",
    )
    serve.add_argument(
        "--signed",
        action="store_true",
        help=f"answer only links signed with ${SECRETS_VARIABLE} (see: sendfs sign)",
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
    verbosity = serve.add_mutually_exclusive_group()
    verbosity.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="info logs every request and why each 404 (default: %(default)s)",
    )
    verbosity.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no access log: warnings and errors only",
    )
    sign = commands.add_parser("sign", help=f"print a link signed with ${SECRETS_VARIABLE}")
    sign.add_argument("path", help="the URL path to sign, e.g. /reports/q3.pdf")
    sign.add_argument(
        "--expires-in",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="how long the link works (default: %(default)s)",
    )
    return parser


def log_config(level: str) -> dict[str, Any]:
    """The logging configuration of ``sendfs serve``: everything on stderr.

    ``info`` shows uvicorn's access log and why each request got a 404 (the reasons
    StorageFiles logs at DEBUG); uvicorn's own start-up chatter only shows at ``debug``.

    Args:
        level: One of :data:`LOG_LEVELS`.
    """
    upper = level.upper()
    server_level = "WARNING" if level == "info" else upper
    not_found_level = "DEBUG" if level in ("debug", "info") else upper
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {
                "()": "uvicorn.logging.DefaultFormatter",
                "fmt": "%(levelprefix)s %(message)s",
            },
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
            },
            # sendfs messages start with "sendfs: ", like the banner and the errors.
            "sendfs": {"format": "%(message)s"},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "stream": "ext://sys.stderr",
            },
            "sendfs": {
                "class": "logging.StreamHandler",
                "formatter": "sendfs",
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": server_level, "propagate": False},
            "uvicorn.error": {"level": server_level},
            "uvicorn.access": {"handlers": ["access"], "level": upper, "propagate": False},
            "sendfs": {"handlers": ["sendfs"], "level": upper, "propagate": False},
            NOT_FOUND_LOGGER: {"level": not_found_level},
        },
    }


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
        signer = _signer() if args.signed else None
        asyncio.run(_check_source(registry, source, options))
        app = StorageFiles(
            source,
            html=args.html,
            listing=(not args.signed) if args.listing is None else args.listing,
            dotfiles=args.hidden,
            storage_options=options,
            registry=registry,
            max_age=args.max_age,
            send_timeout=args.send_timeout,
            storage_timeout=args.storage_timeout,
            precompressed=args.precompressed,
            offload=_offload(args, source),
            signer=signer,
        )
        sock = _bind(args.host, args.port)
    except (SendfsError, OSError, ValueError, TypeError) as exc:
        print(f"sendfs: error: cannot serve {args.source}: {_describe(exc)}", file=sys.stderr)
        return 2
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"sendfs: serving {source} at http://{host}:{sock.getsockname()[1]}/ (Ctrl-C stops)")
    sys.stdout.flush()
    level = "warning" if args.quiet else args.log_level
    config = uvicorn.Config(
        app, log_config=log_config(level), access_log=not args.quiet, lifespan="on"
    )
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # pragma: no cover - uvicorn handles SIGINT itself
        pass
    finally:
        sock.close()
    return 0


def _offload(args: argparse.Namespace, source: str) -> Offload | None:
    """The offload ``--x-accel-redirect`` or ``--x-sendfile`` asks for, if any."""
    if args.x_sendfile:
        return XSendfile()
    location: str | None = args.x_accel_redirect
    if location is None:
        return None
    if "://" in source:
        return XAccelRedirect(remote=location)
    return XAccelRedirect(location if location.endswith("/") else location + "/")


def _signer() -> LinkSigner:
    """The signer of the secrets in :data:`SECRETS_VARIABLE`.

    Raises:
        ValueError: The variable is unset, or a secret is too short.
    """
    secrets = [part.strip() for part in os.environ.get(SECRETS_VARIABLE, "").split(",")]
    secrets = [secret for secret in secrets if secret]
    if not secrets:
        raise ValueError(
            f"signed links need ${SECRETS_VARIABLE}: export {SECRETS_VARIABLE}=$(python -c "
            "'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return LinkSigner(secrets)


def sign(args: argparse.Namespace) -> int:
    """Run ``sendfs sign``: print a signed link; returns the exit status."""
    try:
        print(_signer().sign(args.path, expires_in=args.expires_in))
    except (ValueError, TypeError) as exc:
        print(f"sendfs: error: cannot sign {args.path}: {_describe(exc)}", file=sys.stderr)
        return 2
    return 0


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """The entry point of the ``sendfs`` command."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "sign":
        return sign(args)
    return 2  # pragma: no cover - argparse requires a command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
