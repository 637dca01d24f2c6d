"""The storage half of sendfs: sources in, ``Resource`` objects (metadata + ranged reads) out."""

from .base import (
    DEFAULT_CHUNK_SIZE,
    Backend,
    DirEntry,
    FileInfo,
    Resource,
    ResourceBase,
    SignableResource,
)
from .fileobj import FileObjBackend
from .local import LocalBackend
from .paths import safe_join
from .registry import Mount, StorageRegistry, registry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .fsspec import FsspecBackend


def __getattr__(name: str) -> object:
    # FsspecBackend imports fsspec, which is slow to import: load it when asked for.
    if name == "FsspecBackend":
        from .fsspec import FsspecBackend

        return FsspecBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "Backend",
    "DirEntry",
    "FileInfo",
    "FileObjBackend",
    "FsspecBackend",
    "LocalBackend",
    "Mount",
    "Resource",
    "ResourceBase",
    "SignableResource",
    "StorageRegistry",
    "registry",
    "safe_join",
]
