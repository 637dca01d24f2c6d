"""The contract app on the Lilya face.

``uvicorn --factory tests.faces.apps.lilya_app:create_app``.
"""

from __future__ import annotations

import io

from lilya.apps import Lilya
from lilya.responses import PlainText
from lilya.routing import Path

from sendfs import FileResponse, registry, send_file, send_from_storage
from tests.faces.apps.common import ATTACHMENT_PREFIX, MEMORY_ROOT, FacesEnv

METHODS = ["GET", "HEAD"]


def create_app() -> Lilya:
    """The app, configured from the environment (see :mod:`tests.faces.apps.common`)."""
    env = FacesEnv.from_env()

    async def ping() -> PlainText:
        return PlainText(env.token)

    async def local(name: str) -> FileResponse:
        return send_file(env.local(name))

    async def files(path: str) -> FileResponse:
        return send_from_storage(env.root, path)

    async def blob(name: str) -> FileResponse:
        return send_file(io.BytesIO(env.blobs[name]), download_name=name)

    async def memory(name: str) -> FileResponse:
        return send_file(f"{MEMORY_ROOT}/{name}")

    async def s3(key: str) -> FileResponse:
        return send_file(f"s3://{env.bucket}/{key}")

    async def az(name: str) -> FileResponse:
        url, options = env.az(name)
        return send_file(url, storage_options=options)

    async def attachment(name: str) -> FileResponse:
        return send_file(
            env.local(name), as_attachment=True, download_name=ATTACHMENT_PREFIX + name
        )

    async def missing() -> FileResponse:
        return send_file(env.local("no-such-file"))

    accel, reproxy, sendfile, signer = env.accel(), env.reproxy(), env.sendfile(), env.signer()

    async def offload_local(path: str) -> FileResponse:
        return send_from_storage(env.root, path, offload=accel)

    async def offload_s3(key: str) -> FileResponse:
        return send_file(f"s3://{env.bucket}/{key}", offload=reproxy)

    async def sendfile_route(path: str) -> FileResponse:
        return send_from_storage(env.root, path, offload=sendfile)

    async def signed(path: str) -> FileResponse:
        return send_from_storage(env.root, path, signer=signer)

    async def precompressed(path: str) -> FileResponse:
        return send_from_storage(env.root, path, precompressed=True)

    return Lilya(
        routes=[
            Path("/ping", ping, methods=METHODS),
            Path("/local/{name}", local, methods=METHODS),
            Path("/files/{path:path}", files, methods=METHODS),
            Path("/bytes/{name}", blob, methods=METHODS),
            Path("/memory/{name}", memory, methods=METHODS),
            Path("/s3/{key:path}", s3, methods=METHODS),
            Path("/az/{name}", az, methods=METHODS),
            Path("/attachment/{name}", attachment, methods=METHODS),
            Path("/missing", missing, methods=METHODS),
            Path("/offload/local/{path:path}", offload_local, methods=METHODS),
            Path("/offload/s3/{key:path}", offload_s3, methods=METHODS),
            Path("/sendfile/{path:path}", sendfile_route, methods=METHODS),
            Path("/signed/{path:path}", signed, methods=METHODS),
            Path("/precompressed/{path:path}", precompressed, methods=METHODS),
        ],
        lifespan=registry.lifespan,
    )
