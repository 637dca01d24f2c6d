"""Front-server offload: the app decides, nginx, Apache or lighttpd sends the bytes.

With an offload, the app still opens the source (a missing file is the app's 404, a path
outside its root the app's refusal) and computes the fields it owns, Content-Type,
Content-Disposition and Cache-Control, but answers with an empty body and one header that
tells the front server what to send:

- :class:`XAccelRedirect` (nginx): ``X-Accel-Redirect: /internal/prefix/relative/path`` for a
  local file under a root, which nginx serves from an ``internal`` location; or, for an object
  in a storage that presigns URLs (S3, Azure, GCS), ``X-Accel-Redirect`` to an internal
  location that proxies the presigned URL given in ``X-Reproxy-URL``. The bucket stays
  private, and nginx sends the bytes.
- :class:`XSendfile` (Apache ``mod_xsendfile``, lighttpd): ``X-Sendfile: /absolute/path`` for
  a local file.

The front server answers Range and conditional requests itself, from its own validators
(nginx's ETag and Last-Modified for a local file, the storage's for a proxied object), so
the app's answer carries none. Sources an offload does not cover (a file outside its root,
a file object, a stream, a storage that cannot presign) are sent by the app as usual.

Everything here is pure: :func:`offload_fields` turns a decision into header fields.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from urllib.parse import quote

from ..storages.base import check_expires
from .fields import Fields, with_caller_fields
from .headers import cache_control

__all__ = [
    "DEFAULT_REPROXY_EXPIRES",
    "Offload",
    "XAccelRedirect",
    "XSendfile",
    "bind_root",
    "local_target",
    "offload_fields",
]

#: Lifetime of the presigned URL nginx proxies, in seconds: nginx uses it at once, and the
#: storage checks a URL's expiry when a request starts, not while its body streams.
DEFAULT_REPROXY_EXPIRES = 60

_UNSAFE = ("\x00", "\r", "\n")


def _check_location(option: str, value: str | None, *, prefix: bool) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.startswith("/") or not value.isascii():
        raise ValueError(
            f"{option} must be an ASCII URI path starting with '/' (percent-encode the "
            f"rest), not {value!r}"
        )
    if any(bad in value for bad in _UNSAFE) or "?" in value or "#" in value:
        raise ValueError(f"{option} {value!r} holds CR, LF, NUL, '?' or '#'")
    if prefix and not value.endswith("/"):
        raise ValueError(
            f"{option} {value!r} must end with '/': the file's path under the root follows it"
        )


def _check_root(value: str | os.PathLike[str] | None) -> str | None:
    if value is None:
        return None
    root = os.fspath(value)
    if "://" in root:
        raise ValueError(
            f"root {root!r} is a URL: a front server sends local files only (objects in a "
            "storage that presigns go through remote=)"
        )
    return os.path.abspath(root)


@dataclass(frozen=True, slots=True)
class XAccelRedirect:
    """Offload to nginx with ``X-Accel-Redirect``.

    Args:
        location: The ``internal`` location that serves ``root`` (``"/_files/"``, ending with
            ``/``): a file at ``root/a/b.pdf`` is answered ``X-Accel-Redirect:
            /_files/a/b.pdf``, percent-encoded. ``None``: local files are sent by the app.
        root: The local directory ``location`` maps. Filled in from the root of
            ``StorageFiles``, ``send_from_storage`` or a mount when not given.
        remote: The ``internal`` location that proxies ``$upstream_http_x_reproxy_url``
            (``"/_reproxy"``): objects in a storage that presigns URLs (S3, Azure, GCS) are
            answered ``X-Accel-Redirect: <remote>`` with the presigned URL in
            ``X-Reproxy-URL``, which nginx does not pass on to the client. The URL carries
            the download name and type (``response-content-disposition`` and
            ``response-content-type`` on S3). A HEAD is answered by the app, from the same
            metadata (a URL presigned for GET does not validate for HEAD). ``None``: such
            objects are sent by the app.
        expires: Lifetime of the presigned URL nginx proxies, in seconds.

    Raises:
        ValueError: Neither ``location`` nor ``remote``, a location that is not an absolute
            ASCII URI path (``location`` must also end with ``/``), a URL as ``root``, or
            ``expires`` not an int from 1 to 604800.

    Security:
        nginx opens ``root`` again by name: put ``disable_symlinks on;`` in the internal
        location so a link swapped in between cannot lead outside it, and mark both
        locations ``internal`` so clients cannot request them directly. The presigned URL
        is a bearer token for ``expires`` seconds; it never reaches the client through a
        correctly configured nginx (see the Scaling out guide).
    """

    location: str | None = None
    root: str | None = None
    remote: str | None = None
    expires: int = DEFAULT_REPROXY_EXPIRES

    def __post_init__(self) -> None:
        if self.location is None and self.remote is None:
            raise ValueError("XAccelRedirect needs location= (local files) or remote= (objects)")
        _check_location("location", self.location, prefix=True)
        _check_location("remote", self.remote, prefix=False)
        object.__setattr__(self, "root", _check_root(self.root))
        check_expires(self.expires)


@dataclass(frozen=True, slots=True)
class XSendfile:
    """Offload to Apache (``mod_xsendfile``) or lighttpd with ``X-Sendfile``.

    Args:
        root: Offload only files under this local directory (filled in from the root of
            ``StorageFiles``, ``send_from_storage`` or a mount when not given); ``None`` with
            no root around: every local file.
        location: Where the front server sees ``root``, when it is elsewhere for it (another
            container's mount point); by default ``root`` itself.
        header: The header's name: ``X-Sendfile``, or ``X-LIGHTTPD-send-file`` for an old
            lighttpd.

    Raises:
        ValueError: ``location`` without ``root``, a relative ``location``, a URL as
            ``root``, or a header name that is not ``X-Sendfile`` or ``X-LIGHTTPD-send-file``.

    Security:
        The front server opens the path by name and follows symbolic links: restrict it to
        ``root`` (``XSendFilePath`` for Apache, ``x-sendfile-docroot`` for lighttpd).
    """

    root: str | None = None
    location: str | None = None
    header: str = "X-Sendfile"

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", _check_root(self.root))
        if self.location is not None:
            if self.root is None:
                raise ValueError("XSendfile(location=) names where the front server sees root=")
            if not os.path.isabs(self.location) or any(c in self.location for c in _UNSAFE):
                raise ValueError(f"location must be an absolute path, not {self.location!r}")
        if self.header.lower() not in ("x-sendfile", "x-lighttpd-send-file"):
            raise ValueError(
                f"header must be X-Sendfile or X-LIGHTTPD-send-file, not {self.header!r}"
            )


#: What ``offload=`` takes.
Offload = XAccelRedirect | XSendfile


def bind_root(offload: Offload, root: str | None) -> Offload:
    """``offload`` with ``root`` filled in when it has none (the root of a mount, say).

    Args:
        offload: The offload as configured.
        root: The local directory its sources were located under, if any.
    """
    if offload.root is not None or root is None or "://" in root:
        return offload
    return dataclasses.replace(offload, root=root)


def local_target(offload: Offload, path: str) -> str | None:
    """The offload header's value for the local file ``path``, or ``None`` if not covered.

    Percent-encoded: nginx decodes the URI, lighttpd and ``mod_xsendfile`` the path.

    Args:
        offload: The offload, its root bound.
        path: The file's path as it was located (not resolved through links: the front
            server is given the same name under its own view of the root).

    Raises:
        ValueError: An ``XAccelRedirect`` location without a root to map it from.
    """
    path = os.path.abspath(path)
    if isinstance(offload, XAccelRedirect):
        if offload.location is None:
            return None
        if offload.root is None:
            raise ValueError(
                f"XAccelRedirect({offload.location!r}) maps a directory to that location: "
                "give root= (StorageFiles, send_from_storage and mounts give theirs)"
            )
    relative = _relative(path, offload.root)
    if relative is None:
        return None
    if isinstance(offload, XSendfile):
        base = offload.location or offload.root
        # lighttpd and mod_xsendfile (XSendFileUnescape, on by default) percent-decode it.
        return quote(
            path if base is None else os.path.join(base, relative),
            safe="/",
            errors="surrogateescape",
        )
    assert offload.location is not None
    return offload.location + quote(
        relative.replace(os.sep, "/"), safe="/", errors="surrogateescape"
    )


def _relative(path: str, root: str | None) -> str | None:
    """``path`` below ``root`` (``""`` for no root), or ``None`` when it is not below it."""
    if root is None:
        return ""
    relative = os.path.relpath(path, root)
    if relative == os.curdir or relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return None
    return relative


def offload_fields(
    offload: Offload,
    target: str,
    *,
    media_type: str,
    disposition: str | None,
    max_age: int | None,
    caller: Fields,
    reproxy_url: str | None = None,
) -> Fields:
    """The fields of an offloaded answer: what the app owns, and the front server's header.

    No ETag, Last-Modified or Accept-Ranges: the front server sends its own (nginx would
    otherwise keep the app's Accept-Ranges beside the storage's).

    Args:
        offload: The offload.
        target: The offload header's value, percent-encoded: an internal URI, or a path for
            X-Sendfile.
        media_type: The Content-Type.
        disposition: The Content-Disposition value, if any; ``None`` for a proxied object
            whose presigned URL makes the storage send it (nginx would send both).
        max_age: For Cache-Control.
        caller: The caller's fields; they cannot override the offload's own.
        reproxy_url: For a proxied object, the presigned URL nginx fetches.
    """
    header = "x-accel-redirect" if isinstance(offload, XAccelRedirect) else offload.header.lower()
    fields: Fields = [
        (b"content-type", media_type.encode("latin-1")),
        (b"cache-control", cache_control(max_age).encode()),
    ]
    if disposition is not None:
        fields.append((b"content-disposition", disposition.encode("latin-1")))
    own: Fields = [(header.encode(), target.encode("ascii")), (b"content-length", b"0")]
    if reproxy_url is not None:
        own.append((b"x-reproxy-url", reproxy_url.encode("latin-1")))
    protect = frozenset(name for name, _ in own)
    return with_caller_fields(fields, caller, protect=protect) + own
