"""The contract's routes; ``SENDFS_DJANGO_VIEWS`` (``sync`` or ``async``) picks the views.

``wsgi.py`` defaults it to ``sync`` and ``asgi.py`` to ``async``; a test may run the sync views
under ASGI too (Django then runs them in threads).
"""

from __future__ import annotations

import os

from django.urls import path  # type: ignore[import-untyped]
from django.views.decorators.http import require_safe  # type: ignore[import-untyped]

from . import views

_CHOSEN = (
    views.ASYNC_VIEWS if os.environ.get("SENDFS_DJANGO_VIEWS") == "async" else views.SYNC_VIEWS
)

# GET and HEAD only (require_safe answers 405 to the rest).
urlpatterns = [
    path("ping", require_safe(views.ping)),
    path("local/<str:name>", require_safe(_CHOSEN["local"])),
    path("files/<path:path>", require_safe(_CHOSEN["files"])),
    path("bytes/<str:name>", require_safe(_CHOSEN["bytes"])),
    path("memory/<str:name>", require_safe(_CHOSEN["memory"])),
    path("s3/<path:key>", require_safe(_CHOSEN["s3"])),
    path("az/<str:name>", require_safe(_CHOSEN["az"])),
    path("attachment/<str:name>", require_safe(_CHOSEN["attachment"])),
    path("missing", require_safe(_CHOSEN["missing"])),
    path("offload/local/<path:path>", require_safe(_CHOSEN["offload_local"])),
    path("offload/s3/<path:key>", require_safe(_CHOSEN["offload_s3"])),
    path("sendfile/<path:path>", require_safe(_CHOSEN["sendfile"])),
    path("signed/<path:path>", require_safe(_CHOSEN["signed"])),
    path("precompressed/<path:path>", require_safe(_CHOSEN["precompressed"])),
]
