"""The contract app on the Litestar face.

``uvicorn --factory tests.faces.apps.litestar_app:create_app``. ``/files/...`` is a mounted
:class:`~sendfs.StorageFiles` (:func:`sendfs.litestar.storage_files`); the other routes return
the face's responses from Litestar handlers. Shutdown closes the storage sessions and logs
:data:`SESSIONS_CLOSED`.
"""

from __future__ import annotations

import io
import logging

from litestar import Litestar, route
from litestar.enums import HttpMethod
from litestar.params import FromPath

from sendfs import registry
from sendfs.litestar import FileResponse, send_file, send_from_storage, storage_files
from tests.faces.apps.common import ATTACHMENT_PREFIX, MEMORY_ROOT, FacesEnv

METHODS = [HttpMethod.GET, HttpMethod.HEAD]
#: Logged (to uvicorn's error log) once the shutdown hook has closed the storage sessions.
SESSIONS_CLOSED = "sendfs faces (litestar): storage sessions closed"


async def close_sessions() -> None:
    """Close the default registry's storage sessions (s3fs's aiohttp client), and say so."""
    await registry.aclose()
    logging.getLogger("uvicorn.error").info(SESSIONS_CLOSED)


def create_app() -> Litestar:
    """The app, configured from the environment (see :mod:`tests.faces.apps.common`)."""
    env = FacesEnv.from_env()

    @route("/ping", http_method=METHODS)
    async def ping() -> str:
        return env.token

    @route("/local/{name:str}", http_method=METHODS)
    async def local(name: FromPath[str]) -> FileResponse:
        return send_file(env.local(name))

    @route("/bytes/{name:str}", http_method=METHODS)
    async def blob(name: FromPath[str]) -> FileResponse:
        return send_file(io.BytesIO(env.blobs[name]), download_name=name)

    @route("/memory/{name:str}", http_method=METHODS)
    async def memory(name: FromPath[str]) -> FileResponse:
        return send_file(f"{MEMORY_ROOT}/{name}")

    @route("/s3/{key:path}", http_method=METHODS)
    async def s3(key: FromPath[str]) -> FileResponse:
        # Litestar's path parameters start with a slash.
        return send_file(f"s3://{env.bucket}/{key.lstrip('/')}")

    @route("/az/{name:str}", http_method=METHODS)
    async def az(name: FromPath[str]) -> FileResponse:
        url, options = env.az(name)
        return send_file(url, storage_options=options)

    @route("/attachment/{name:str}", http_method=METHODS)
    async def attachment(name: FromPath[str]) -> FileResponse:
        return send_file(
            env.local(name), as_attachment=True, download_name=ATTACHMENT_PREFIX + name
        )

    @route("/missing", http_method=METHODS)
    async def missing() -> FileResponse:
        return send_file(env.local("no-such-file"))

    accel, reproxy, sendfile, signer = env.accel(), env.reproxy(), env.sendfile(), env.signer()

    # Litestar's path parameters start with a slash: lstrip("/") gives the relative path.
    @route("/offload/local/{path:path}", http_method=METHODS)
    async def offload_local(path: FromPath[str]) -> FileResponse:
        return send_from_storage(env.root, path.lstrip("/"), offload=accel)

    @route("/offload/s3/{key:path}", http_method=METHODS)
    async def offload_s3(key: FromPath[str]) -> FileResponse:
        return send_file(f"s3://{env.bucket}/{key.lstrip('/')}", offload=reproxy)

    @route("/sendfile/{path:path}", http_method=METHODS)
    async def sendfile_route(path: FromPath[str]) -> FileResponse:
        return send_from_storage(env.root, path.lstrip("/"), offload=sendfile)

    @route("/signed/{path:path}", http_method=METHODS)
    async def signed(path: FromPath[str]) -> FileResponse:
        return send_from_storage(env.root, path.lstrip("/"), signer=signer)

    @route("/precompressed/{path:path}", http_method=METHODS)
    async def precompressed(path: FromPath[str]) -> FileResponse:
        return send_from_storage(env.root, path.lstrip("/"), precompressed=True)

    return Litestar(
        route_handlers=[
            ping,
            local,
            blob,
            memory,
            s3,
            az,
            attachment,
            missing,
            offload_local,
            offload_s3,
            sendfile_route,
            signed,
            precompressed,
            storage_files("/files", env.root),
        ],
        on_shutdown=[close_sessions],
    )
