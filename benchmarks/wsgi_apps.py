"""The contender WSGI apps of the Flask and Django sections, run by gunicorn.

gunicorn imports them as ``benchmarks.wsgi_apps:<factory>()``; like the ASGI apps they take
the local file from ``SENDFS_BENCH_BIG`` and the S3 object from ``SENDFS_BENCH_S3``:

- ``flask_sendfs_app``: ``sendfs.flask.send_file`` for ``/big`` and ``/s3``;
- ``flask_plain_app``: what a Flask user writes without sendfs: ``flask.send_file`` for
  ``/big``, and for ``/s3`` a hand-written relay: boto3 ``get_object`` (one client made with
  the app) and ``StreamingBody.iter_chunks(1 MiB)`` in a ``Response`` generator;
- ``django_sendfs_app``: ``sendfs.django.send_file(request, path)`` for ``/big``;
- ``django_plain_app``: Django's ``FileResponse(open(path, "rb"))`` for ``/big``.

Every app has ``/ping``. The Django apps configure settings in the process (no project): no
middleware, no installed apps, ``DEBUG`` off; their URLconf is this module's
:data:`urlpatterns`, filled by the factory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask
from flask import send_file as flask_send_file
from werkzeug.wrappers import Response

from benchmarks.data import RELAY_CHUNK, s3_location

__all__ = [
    "django_plain_app",
    "django_sendfs_app",
    "flask_plain_app",
    "flask_sendfs_app",
    "urlpatterns",
]

#: The Django URLconf (``ROOT_URLCONF`` is this module), set by the factory.
urlpatterns: list[Any] = []


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} must be set to build the benchmark apps")
    return value


def _flask(name: str) -> Flask:
    app = Flask(name)

    @app.get("/ping")
    def ping() -> str:
        return "ok"

    return app


def flask_sendfs_app() -> Flask:
    """The Flask face: ``sendfs.flask.send_file(path)`` and ``send_file("s3://...")``."""
    from sendfs.flask import send_file

    big, s3 = _env("SENDFS_BENCH_BIG"), os.environ.get("SENDFS_BENCH_S3")
    app = _flask("sendfs_flask")

    @app.get("/big")
    def big_file() -> Response:
        return send_file(big)

    if s3:

        @app.get("/s3")
        def s3_object() -> Response:
            return send_file(s3)

    return app


def _boto3_relay(url: str) -> Callable[[], Response]:
    """The view users write without sendfs: boto3 ``get_object``, ``iter_chunks(1 MiB)``."""
    import boto3

    bucket, key = s3_location(url)
    client = boto3.client("s3")

    def relay() -> Response:
        answer = client.get_object(Bucket=bucket, Key=key)
        body = answer["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(RELAY_CHUNK)
            finally:
                body.close()

        headers = {"Content-Length": str(answer["ContentLength"])}
        return Response(chunks(), mimetype=answer["ContentType"], headers=headers)

    return relay


def flask_plain_app() -> Flask:
    """Flask without sendfs: ``flask.send_file(path)``, and the boto3 relay for S3."""
    big, s3 = _env("SENDFS_BENCH_BIG"), os.environ.get("SENDFS_BENCH_S3")
    app = _flask("plain_flask")

    @app.get("/big")
    def big_file() -> Response:
        return flask_send_file(big)

    if s3:
        app.add_url_rule("/s3", "s3_object", _boto3_relay(s3), methods=["GET"])
    return app


def _django(big_view: Callable[[Any, str], Any]) -> Any:
    """A Django WSGI application: ``/ping`` and ``/big`` served by ``big_view(request, path)``."""
    import django  # type: ignore[import-untyped]
    from django.conf import settings  # type: ignore[import-untyped]
    from django.core.wsgi import get_wsgi_application  # type: ignore[import-untyped]
    from django.http import HttpResponse  # type: ignore[import-untyped]
    from django.urls import path  # type: ignore[import-untyped]

    big = _env("SENDFS_BENCH_BIG")
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-only",
        ALLOWED_HOSTS=["127.0.0.1"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        USE_TZ=True,
    )
    django.setup()
    urlpatterns[:] = [
        path("ping", lambda request: HttpResponse(b"ok", content_type="text/plain")),
        path("big", lambda request: big_view(request, big)),
    ]
    return get_wsgi_application()


def django_sendfs_app() -> Any:
    """The Django face: ``sendfs.django.send_file(request, path)``."""
    from sendfs.django import send_file

    return _django(send_file)


def django_plain_app() -> Any:
    """Django without sendfs: ``FileResponse(open(path, "rb"))``."""
    from django.http import FileResponse

    return _django(lambda request, path: FileResponse(open(path, "rb")))
