"""``application`` for ASGI servers (uvicorn): the contract app with its async views."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.faces.apps.django_app.settings")
os.environ.setdefault("SENDFS_DJANGO_VIEWS", "async")

from django.core.asgi import get_asgi_application  # type: ignore[import-untyped]

application = get_asgi_application()

# Read the files and fill memory:// now, not at the first request.
from . import views  # noqa: E402, F401
