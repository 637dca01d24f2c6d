"""Local files: ``str`` and ``os.PathLike`` paths, and ``file://`` URLs.

The file is opened and ``fstat``-ed in one worker-thread call when the resource opens, so the
metadata describes exactly the file that is then read (a rename in between cannot swap it).
Reads are positional (``os.pread``) in worker threads; the event loop never touches the disk.
A plain GET of a small file (:data:`SMALL_FILE`) is opened and read in that same call: one
thread hop per request instead of two.

Security: this backend serves whatever path it is given. Never pass a user-supplied path to it;
join user paths onto a root with :func:`sendfs.storages.paths.safe_join` (what
``send_from_storage`` does). With the ``root`` option (which mounts, ``locate`` and
``send_from_storage`` set), the path is resolved beneath a descriptor of the root
(:mod:`sendfs.storages.confined`): symbolic links that stay inside the root are served, those
leading out are refused (404), and no rename racing the open can make it leave the root. Such
a file is never handed to the server by path (``pathsend``), which would reopen it by name.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import AsyncIterator
from typing import Any

from ..exceptions import (
    BackendError,
    SourceChanged,
    SourceForbidden,
    SourceIsDirectory,
    SourceNotFound,
    UnsafePath,
)
from . import threads
from .base import DirEntry, FileInfo, ReadHint, ResourceBase
from .confined import open_beneath, relative_to_root, stat_beneath
from .metadata import derived_etag, to_utc_datetime
from .paths import shorten

__all__ = ["SMALL_FILE", "LocalBackend", "LocalResource", "is_within"]

#: Files up to this many bytes are read whole when opened for a plain GET.
SMALL_FILE = 64 * 1024

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_OPEN_FLAGS |= getattr(os, "O_BINARY", 0)
_LIST_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def is_within(path: str, root: str) -> bool:
    """Tell whether ``path``, symbolic links resolved, lies inside the directory ``root``.

    A check by name, answered for the moment it runs: opening the path afterwards by name is
    a race a rename can win. Confined opens go through
    :func:`~sendfs.storages.confined.open_beneath` instead.

    Args:
        path: The candidate path.
        root: The directory it must stay in (``/srv/files`` does not contain
            ``/srv/files-private/x``: the comparison is by whole path segments).
    """
    real_root = os.path.realpath(root)
    real_path = os.path.realpath(path)
    return real_path == real_root or real_path.startswith(real_root.rstrip(os.sep) + os.sep)


def _open_regular_file(path: str, root: str | None = None) -> tuple[str, int, os.stat_result]:
    """Open ``path`` read-only and stat it; refuse anything but a regular file.

    ``O_NONBLOCK`` keeps a FIFO from blocking the worker thread forever; it has no effect on
    regular files. With ``root``, ``path`` must be ``root`` joined with a relative path, which
    is opened beneath a descriptor of ``root`` (:func:`~sendfs.storages.confined.open_beneath`):
    no symbolic link and no concurrent rename can lead the open out of the root. Returns the
    path opened (symbolic links resolved, with ``root``), the descriptor and its stat.

    Raises:
        UnsafePath: With ``root``, the path leads out of it.
        OSError: The open failed, or the file is a directory or no regular file.
    """
    if root is None:
        fd = os.open(path, _OPEN_FLAGS)
    else:
        fd = open_beneath(root, relative_to_root(path, root), _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(path) if stat.S_ISDIR(st.st_mode) else FileNotFoundError(path)
        opened = path if root is None else _descriptor_path(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return opened, fd, st


def _descriptor_path(fd: int, path: str) -> str:
    """The path of the file open as ``fd``, links resolved: to name it, never to reopen it."""
    try:
        named = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(path)
    return named if named.startswith("/") else os.path.realpath(path)


def _open_small_file(
    path: str, root: str | None = None
) -> tuple[str, int, os.stat_result, bytes | None]:
    """:func:`_open_regular_file`, and the whole content when the file is small.

    The content is ``None`` for a larger file, and for one that changed between the ``fstat``
    and the read: it is then read chunk by chunk, which notices the change.
    """
    opened, fd, st = _open_regular_file(path, root)
    if st.st_size > SMALL_FILE:
        return opened, fd, st, None
    try:
        data = _read_at(fd, st.st_size, 0)
        after = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    unchanged = len(data) == st.st_size and (after.st_size, after.st_mtime_ns) == (
        st.st_size,
        st.st_mtime_ns,
    )
    return opened, fd, st, data if unchanged else None


def _read_at(fd: int, size: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - Windows has no pread
    return os.read(fd, size)  # pragma: no cover


def _read_chunk(
    fd: int, size: int, offset: int, last: bool
) -> tuple[bytes, tuple[int, int] | None]:
    """Read a chunk; with ``last``, also the file's (size, mtime_ns) after it, in the same hop.

    A file truncated or rewritten in place during a download is caught by comparing that stamp
    with the one taken at open time.
    """
    data = _read_at(fd, size, offset)
    if not last:
        return data, None
    st = os.fstat(fd)
    return data, (st.st_size, st.st_mtime_ns)


def map_os_error(exc: OSError, source: object) -> Exception:
    """Map an ``OSError`` from the file system into the sendfs error tree.

    Args:
        exc: The error raised by ``os.open``, ``os.stat`` and friends.
        source: What was being opened, for the message.

    Returns:
        The sendfs error to raise ``from exc``.
    """
    if isinstance(source, str | bytes | os.PathLike):
        shown = shorten(os.fsdecode(source))
    else:
        shown = shorten(repr(source))
    if isinstance(exc, IsADirectoryError):
        return SourceIsDirectory(f"{shown!r} is a directory")
    if isinstance(exc, NotADirectoryError):
        return SourceNotFound(f"{shown!r} is not a directory (or a path through a file)")
    if isinstance(exc, FileNotFoundError):
        return SourceNotFound(f"{shown!r} does not exist")
    if exc.errno in (errno.ENAMETOOLONG, errno.ELOOP):
        # A name no file can have, or links that loop: nothing to serve, and nothing failed.
        return SourceNotFound(f"{shown!r} names no file ({os.strerror(exc.errno)})")
    if isinstance(exc, PermissionError):
        return SourceForbidden(f"permission denied for {shown!r}")
    return BackendError(f"cannot read {shown!r}: {exc.strerror or exc}")


class LocalResource(ResourceBase):
    """An open local file.

    Args:
        path: The file's path (for messages, and for servers that can send a file by path).
        fd: An open, read-only descriptor the resource now owns.
        st: The ``fstat`` result of ``fd``.
        name: The download name, when it differs from the base name of ``path``.
        content: The whole file, read with ``st``; ranges are then served from it.
        sendable_by_path: Whether a server may be handed ``path`` to open and send itself.
            False for a file opened confined to a root: a server reopening it by name could
            be led out of the root by a rename in between.
    """

    def __init__(
        self,
        path: str,
        fd: int,
        st: os.stat_result,
        name: str | None = None,
        content: bytes | None = None,
        *,
        sendable_by_path: bool = True,
    ) -> None:
        self.path = os.path.abspath(path)
        #: Whether ``path`` may be handed to the server (``http.response.pathsend``).
        self.sendable_by_path = sendable_by_path
        self._stamp = (st.st_size, st.st_mtime_ns)
        self._fd: int | None = fd
        self._content = content
        self._info = FileInfo(
            size=st.st_size,
            mtime=to_utc_datetime(st.st_mtime),
            etag=derived_etag(st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size),
            name=name or os.path.basename(path) or None,
        )

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        """Yield ``[start, stop)`` of the file, reading in worker threads."""
        fd = self._fd
        if fd is None:
            raise BackendError(f"{self.path!r} is closed")
        end = self.range_end(stop)
        if self._content is not None:
            content = self._content
            for offset in range(start, end, chunk_size):
                yield content[offset : min(offset + chunk_size, end)]
            return
        offset = start
        while offset < end:
            want = min(chunk_size, end - offset)
            last = offset + want >= end
            try:
                data, stamp = await threads.run_sync(_read_chunk, fd, want, offset, last)
            except OSError as exc:
                raise map_os_error(exc, self.path) from exc
            if not data or (stamp is not None and stamp != self._stamp):
                # Caught before the last chunk goes out: the client sees an aborted response.
                raise SourceChanged(f"{self.path!r} changed while it was being read")
            offset += len(data)
            yield data

    def fileno(self) -> int:
        """The open descriptor (for a server's ``wsgi.file_wrapper``: duplicate it).

        Raises:
            BackendError: The resource is closed.
        """
        if self._fd is None:
            raise BackendError(f"{self.path!r} is closed")
        return self._fd

    async def aclose(self) -> None:
        """Close the descriptor (once)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class LocalBackend:
    """The backend for local paths and ``file://`` URLs (already turned into paths)."""

    async def open(self, source: Any, **options: Any) -> LocalResource:
        """Open a local regular file.

        Args:
            source: A ``str`` or ``os.PathLike`` path.
            **options: ``root``: a directory the file must stay inside, symbolic links
                included (set by mounts, ``locate`` and ``send_from_storage``); ``source``
                must then be ``root`` joined with a relative path. Others are ignored.

        Raises:
            SourceNotFound: No such file, or a FIFO or device.
            SourceIsDirectory: A directory.
            UnsafePath: With ``root``, the path leads outside it through a symbolic link (or
                ``..``), the links loop, or ``source`` does not start with ``root``.
            SourceForbidden: The process may not read it.
            BackendError: Any other operating-system error.

        Security:
            With ``root``, the file is resolved beneath a descriptor of ``root``, so a rename
            racing the open cannot lead it out (the race is lost with a 404, see
            :mod:`sendfs.storages.confined`). The resource then refuses ``pathsend``.
        """
        return await self._open(source, options, read_small=False)

    async def open_hinted(self, source: Any, hint: ReadHint, **options: Any) -> LocalResource:
        """Open a local regular file for a GET; a small one is read in the same thread hop.

        Conditional GETs (the hint carries preconditions) are opened plainly: they are most
        often answered 304, without the bytes.

        Args:
            source: A ``str`` or ``os.PathLike`` path.
            hint: The request's range and preconditions.
            **options: As for :meth:`open`.

        Raises:
            SendfsError: As :meth:`open`.
        """
        plain = hint.if_match is None and hint.if_none_match is None
        plain = plain and hint.if_modified_since is None and hint.if_unmodified_since is None
        return await self._open(source, options, read_small=plain)

    async def _open(
        self, source: Any, options: dict[str, Any], *, read_small: bool
    ) -> LocalResource:
        path = os.fspath(source)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if "\x00" in path:
            raise SourceNotFound("a path with a NUL character names no file")
        root = _root_option(options)
        content: bytes | None = None
        try:
            if read_small:
                opened, fd, st, content = await threads.run_sync(_open_small_file, path, root)
            else:
                opened, fd, st = await threads.run_sync(_open_regular_file, path, root)
        except OSError as exc:
            raise map_os_error(exc, path) from exc
        # The download is named after what was asked for, even through a symbolic link.
        return LocalResource(
            opened,
            fd,
            st,
            name=os.path.basename(path),
            content=content,
            sendable_by_path=root is None,
        )

    async def list(self, source: Any, **options: Any) -> list[DirEntry]:
        """List a local directory, directories first, then by name.

        Args:
            source: The directory's path.
            **options: ``root``, as for :meth:`open`; symbolic links in the directory that
                lead outside it are left out of the listing.

        Raises:
            SourceNotFound: No such directory, or a file.
            UnsafePath: With ``root``, the directory lies outside it through a symbolic link.

        Security:
            With ``root``, the directory is opened like a file by :meth:`open` and listed
            through that descriptor; its symbolic links are resolved beneath ``root`` too.
        """
        path = os.fspath(source)
        if "\x00" in path:
            raise SourceNotFound("a path with a NUL character names no directory")
        try:
            return await threads.run_sync(_scan_directory, path, _root_option(options))
        except OSError as exc:
            raise map_os_error(exc, path) from exc

    def __repr__(self) -> str:
        return "LocalBackend()"


def _root_option(options: dict[str, Any]) -> str | None:
    root = options.get("root")
    return None if root is None else os.fspath(root)


def _scan_directory(path: str, root: str | None) -> list[DirEntry]:
    if root is not None:
        return _scan_beneath(root, relative_to_root(path, root))
    entries = []
    with os.scandir(path) as found:
        for entry in found:
            try:
                st = entry.stat()
            except OSError:  # a dangling symbolic link: nothing to serve
                continue
            entries.append(_dir_entry(entry.name, st))
    return _sorted_entries(entries)


def _scan_beneath(root: str, relative: str) -> list[DirEntry]:
    """List ``relative`` through a descriptor opened beneath ``root``.

    A symbolic link is listed with what it leads to, when that lies inside ``root``; links
    leading outside are left out, as they are served as 404 (listing them would leak the
    size and mtime of what they point to).
    """
    if os.scandir not in os.supports_fd:  # pragma: no cover - Windows
        return _scan_checked(os.path.join(root, relative), root)
    fd = open_beneath(root, relative, _LIST_FLAGS)
    entries = []
    try:
        with os.scandir(fd) as found:
            for entry in found:
                try:
                    st = entry.stat(follow_symlinks=False)
                    if stat.S_ISLNK(st.st_mode):
                        st = stat_beneath(root, f"{relative}/{entry.name}".lstrip("/"))
                except (OSError, SourceNotFound):  # gone, dangling, or leading out
                    continue
                entries.append(_dir_entry(entry.name, st))
    finally:
        os.close(fd)
    return _sorted_entries(entries)


def _scan_checked(path: str, root: str) -> list[DirEntry]:  # pragma: no cover - Windows
    """Where directories cannot be listed by descriptor: check names, then list (racy)."""
    if not is_within(path, root):
        raise UnsafePath(f"{path!r} resolves outside {root!r}")
    entries = []
    with os.scandir(path) as found:
        for entry in found:
            if entry.is_symlink() and not is_within(entry.path, root):
                continue
            try:
                st = entry.stat()
            except OSError:
                continue
            entries.append(_dir_entry(entry.name, st))
    return _sorted_entries(entries)


def _dir_entry(name: str, st: os.stat_result) -> DirEntry:
    is_dir = stat.S_ISDIR(st.st_mode)
    return DirEntry(name, is_dir, None if is_dir else st.st_size, to_utc_datetime(st.st_mtime))


def _sorted_entries(entries: list[DirEntry]) -> list[DirEntry]:
    return sorted(entries, key=lambda entry: (not entry.is_dir, entry.name))
