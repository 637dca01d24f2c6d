"""Settings of the Django contract app; its files and bucket come from ``SENDFS_FACES_*``."""

from __future__ import annotations

from typing import Any

SECRET_KEY = "sendfs-faces-contract-app"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "tests.faces.apps.django_app.urls"
INSTALLED_APPS: list[str] = []
# CommonMiddleware adds Content-Length to plain responses: the downloads must survive it.
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES: dict[str, Any] = {}
USE_TZ = True
