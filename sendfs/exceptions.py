"""The errors sendfs raises.

Every error is a :class:`SendfsError`::

    SendfsError
    ├── SourceNotFound        the source does not exist (HTTP 404)
    │   ├── SourceIsDirectory the source names a directory, not a file (HTTP 404)
    │   └── UnsafePath        a user-supplied path tried to leave its root (HTTP 404)
    ├── SourceForbidden       the storage refused access (HTTP 403)
    ├── UnknownScheme         no backend is registered for a URL scheme (also a ValueError)
    ├── MissingDependency     an optional dependency is not installed (also an ImportError)
    ├── RedirectUnavailable   redirect="required" but the storage cannot presign this source
    └── BackendError          the storage failed or could not be reached (HTTP 502)
        ├── SourceChanged     the object changed while it was being read (HTTP 503)
        └── StorageBusy       the storage did not start answering in time (HTTP 503)

Errors of the libraries underneath (``OSError``, botocore, aiohttp) are mapped into this tree at
the backend boundary with ``raise ... from exc``, so the original stays on ``__cause__``. The
HTTP status codes above are applied in exactly one place, :mod:`sendfs.responses.errors`.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "MissingDependency",
    "RedirectUnavailable",
    "SendfsError",
    "SourceChanged",
    "SourceForbidden",
    "SourceIsDirectory",
    "SourceNotFound",
    "StorageBusy",
    "UnknownScheme",
    "UnsafePath",
]


class SendfsError(Exception):
    """The base of every error sendfs raises."""


class SourceNotFound(SendfsError):
    """The source does not exist, or names a directory rather than a file."""


class SourceIsDirectory(SourceNotFound):
    """The source names a directory (or an S3 prefix), not a file.

    Static-file apps use it to redirect ``/docs`` to ``/docs/`` or to list the directory.
    """


class UnsafePath(SourceNotFound):
    """A user-supplied path would leave its root (``..``, absolute, NUL, encoded separators...).

    It subclasses :class:`SourceNotFound` so that it is answered exactly like a missing file:
    a 404 that tells an attacker nothing about what exists outside the root.
    """


class SourceForbidden(SendfsError):
    """The storage refused access to the source (file permissions, S3 AccessDenied)."""


class UnknownScheme(SendfsError, ValueError):
    """No backend is registered for the scheme of a URL.

    The message suggests the served schemes it may be a typo of (``s4://`` gets ``'s3'``).
    """


class MissingDependency(SendfsError, ImportError):
    """A backend needs an optional dependency that is not installed.

    The message names what to install: sendfs's extra for S3 and Azure
    (``pip install 'sendfs[s3]'``), else the package fsspec needs (``pip install gcsfs``).
    """


class RedirectUnavailable(SendfsError, ValueError):
    """``redirect="required"`` was asked of a source the storage cannot presign.

    Raised by ``send_file`` for sources that can never sign (local paths, file objects), and by
    the response for storages that cannot sign with their credentials (anonymous access).
    It is a configuration error: no HTTP status is chosen for it, it propagates as a 500.
    """


class BackendError(SendfsError):
    """The storage failed: unreachable, timed out, or answered with an unexpected error."""


class SourceChanged(BackendError):
    """The object changed while it was being served (its ETag, version or size moved)."""


class StorageBusy(BackendError):
    """The storage did not start answering within the response's ``storage_timeout``.

    Most often every connection of the storage's pool is taken (by other downloads, some of
    them perhaps from clients that stopped reading); a retry a few seconds later may get one.
    """
