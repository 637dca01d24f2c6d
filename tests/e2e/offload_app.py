"""The app behind the front servers of the offload tests (``tests/e2e/test_offload.py``).

Built by :func:`create_app` (``uvicorn --factory tests.e2e.offload_app:create_app``) from the
environment:

- ``SENDFS_OFFLOAD_ROOT``: the local directory of the test files;
- ``SENDFS_OFFLOAD_BUCKET``: the S3 bucket (endpoint and credentials: the ``AWS_*`` variables);
- ``SENDFS_OFFLOAD_TOKEN`` (optional): what ``/ping`` answers.

Routes (GET, and HEAD which Lilya adds), every download an attachment with ``max_age=60``:

- ``/nginx/local/{name}``: ``send_file(root/name, offload=XAccelRedirect("/_files/",
  root=root))`` for a name of :data:`SEND_FILE_NAMES`;
- ``/nginx/files/...``: ``StorageFiles(root, offload=XAccelRedirect("/_files/"))``;
- ``/nginx/s3/{key}``: ``send_file("s3://bucket/key", offload=XAccelRedirect(
  remote="/_reproxy"))``;
- ``/lighttpd/local/{name}``: ``send_file(root/name, offload=XSendfile(root=root))``;
- ``/lighttpd/files/...``: ``StorageFiles(root, offload=XSendfile())``.

The app is wrapped in :class:`BodyCounter`, which counts the body bytes the app hands to
uvicorn for each request carrying a ``rid`` query parameter; ``/stats?rid=...`` answers that
count as JSON. It is the proof that the app sent no body bytes: nginx's
``$upstream_response_length`` is 0 even when the app sends a body with ``X-Accel-Redirect``
(nginx stops reading it), and lighttpd logs no upstream byte counts at all.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import parse_qs

from lilya.apps import Lilya
from lilya.exceptions import HTTPException
from lilya.responses import PlainText
from lilya.routing import Include, Path

import sendfs
from sendfs import FileResponse, StorageFiles, XAccelRedirect, XSendfile, send_file

__all__ = ["MAX_AGE", "SEND_FILE_NAMES", "BodyCounter", "create_app"]

#: The names ``/nginx/local/{name}`` and ``/lighttpd/local/{name}`` serve.
SEND_FILE_NAMES = frozenset({"small.bin", "large.bin"})
MAX_AGE = 60
#: Lilya adds HEAD to GET routes itself.
_METHODS = ["GET"]

Scope = dict[str, Any]
Message = dict[str, Any]


class BodyCounter:
    """ASGI middleware: the body bytes of each answer to a request with a ``rid`` parameter.

    ``/stats?rid=X`` answers ``{"status", "body_bytes", "complete", "other"}`` for request X
    (404 until it started): ``complete`` once the last body message went out, ``other`` the
    types of any message that is neither a response start nor a body (``http.response.
    pathsend`` and the like would carry bytes this count does not see).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.records: dict[str, dict[str, Any]] = {}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = parse_qs(scope["query_string"].decode("latin-1")).get("rid", [None])[0]
        if scope["path"] == "/stats":
            await self._stats(rid, send)
            return
        if rid is None:
            await self.app(scope, receive, send)
            return
        record: dict[str, Any] = {"status": None, "body_bytes": 0, "complete": False, "other": []}
        self.records[rid] = record

        async def counting_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                record["status"] = message["status"]
            elif kind == "http.response.body":
                record["body_bytes"] += len(message.get("body", b""))
                if not message.get("more_body", False):
                    record["complete"] = True
            else:
                record["other"].append(kind)
            await send(message)

        await self.app(scope, receive, counting_send)

    async def _stats(self, rid: str | None, send: Any) -> None:
        record = self.records.get(rid) if rid is not None else None
        body = json.dumps(record).encode() if record is not None else b"null"
        await send(
            {
                "type": "http.response.start",
                "status": 200 if record is not None else 404,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} must be set to run the offload app")
    return value


def create_app() -> BodyCounter:
    """The Lilya app under test, wrapped in a :class:`BodyCounter`."""
    root = _env("SENDFS_OFFLOAD_ROOT")
    bucket = _env("SENDFS_OFFLOAD_BUCKET")
    token = os.environ.get("SENDFS_OFFLOAD_TOKEN", "ok")
    nginx_local = XAccelRedirect("/_files/", root=root)
    nginx_remote = XAccelRedirect(remote="/_reproxy")
    lighttpd = XSendfile(root=root)

    def local_path(name: str) -> str:
        if name not in SEND_FILE_NAMES:
            raise HTTPException(status_code=404, detail="Not Found")
        return os.path.join(root, name)

    async def ping() -> PlainText:
        return PlainText(token)

    async def nginx_file(name: str) -> FileResponse:
        return send_file(local_path(name), offload=nginx_local, as_attachment=True, max_age=MAX_AGE)

    async def nginx_s3(key: str) -> FileResponse:
        return send_file(
            f"s3://{bucket}/{key}", offload=nginx_remote, as_attachment=True, max_age=MAX_AGE
        )

    async def lighttpd_file(name: str) -> FileResponse:
        return send_file(local_path(name), offload=lighttpd, as_attachment=True, max_age=MAX_AGE)

    app = Lilya(
        routes=[
            Path("/ping", ping, methods=_METHODS),
            Path("/nginx/local/{name}", nginx_file, methods=_METHODS),
            Path("/nginx/s3/{key:path}", nginx_s3, methods=_METHODS),
            Include(
                "/nginx/files",
                app=StorageFiles(
                    root, offload=XAccelRedirect("/_files/"), as_attachment=True, max_age=MAX_AGE
                ),
            ),
            Path("/lighttpd/local/{name}", lighttpd_file, methods=_METHODS),
            Include(
                "/lighttpd/files",
                app=StorageFiles(root, offload=XSendfile(), as_attachment=True, max_age=MAX_AGE),
            ),
        ],
        on_shutdown=[sendfs.registry.aclose],
    )
    return BodyCounter(app)
