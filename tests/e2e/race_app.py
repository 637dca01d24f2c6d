"""The app the rename-race test serves under uvicorn: ``StorageFiles`` over one directory.

``uvicorn --factory tests.e2e.race_app:create_app`` with ``SENDFS_RACE_ROOT`` set to the
directory. Listings are on, so directory requests go through the confined listing too. Records
of the ``sendfs`` logger at WARNING and above reach the server's output as
``WARNING sendfs ...`` lines, which the test looks for.
"""

from __future__ import annotations

import logging
import os

from sendfs import StorageFiles

__all__ = ["create_app"]


def create_app() -> StorageFiles:
    """``StorageFiles(SENDFS_RACE_ROOT, listing=True)``, with WARNING records printed."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    return StorageFiles(os.environ["SENDFS_RACE_ROOT"], listing=True)
