"""The contract app on the Flask face, for WSGI servers.

``gunicorn 'tests.faces.apps.flask_app:create_app()'`` or
``waitress-serve --call tests.faces.apps.flask_app:create_app``; settings and routes are
those of every contract app (see :mod:`tests.faces.apps.common`). Flask adds HEAD to GET routes.
"""

from __future__ import annotations

import io

from flask import Flask, abort
from werkzeug.wrappers import Response

from sendfs.flask import send_file, send_from_storage
from tests.faces.apps.common import ATTACHMENT_PREFIX, MEMORY_ROOT, FacesEnv

__all__ = ["create_app"]


def create_app() -> Flask:
    """The app, configured from the environment (see :mod:`tests.faces.apps.common`)."""
    env = FacesEnv.from_env()
    app = Flask(__name__)

    @app.get("/ping")
    def ping() -> str:
        return env.token

    @app.get("/local/<name>")
    def local(name: str) -> Response:
        return send_file(env.local(name))

    @app.get("/files/<path:path>")
    def files(path: str) -> Response:
        return send_from_storage(env.root, path)

    @app.get("/bytes/<name>")
    def blob(name: str) -> Response:
        if name not in env.blobs:
            abort(404)
        return send_file(io.BytesIO(env.blobs[name]), download_name=name)

    @app.get("/memory/<name>")
    def memory(name: str) -> Response:
        return send_file(f"{MEMORY_ROOT}/{name}")

    @app.get("/s3/<path:key>")
    def s3(key: str) -> Response:
        return send_file(f"s3://{env.bucket}/{key}")

    @app.get("/az/<name>")
    def az(name: str) -> Response:
        url, options = env.az(name)
        return send_file(url, storage_options=options)

    @app.get("/attachment/<name>")
    def attachment(name: str) -> Response:
        return send_file(
            env.local(name), as_attachment=True, download_name=ATTACHMENT_PREFIX + name
        )

    @app.get("/missing")
    def missing() -> Response:
        return send_file(env.local("no-such-file"))

    accel, reproxy, sendfile, signer = env.accel(), env.reproxy(), env.sendfile(), env.signer()

    @app.get("/offload/local/<path:path>")
    def offload_local(path: str) -> Response:
        return send_from_storage(env.root, path, offload=accel)

    @app.get("/offload/s3/<path:key>")
    def offload_s3(key: str) -> Response:
        return send_file(f"s3://{env.bucket}/{key}", offload=reproxy)

    @app.get("/sendfile/<path:path>")
    def sendfile_route(path: str) -> Response:
        return send_from_storage(env.root, path, offload=sendfile)

    @app.get("/signed/<path:path>")
    def signed(path: str) -> Response:
        return send_from_storage(env.root, path, signer=signer)

    @app.get("/precompressed/<path:path>")
    def precompressed(path: str) -> Response:
        return send_from_storage(env.root, path, precompressed=True)

    return app
