"""The contract app on the Starlette face, in FastAPI.

``uvicorn --factory tests.faces.apps.fastapi_app:create_app``.
"""

from __future__ import annotations

import io

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from sendfs import registry
from sendfs.starlette import FileResponse, send_file, send_from_storage
from tests.faces.apps.common import ATTACHMENT_PREFIX, MEMORY_ROOT, FacesEnv

METHODS = ["GET", "HEAD"]


def create_app() -> FastAPI:
    """The app, configured from the environment (see :mod:`tests.faces.apps.common`)."""
    env = FacesEnv.from_env()
    app = FastAPI(lifespan=registry.lifespan)

    @app.api_route("/ping", methods=METHODS)
    async def ping() -> PlainTextResponse:
        return PlainTextResponse(env.token)

    @app.api_route("/local/{name}", methods=METHODS)
    async def local(name: str) -> FileResponse:
        return send_file(env.local(name))

    @app.api_route("/files/{path:path}", methods=METHODS)
    async def files(path: str) -> FileResponse:
        return send_from_storage(env.root, path)

    @app.api_route("/bytes/{name}", methods=METHODS)
    async def blob(name: str) -> FileResponse:
        return send_file(io.BytesIO(env.blobs[name]), download_name=name)

    @app.api_route("/memory/{name}", methods=METHODS)
    async def memory(name: str) -> FileResponse:
        return send_file(f"{MEMORY_ROOT}/{name}")

    @app.api_route("/s3/{key:path}", methods=METHODS)
    async def s3(key: str) -> FileResponse:
        return send_file(f"s3://{env.bucket}/{key}")

    @app.api_route("/az/{name}", methods=METHODS)
    async def az(name: str) -> FileResponse:
        url, options = env.az(name)
        return send_file(url, storage_options=options)

    @app.api_route("/attachment/{name}", methods=METHODS)
    async def attachment(name: str) -> FileResponse:
        return send_file(
            env.local(name), as_attachment=True, download_name=ATTACHMENT_PREFIX + name
        )

    @app.api_route("/missing", methods=METHODS)
    async def missing() -> FileResponse:
        return send_file(env.local("no-such-file"))

    accel, reproxy, sendfile, signer = env.accel(), env.reproxy(), env.sendfile(), env.signer()

    @app.api_route("/offload/local/{path:path}", methods=METHODS)
    async def offload_local(path: str) -> FileResponse:
        return send_from_storage(env.root, path, offload=accel)

    @app.api_route("/offload/s3/{key:path}", methods=METHODS)
    async def offload_s3(key: str) -> FileResponse:
        return send_file(f"s3://{env.bucket}/{key}", offload=reproxy)

    @app.api_route("/sendfile/{path:path}", methods=METHODS)
    async def sendfile_route(path: str) -> FileResponse:
        return send_from_storage(env.root, path, offload=sendfile)

    @app.api_route("/signed/{path:path}", methods=METHODS)
    async def signed(path: str) -> FileResponse:
        return send_from_storage(env.root, path, signer=signer)

    @app.api_route("/precompressed/{path:path}", methods=METHODS)
    async def precompressed(path: str) -> FileResponse:
        return send_from_storage(env.root, path, precompressed=True)

    return app
