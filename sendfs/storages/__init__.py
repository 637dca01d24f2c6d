"""The storage half of sendfs: sources in, ``Resource`` objects (metadata + ranged reads) out."""

from .base import DEFAULT_CHUNK_SIZE, Backend, FileInfo, Resource, ResourceBase
from .fileobj import FileObjBackend
from .fsspec import FsspecBackend
from .local import LocalBackend
from .paths import safe_join
from .registry import Mount, StorageRegistry, registry

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "Backend",
    "FileInfo",
    "FileObjBackend",
    "FsspecBackend",
    "LocalBackend",
    "Mount",
    "Resource",
    "ResourceBase",
    "StorageRegistry",
    "registry",
    "safe_join",
]
