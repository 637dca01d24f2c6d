"""The HTTP half of sendfs: ``FileResponse`` and ``send_file``."""

from .file import FileResponse
from .send import send_file

__all__ = ["FileResponse", "send_file"]
