"""``application`` for WSGI servers (gunicorn): the contract app with its sync views."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.faces.apps.django_app.settings")
os.environ.setdefault("SENDFS_DJANGO_VIEWS", "sync")

from django.core.wsgi import get_wsgi_application  # type: ignore[import-untyped]

application = get_wsgi_application()

# Read the files and fill memory:// now, not at the first request.
from . import views  # noqa: E402, F401
