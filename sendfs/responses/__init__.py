"""The HTTP half of sendfs: ``FileResponse`` and ``send_file``."""

from .file import FileResponse
from .send import send_file, send_from_storage, send_zip
from .static import StorageFiles

__all__ = ["FileResponse", "StorageFiles", "send_file", "send_from_storage", "send_zip"]
