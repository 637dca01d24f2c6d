"""The contract's routes, twice: sync views (``send_file``) and async views (``asend_file``).

Importing this module reads ``SENDFS_FACES_*`` and copies ROOT's files into
``memory://sendfs-faces`` (:class:`~tests.faces.apps.common.FacesEnv`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse  # type: ignore[import-untyped]

from sendfs.django import asend_file, asend_from_storage, send_file, send_from_storage, serve
from tests.faces.apps.common import ATTACHMENT_PREFIX, MEMORY_ROOT, FacesEnv

ENV = FacesEnv.from_env()
ACCEL = ENV.accel()
REPROXY = ENV.reproxy()
SENDFILE = ENV.sendfile()
SIGNER = ENV.signer()

#: What each contract route of one kind (sync or async) is served by, by route name.
Views = dict[str, Callable[..., Any]]


def _blob(name: str) -> io.BytesIO:
    data = ENV.blobs.get(os.path.basename(name))
    if data is None:
        raise Http404("no such file")
    return io.BytesIO(data)


def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse(ENV.token, content_type="text/plain; charset=utf-8")


# -- sync views (WSGI) --------------------------------------------------------------------------


def local(request: HttpRequest, name: str) -> Any:
    return send_file(request, ENV.local(name))


def files(request: HttpRequest, path: str) -> Any:
    return serve(request, path, document_root=ENV.root)


def blob(request: HttpRequest, name: str) -> Any:
    return send_file(request, _blob(name), download_name=name)


def memory(request: HttpRequest, name: str) -> Any:
    return send_from_storage(request, MEMORY_ROOT, name)


def s3(request: HttpRequest, key: str) -> Any:
    return send_from_storage(request, f"s3://{ENV.bucket}", key)


def az(request: HttpRequest, name: str) -> Any:
    _, options = ENV.az(name)
    return send_from_storage(request, f"az://{ENV.container}", name, storage_options=options)


def attachment(request: HttpRequest, name: str) -> Any:
    return send_file(
        request, ENV.local(name), as_attachment=True, download_name=ATTACHMENT_PREFIX + name
    )


def missing(request: HttpRequest) -> Any:
    return send_file(request, os.path.join(ENV.root, "no-such-file.bin"))


def offload_local(request: HttpRequest, path: str) -> Any:
    return send_from_storage(request, ENV.root, path, offload=ACCEL)


def offload_s3(request: HttpRequest, key: str) -> Any:
    return send_from_storage(request, f"s3://{ENV.bucket}", key, offload=REPROXY)


def sendfile(request: HttpRequest, path: str) -> Any:
    return send_from_storage(request, ENV.root, path, offload=SENDFILE)


def signed(request: HttpRequest, path: str) -> Any:
    return send_from_storage(request, ENV.root, path, signer=SIGNER)


def precompressed(request: HttpRequest, path: str) -> Any:
    # serve(), the drop-in for django.views.static.serve, takes the options too.
    return serve(request, path, document_root=ENV.root, precompressed=True)


SYNC_VIEWS: Views = {
    "local": local,
    "files": files,
    "bytes": blob,
    "memory": memory,
    "s3": s3,
    "az": az,
    "attachment": attachment,
    "missing": missing,
    "offload_local": offload_local,
    "offload_s3": offload_s3,
    "sendfile": sendfile,
    "signed": signed,
    "precompressed": precompressed,
}


# -- async views (ASGI) -------------------------------------------------------------------------


async def alocal(request: HttpRequest, name: str) -> Any:
    return await asend_file(request, ENV.local(name))


async def afiles(request: HttpRequest, path: str) -> Any:
    return await asend_from_storage(request, ENV.root, path)


async def ablob(request: HttpRequest, name: str) -> Any:
    return await asend_file(request, _blob(name), download_name=name)


async def amemory(request: HttpRequest, name: str) -> Any:
    return await asend_from_storage(request, MEMORY_ROOT, name)


async def as3(request: HttpRequest, key: str) -> Any:
    return await asend_from_storage(request, f"s3://{ENV.bucket}", key)


async def aaz(request: HttpRequest, name: str) -> Any:
    _, options = ENV.az(name)
    return await asend_from_storage(request, f"az://{ENV.container}", name, storage_options=options)


async def aattachment(request: HttpRequest, name: str) -> Any:
    return await asend_file(
        request, ENV.local(name), as_attachment=True, download_name=ATTACHMENT_PREFIX + name
    )


async def amissing(request: HttpRequest) -> Any:
    return await asend_file(request, os.path.join(ENV.root, "no-such-file.bin"))


async def aoffload_local(request: HttpRequest, path: str) -> Any:
    return await asend_from_storage(request, ENV.root, path, offload=ACCEL)


async def aoffload_s3(request: HttpRequest, key: str) -> Any:
    return await asend_from_storage(request, f"s3://{ENV.bucket}", key, offload=REPROXY)


async def asendfile(request: HttpRequest, path: str) -> Any:
    return await asend_from_storage(request, ENV.root, path, offload=SENDFILE)


async def asigned(request: HttpRequest, path: str) -> Any:
    return await asend_from_storage(request, ENV.root, path, signer=SIGNER)


async def aprecompressed(request: HttpRequest, path: str) -> Any:
    return await asend_from_storage(request, ENV.root, path, precompressed=True)


ASYNC_VIEWS: Views = {
    "local": alocal,
    "files": afiles,
    "bytes": ablob,
    "memory": amemory,
    "s3": as3,
    "az": aaz,
    "attachment": aattachment,
    "missing": amissing,
    "offload_local": aoffload_local,
    "offload_s3": aoffload_s3,
    "sendfile": asendfile,
    "signed": asigned,
    "precompressed": aprecompressed,
}
