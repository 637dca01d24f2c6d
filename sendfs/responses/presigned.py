"""``presigned_url``: a storage URL for one object, outside any request.

The counterpart of ``redirect=True`` for code that hands the URL out itself (in a JSON answer,
an e-mail, a page): the storage signs a plain GET that answers with the download name and
type a response of sendfs would send (S3 ``response-content-disposition`` and
``response-content-type``, Azure SAS ``rscd`` and ``rsct``, GCS through gcsfs's ``sign()``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypedDict

import anyio

from ..events import describe_source
from ..exceptions import RedirectUnavailable
from ..storages.base import Resource, SignableResource
from ..storages.registry import Resolved, StorageRegistry
from ..storages.registry import registry as default_registry
from .core import DEFAULT_EXPIRES, check_expires
from .fields import disposition_value
from .headers import content_type

__all__ = ["PresignOptions", "presigned_url"]


class PresignOptions(TypedDict, total=False):
    """The options of :func:`presigned_url`, for its twins in the Flask and Django faces.

    Attributes:
        download_name: The download name; by default the object's own.
        mimetype: The Content-Type; by default guessed from the names.
        as_attachment: ``Content-Disposition: attachment`` rather than ``inline``.
        expires: Lifetime of the URL in seconds (1 to 604800).
        storage_options: Options for the backend (credentials, ``endpoint_url``...).
        registry: The storage registry (default: the global one).
    """

    download_name: str | None
    mimetype: str | None
    as_attachment: bool
    expires: int
    storage_options: Mapping[str, Any] | None
    registry: StorageRegistry | None


async def presigned_url(
    source: str | os.PathLike[str] | Resolved,
    *,
    download_name: str | None = None,
    mimetype: str | None = None,
    as_attachment: bool = False,
    expires: int = DEFAULT_EXPIRES,
    storage_options: Mapping[str, Any] | None = None,
    registry: StorageRegistry | None = None,
) -> str:
    """A presigned URL that downloads ``source`` straight from its storage.

    The object is opened once (one metadata request), so the URL names the version that was
    there when the storage pins versions (S3 ``versionId``, Azure ``versionid``), and its
    Content-Type and Content-Disposition are chosen exactly as a download of it would
    choose them. Nothing is read: the bytes go from the storage to whoever holds the URL.

    Example::

        from sendfs import presigned_url

        url = await presigned_url(
            "s3://reports/2024/q3.pdf", download_name="Q3 report.pdf", as_attachment=True
        )
        return JSONResponse({"download": url})

    Args:
        source: A URL of a storage that signs (``s3://bucket/key``, ``az://container/blob``,
            ``gs://bucket/key``, a mount of one), or what ``registry.locate(root, path)``
            returned.
        download_name: The download name; by default the object's own name. Non-ASCII names are
            sent as an RFC 8187 ``filename*`` with an ASCII fallback.
        mimetype: The Content-Type; by default guessed from the download name, then the
            object's name, then what the storage recorded, else ``application/octet-stream``.
        as_attachment: Ask the browser to save the file (``attachment``) rather than show it
            (``inline``, with the name when one is known).
        expires: Lifetime of the URL in seconds, from 1 to 604800 (S3's maximum).
        storage_options: Options for the backend (credentials, ``endpoint_url``...).
        registry: The storage registry; by default :data:`sendfs.storages.registry`.

    Returns:
        The URL.

    Raises:
        ValueError: ``expires`` is not an int from 1 to 604800 (checked before any I/O).
        sendfs.exceptions.RedirectUnavailable: Only the app can send ``source`` (a local
            path, a file object: refused before any I/O), or the storage cannot sign with
            its credentials (anonymous access, a SAS token, a filesystem without ``sign()``).
        sendfs.exceptions.SourceNotFound: No such object (or it is a directory).
        sendfs.exceptions.SourceForbidden: The storage refused access.
        sendfs.exceptions.BackendError: The storage failed, or failed to sign.
        sendfs.exceptions.UnknownScheme: No backend serves the URL's scheme.
        sendfs.exceptions.MissingDependency: The backend's optional package is missing.

    Security:
        A presigned URL is a bearer token: anyone who holds it can read the object until it
        expires, and it ends up in browser histories, proxy logs and ``Referer`` headers.
        Keep ``expires`` short, hand the URL only to the user it is for, and never log it.
        ``source`` is trusted: to sign a user-chosen object, pass
        ``registry.locate(root, user_path)``, which refuses paths that leave ``root``.
        Other fsspec filesystems than GCS sign without the name and type: their URLs serve
        the object as it is stored.
    """
    check_expires(expires)
    registry = registry or default_registry
    resolved = registry.resolve(source, storage_options=storage_options)
    if registry.serves_locally(resolved):
        raise RedirectUnavailable(
            f"{describe_source(source)} can only be sent by the app: presigned URLs need a "
            "storage that signs them (s3://, az://, gs://...)"
        )
    resource = await registry.open(resolved)
    try:
        url = await _presign(resource, download_name, mimetype, as_attachment, expires)
    finally:
        with anyio.CancelScope(shield=True):
            await resource.aclose()
    if url is None:
        raise RedirectUnavailable(
            f"the storage cannot presign {describe_source(source)} with its credentials"
        )
    return url


async def _presign(
    resource: Resource,
    filename: str | None,
    media_type: str | None,
    as_attachment: bool,
    expires: int,
) -> str | None:
    """The URL for an opened ``resource``, with the type and disposition a download sends."""
    if not isinstance(resource, SignableResource):
        return None
    info = resource.info
    chosen = content_type(
        mimetype=media_type, names=(filename, info.name), stored=info.content_type
    )
    kind = "attachment" if as_attachment else None
    disposition = disposition_value(kind, filename, info.name, chosen)
    return await resource.presign(
        expires=expires, content_type=chosen, content_disposition=disposition
    )
