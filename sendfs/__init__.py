"""sendfs: serve downloads from any storage in ASGI apps, with correct HTTP."""

from .__about__ import __version__
from .exceptions import (
    BackendError,
    MissingDependency,
    SendfsError,
    SourceChanged,
    SourceForbidden,
    SourceNotFound,
    UnknownScheme,
    UnsafePath,
)
from .responses import FileResponse, send_file
from .storages import Backend, FileInfo, Resource, ResourceBase, StorageRegistry, registry

__all__ = [
    "Backend",
    "BackendError",
    "FileInfo",
    "FileResponse",
    "MissingDependency",
    "Resource",
    "ResourceBase",
    "SendfsError",
    "SourceChanged",
    "SourceForbidden",
    "SourceNotFound",
    "StorageRegistry",
    "UnknownScheme",
    "UnsafePath",
    "__version__",
    "registry",
    "send_file",
]
