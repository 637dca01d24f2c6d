"""Opening a path beneath a root directory so that nothing can lead the open out of the root.

A path is resolved relative to a descriptor of the root, never by name from ``/``: checking
``realpath`` first and opening by name afterwards loses to anyone who swaps a directory for a
symbolic link in between (a ``rename`` loop wins a fair share of requests).

Two strategies give the same answers:

- ``openat2(2)`` with ``RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`` (Linux 5.6+), where the
  kernel itself refuses every step out of the root. The system call is made through
  ``ctypes``; a kernel or seccomp filter without it is detected once.
- A walk, one component at a time, each opened with ``O_NOFOLLOW`` relative to the
  descriptor of its parent. Symbolic links are resolved here, against the walk's own stack of
  directory descriptors: ``..`` pops the stack and may never pop the root.

Both serve symbolic links that stay inside the root and refuse those that lead out, and both
follow at most :data:`MAX_SYMLINKS` links. An absolute link target is refused by
``RESOLVE_BENEATH``; the walk then takes over and accepts it when it spells the root's path
(as configured or fully resolved) followed by a path inside it.

Security:
    Whatever a concurrent rename does, the descriptor returned names a file that was beneath
    the root when it was reached. Losing a race ends in an error that means "not found"
    (``ENOENT``, ``ENOTDIR``, :class:`~sendfs.exceptions.UnsafePath`), never in the wrong
    file. A file *moved* into the root from outside is inside it: confinement is about where
    the path leads, not about where a file came from. The root itself is trusted (it may be a
    symbolic link, followed once when it is opened). Platforms that cannot open relative to a
    directory descriptor (Windows) check the resolved path and then open it, which is not
    proof against such races.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import stat
import sys
from collections.abc import Callable

from ..exceptions import SourceNotFound, UnsafePath

__all__ = ["MAX_SYMLINKS", "open_beneath", "relative_to_root", "stat_beneath"]

#: Symbolic links followed in one resolution before giving up (the kernel's limit).
MAX_SYMLINKS = 40

#: Resolve with ``openat2(2)`` where the kernel offers it; ``False`` forces the walk.
prefer_openat2 = True

_SYS_OPENAT2 = 437  # the same number on every Linux architecture but alpha
_AT_FDCWD = -100
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
#: ``openat2`` retries a lookup raced by a rename of ``..`` (EAGAIN) this many times.
_OPENAT2_ATTEMPTS = 3

_O_PATH = getattr(os, "O_PATH", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_LARGEFILE = getattr(os, "O_LARGEFILE", 0)  # what open(3) adds on 32-bit systems
#: Directories along the walk: no read permission needed where ``O_PATH`` exists.
_STEP_FLAGS = (_O_PATH or os.O_RDONLY) | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
#: The root, which may itself be a symbolic link.
_ROOT_FLAGS = (_O_PATH or os.O_RDONLY) | _O_DIRECTORY | _O_CLOEXEC
#: Enough to ``fstat`` a file without reading it (a FIFO must not block the thread).
_STAT_FLAGS = _O_PATH | _O_CLOEXEC if _O_PATH else os.O_RDONLY | _O_NONBLOCK | _O_CLOEXEC
#: What an ``O_NOFOLLOW`` open of a symbolic link fails with (ELOOP; EMLINK on FreeBSD;
#: ENOTDIR when a directory was asked for).
_MAYBE_A_LINK = frozenset({errno.ELOOP, errno.EMLINK, errno.ENOTDIR})
#: Errors that mean the path tried to leave the root, or looped.
_ESCAPES = frozenset({errno.ELOOP, errno.EMLINK, errno.EXDEV})


class _OpenHow(ctypes.Structure):
    """``struct open_how`` of ``openat2(2)``."""

    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    ]


_Openat2 = Callable[[int, str, int, int], int]


def relative_to_root(path: str, root: str) -> str:
    """The part of ``path`` after ``root``, compared as text.

    Args:
        path: A path built by joining a relative path onto ``root`` (``safe_join``).
        root: The root directory, as configured.

    Returns:
        The relative part without its leading ``/``; ``""`` for the root itself.

    Raises:
        UnsafePath: ``path`` does not start with ``root`` followed by ``/``.
    """
    if path == root:
        return ""
    prefix = root.rstrip("/") + "/"
    if not path.startswith(prefix):
        raise UnsafePath(f"{path!r} is not under {root!r}")
    return path[len(prefix) :]


def open_beneath(root: str, relative: str, flags: int) -> int:
    """Open ``relative`` beneath the directory ``root``; nothing may lead the lookup out.

    Args:
        root: The trusted root directory.
        relative: The path to open, relative to ``root`` (``""`` for the root itself).
            Symbolic links in it are followed as long as they stay beneath ``root``.
        flags: ``os.open`` flags for the file itself (``O_RDONLY | O_NONBLOCK``, or
            ``O_RDONLY | O_DIRECTORY`` to list a directory). Never ``O_CREAT``.

    Returns:
        A new descriptor the caller owns.

    Raises:
        UnsafePath: The path, or a symbolic link on it, leads out of ``root`` (``..`` above
            it, an absolute link elsewhere), or links loop or go deeper than
            :data:`MAX_SYMLINKS`.
        SourceNotFound: A name too long for the file system.
        OSError: Every other failure of the open (``FileNotFoundError`` for a missing or
            dangling name, ``NotADirectoryError``, ``PermissionError``...).

    Security:
        See the module: the descriptor is for a file that was beneath ``root`` when reached,
        whatever renames happen meanwhile.
    """
    if os.open not in os.supports_dir_fd:  # pragma: no cover - Windows
        return _open_checked(root, relative, flags)
    try:
        root_fd = os.open(root, _ROOT_FLAGS)
        try:
            return _open_from(root, root_fd, relative, flags)
        finally:
            os.close(root_fd)
    except OSError as exc:
        if exc.errno in _ESCAPES:
            raise UnsafePath(f"{relative!r} leads out of {root!r} or loops") from exc
        if exc.errno == errno.ENAMETOOLONG:
            raise SourceNotFound(f"{relative!r} is too long a name") from exc
        raise


def stat_beneath(root: str, relative: str) -> os.stat_result:
    """``os.stat`` of ``relative`` beneath ``root``, symbolic links followed inside it only.

    Args:
        root: The trusted root directory.
        relative: The path relative to ``root``.

    Raises:
        UnsafePath: As :func:`open_beneath`.
        OSError: As :func:`open_beneath`.
    """
    fd = open_beneath(root, relative, _STAT_FLAGS)
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def _open_from(root: str, root_fd: int, relative: str, flags: int) -> int:
    openat2 = _openat2() if prefer_openat2 else None
    if openat2 is not None:
        resolve = _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS
        for _ in range(_OPENAT2_ATTEMPTS):
            fd = openat2(root_fd, relative or ".", flags, resolve)
            if fd >= 0:
                return fd
            if -fd == errno.EXDEV:
                break  # an absolute link (maybe into the root) or ".." above it: walk
            if -fd != errno.EAGAIN:  # EAGAIN: a rename raced a "..": try again, then walk
                raise OSError(-fd, os.strerror(-fd), relative)
    return _walk(root, root_fd, relative, flags)


def _walk(root: str, root_fd: int, relative: str, flags: int) -> int:
    """Resolve ``relative`` one component at a time beneath ``root_fd``.

    ``pending`` holds the components still to resolve, the next one last; a symbolic link
    puts its target's components in its place. ``stack`` holds the descriptors of the
    directories entered below the root.
    """
    pending = relative.split("/")[::-1] if relative else []
    stack: list[int] = []
    links = 0
    try:
        while pending:
            name = pending.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if not stack:
                    raise UnsafePath(f"{relative!r} climbs above {root!r}")
                os.close(stack.pop())
                continue
            parent = stack[-1] if stack else root_fd
            last = not pending
            try:
                fd = _open_component(name, parent, flags if last else _STEP_FLAGS)
            except OSError as exc:
                target = _link_target(name, parent, exc)
                links += 1
                if links > MAX_SYMLINKS:
                    raise UnsafePath(f"{relative!r} follows too many symbolic links") from exc
                if target.startswith("/"):
                    target = _inside_root(target, root, relative)
                    while stack:
                        os.close(stack.pop())
                pending.extend(target.split("/")[::-1])
                continue
            if last:
                return fd
            stack.append(fd)
        # Ended on the root, "." or "..": open the directory reached.
        return os.open(".", flags, dir_fd=stack[-1] if stack else root_fd)
    finally:
        for fd in stack:
            os.close(fd)


def _open_component(name: str, parent: int, flags: int) -> int:
    """Open the single component ``name`` in ``parent`` without following a symbolic link.

    Raises:
        OSError: As ``os.open``; ELOOP for a symbolic link opened as such by ``O_PATH``.
    """
    fd = os.open(name, flags | _O_NOFOLLOW, dir_fd=parent)
    if flags & _O_PATH and not flags & _O_DIRECTORY and stat.S_ISLNK(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name)
    return fd


def _link_target(name: str, parent: int, exc: OSError) -> str:
    """The target of the symbolic link ``name`` whose open failed with ``exc``.

    Raises:
        OSError: ``exc`` itself, when ``name`` is no symbolic link (anymore).
    """
    if exc.errno not in _MAYBE_A_LINK:
        raise exc
    try:
        target = os.readlink(name, dir_fd=parent)
    except OSError:
        raise exc from None
    if not target:
        raise FileNotFoundError(errno.ENOENT, "empty symbolic link", name)
    return target


def _inside_root(target: str, root: str, relative: str) -> str:
    """An absolute link target re-expressed relative to ``root``, if it spells a path in it.

    Raises:
        UnsafePath: The target names something outside ``root``.
    """
    for spelling in dict.fromkeys((os.path.abspath(root), os.path.realpath(root))):
        if target == spelling:
            return "."
        prefix = spelling.rstrip("/") + "/"
        if target.startswith(prefix):
            return target[len(prefix) :]
    raise UnsafePath(f"a symbolic link on {relative!r} leads out of {root!r}")


@functools.cache
def _openat2() -> _Openat2 | None:
    """``openat2(dir_fd, path, flags, resolve)``: a descriptor, or minus the error number.

    ``None`` where the kernel or a seccomp filter lacks the system call.

    Probed once: ENOSYS (kernel before 5.6), EPERM (seccomp, common in containers), EINVAL or
    E2BIG (an unexpected ``struct open_how``) all mean "use the walk".
    """
    if not sys.platform.startswith("linux") or os.uname().machine.startswith("alpha"):
        return None
    try:
        syscall = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):  # pragma: no cover - a libc without syscall()
        return None
    syscall.restype = ctypes.c_long

    def openat2(dir_fd: int, path: str, flags: int, resolve: int) -> int:
        if not flags & _O_PATH:  # openat2 refuses O_PATH with any other flag
            flags |= _O_LARGEFILE
        how = _OpenHow(flags, 0, resolve)
        fd: int = syscall(
            ctypes.c_long(_SYS_OPENAT2),
            ctypes.c_int(dir_fd),
            ctypes.c_char_p(os.fsencode(path)),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        return fd if fd >= 0 else -ctypes.get_errno()

    probe = openat2(_AT_FDCWD, "/", _ROOT_FLAGS, _RESOLVE_NO_MAGICLINKS)
    if probe < 0:
        return None
    os.close(probe)
    return openat2


def _open_checked(root: str, relative: str, flags: int) -> int:  # pragma: no cover - Windows
    """Check the resolved path, then open it: for platforms without ``dir_fd`` (not race-free)."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(root, relative))
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise UnsafePath(f"{relative!r} leads out of {root!r}")
    return os.open(real, flags)
