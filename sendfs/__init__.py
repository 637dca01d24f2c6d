"""sendfs: serve downloads from any storage in ASGI apps, with correct HTTP."""

from .__about__ import __version__
from .events import DownloadEvent, DownloadHook
from .exceptions import (
    BackendError,
    MissingDependency,
    RedirectUnavailable,
    SendfsError,
    SourceChanged,
    SourceForbidden,
    SourceIsDirectory,
    SourceNotFound,
    StorageBusy,
    UnknownScheme,
    UnsafePath,
)
from .responses import FileResponse, StorageFiles, send_file, send_from_storage, send_zip
from .responses.links import LinkSigner
from .responses.offload import XAccelRedirect, XSendfile
from .responses.presigned import presigned_url
from .storages import Backend, FileInfo, Resource, ResourceBase, StorageRegistry, registry
from .storages.streams import Stream

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .storages.archive import ZipEntry


def __getattr__(name: str) -> object:
    # The zip writer is loaded with the first archive, not with sendfs.
    if name == "ZipEntry":
        from .storages.archive import ZipEntry

        return ZipEntry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Backend",
    "BackendError",
    "DownloadEvent",
    "DownloadHook",
    "FileInfo",
    "FileResponse",
    "LinkSigner",
    "MissingDependency",
    "RedirectUnavailable",
    "Resource",
    "ResourceBase",
    "SendfsError",
    "SourceChanged",
    "SourceForbidden",
    "SourceIsDirectory",
    "SourceNotFound",
    "StorageBusy",
    "StorageFiles",
    "StorageRegistry",
    "Stream",
    "UnknownScheme",
    "UnsafePath",
    "XAccelRedirect",
    "XSendfile",
    "ZipEntry",
    "__version__",
    "presigned_url",
    "registry",
    "send_file",
    "send_from_storage",
    "send_zip",
]
