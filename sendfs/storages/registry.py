"""The backend registry: which backend serves which source.

Resolution order for a source:

1. a binary file object goes to the file-object backend;
2. a path (``str`` without ``://``, or ``os.PathLike``) goes to the local backend;
3. a URL ``scheme://rest`` goes to, in order: a named mount (``media://``), a backend registered
   for the scheme (``file`` is built in), a backend from the ``sendfs.backends`` entry-point
   group (loaded on first use), and finally fsspec for every protocol it knows.

Registering never silently replaces a backend: pass ``replace=True`` to mean it. A scheme
nobody serves, or whose package is not installed, fails when a mount is made and when a source
is resolved (a response built), not at the first request.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..exceptions import MissingDependency, SourceNotFound, UnknownScheme, UnsafePath
from .base import Backend, DirEntry, ReadHint, Resource
from .fileobj import FileObjBackend, is_file_object
from .local import LocalBackend
from .paths import clean_relative_path, redact_url, safe_join, shorten
from .streams import GeneratedBackend, GeneratedSource, Stream, is_async_iterable

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from ..events import DownloadEvent
    from ..responses.offload import Offload
    from .fsspec import FsspecBackend

__all__ = ["ENTRY_POINT_GROUP", "Mount", "Resolved", "StorageRegistry", "registry"]

ENTRY_POINT_GROUP = "sendfs.backends"
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")


@dataclasses.dataclass(frozen=True, slots=True)
class Mount:
    """A named storage: ``name://path`` means ``url/path`` opened with ``storage_options``.

    Args:
        name: The scheme it answers to.
        url: The root it maps to: a local directory or an fsspec URL prefix.
        storage_options: Options for the backend of ``url`` (credentials, endpoint...).
        offload: How a front server sends its files (see :mod:`sendfs.responses.offload`).
    """

    name: str
    url: str
    storage_options: Mapping[str, Any]
    offload: Offload | None = None

    def __repr__(self) -> str:
        # Storage options, URL user info and queries hold credentials: never print them.
        return (
            f"Mount({self.name!r}, {redact_url(self.url)!r}, "
            f"options={sorted(self.storage_options)})"
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Resolved:
    """What a source resolved to: the backend, what to give it, and the options.

    ``offload`` is the offload of the mount it was found under, if any.
    """

    backend: Backend
    target: Any
    options: Mapping[str, Any]
    offload: Offload | None = None


def _scheme_of(source: str) -> str | None:
    head, sep, _ = source.partition("://")
    return head.lower() if sep and _SCHEME.fullmatch(head.lower()) else None


@functools.cache
def _fsspec_protocols() -> frozenset[str]:
    """The protocols fsspec knows, listed once."""
    import fsspec

    return frozenset(fsspec.available_protocols())


def _fsspec_knows(scheme: str) -> bool:
    """Whether fsspec knows ``scheme``; on a miss the list is read again (late registrations)."""
    if scheme in _fsspec_protocols():
        return True
    _fsspec_protocols.cache_clear()
    if scheme in _fsspec_protocols():
        return True
    # A class registered with fsspec.register_implementation(name, cls) is only listed here.
    from fsspec.registry import registry as fsspec_classes

    return scheme in fsspec_classes


def close_schemes(scheme: str, known: Iterable[str]) -> list[str]:
    """The schemes of ``known`` that ``scheme`` is most likely a typo of, best first.

    Args:
        scheme: The scheme nobody serves, e.g. ``"s4"``.
        known: The schemes that are served.
    """
    # Two-letter schemes differ by a whole half when one letter is wrong ("s4" and "s3").
    cutoff = 0.5 if len(scheme) == 2 else 0.6
    matches = difflib.get_close_matches(scheme, sorted(set(known)), n=3, cutoff=cutoff)
    # Same first letter first: "s4" is more likely "s3" than "gs".
    return sorted(matches, key=lambda match: match[:1] != scheme[:1])


def _merged_options(
    storage_options: Mapping[str, Any] | None, options: Mapping[str, Any]
) -> dict[str, Any]:
    """``storage_options`` and ``**options``: two spellings of one set of backend options.

    Raises:
        TypeError: An option is given in both, or ``storage_options`` is not a mapping.
    """
    if storage_options is None:
        return dict(options)
    if not isinstance(storage_options, Mapping):
        raise TypeError(f"storage_options must be a mapping, not {type(storage_options).__name__}")
    twice = sorted(set(storage_options) & set(options))
    if twice:
        raise TypeError(f"backend options given both in storage_options and as keywords: {twice}")
    return {**storage_options, **options}


def _file_url_to_path(url: str) -> str:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise SourceNotFound(f"{redact_url(url)!r} names a file on another host")
    from urllib.request import url2pathname  # 10 ms to import: only for file:// URLs

    return url2pathname(parts.path)


class StorageRegistry:
    """Maps sources to backends; a module-level default lives in :data:`registry`.

    Args:
        entry_points: Look up third-party backends in the ``sendfs.backends`` entry-point group
            for schemes nobody registered (on by default).
        on_complete: A download hook for every response served through this registry, to
            meter or audit downloads (see :mod:`sendfs.events`); also settable later as
            ``registry.on_complete = hook``.

    Example::

        from sendfs import registry

        registry.mount("media", "s3://bucket/uploads", endpoint_url="https://...")
        await registry.open("media://reports/q3.pdf")  # s3://bucket/uploads/reports/q3.pdf
    """

    def __init__(
        self,
        *,
        entry_points: bool = True,
        on_complete: Callable[[DownloadEvent], Awaitable[None] | None] | None = None,
    ) -> None:
        #: A hook every response served through this registry calls with its
        #: :class:`~sendfs.events.DownloadEvent` (after the response's own hook); settable.
        self.on_complete = on_complete
        self._backends: dict[str, Backend] = {}
        self._mounts: dict[str, Mount] = {}
        self._entry_points: dict[str, EntryPoint] | None = None if entry_points else {}
        self._local = LocalBackend()
        self._fileobj = FileObjBackend()
        self._generated = GeneratedBackend(self)
        self._backends["file"] = self._local

    @cached_property
    def _fsspec(self) -> FsspecBackend:
        # Imported on first use: fsspec costs tens of milliseconds at import time.
        from .fsspec import FsspecBackend

        return FsspecBackend()

    # -- registration -----------------------------------------------------------------------

    def register(self, scheme: str, backend: Backend, *, replace: bool = False) -> None:
        """Serve URLs of ``scheme`` with ``backend``.

        Args:
            scheme: A URL scheme (letters, digits, ``+-.``), case-insensitive.
            backend: Any object with ``async open(source, **options) -> Resource``.
            replace: Allow replacing a backend or mount already registered for ``scheme``.

        Raises:
            ValueError: ``scheme`` is not a valid scheme, or is taken and ``replace`` is false.
            TypeError: ``backend`` has no ``open`` method.
        """
        if not isinstance(backend, Backend):
            raise TypeError(f"{backend!r} is not a backend: it needs an async open() method")
        scheme = self._claim(scheme, replace=replace)
        self._backends[scheme] = backend

    def unregister(self, scheme: str) -> None:
        """Forget the backend or mount registered for ``scheme``.

        Raises:
            KeyError: Nothing is registered for ``scheme``.
        """
        scheme = scheme.lower()
        if scheme in self._mounts:
            del self._mounts[scheme]
        else:
            del self._backends[scheme]

    def mount(
        self,
        name: str,
        url: str,
        *,
        replace: bool = False,
        storage_options: Mapping[str, Any] | None = None,
        offload: Offload | None = None,
        **options: Any,
    ) -> None:
        """Name a storage root: ``name://a/b`` will mean ``url/a/b``.

        Credentials and endpoints live in the mount, never in request paths. The path after
        ``name://`` is joined with :func:`~sendfs.storages.paths.safe_join`, so it cannot climb
        out of ``url``.

        The backend of ``url`` is looked up now, so a typo in its scheme or a missing package
        fails at startup rather than at the first request; a mount may point to another mount
        only once that one exists.

        Args:
            name: The new scheme.
            url: A local directory or an fsspec URL prefix (``"s3://bucket/uploads"``).
            replace: Allow replacing an existing backend or mount of that name.
            storage_options: Options for the backend of ``url``, as a mapping (the spelling
                ``send_file`` uses).
            offload: How a front server sends this mount's files
                (:class:`~sendfs.XAccelRedirect`, :class:`~sendfs.XSendfile`); a local
                mount fills in the offload's ``root``. Every download of the mount uses it
                unless the call gives its own.
            **options: Options for the backend of ``url``, as keywords.

        Raises:
            ValueError: ``name`` is not a valid scheme or is taken and ``replace`` is false.
            UnknownScheme: Nothing serves the scheme of ``url`` (the message suggests near
                names: ``s4://`` gets ``'s3'``).
            MissingDependency: The package of ``url``'s backend is not installed (the message
                says what to ``pip install``).
            TypeError: An option is given both in ``storage_options`` and as a keyword, or
                ``offload`` is neither an ``XAccelRedirect`` nor an ``XSendfile``.
            ValueError: An ``offload`` that cannot apply to ``url``'s files (``remote=`` only
                for a local directory; ``XSendfile`` or no ``remote=`` for a storage).
        """
        merged = _merged_options(storage_options, options)
        if offload is not None:
            from ..responses.offload import XAccelRedirect, XSendfile

            if not isinstance(offload, XAccelRedirect | XSendfile):
                raise TypeError(f"offload must be an XAccelRedirect or XSendfile, not {offload!r}")
            self._check_offload(name, url, offload)
        if name.lower() == _scheme_of(url):
            raise ValueError(f"mount {name!r} cannot point to its own scheme")
        self._refuse_cycle(name.lower(), url)
        self._check_served(name, url)
        name = self._claim(name, replace=replace)
        self._mounts[name] = Mount(name, url, merged, offload)

    def _check_offload(self, name: str, url: str, offload: Offload) -> None:
        """Refuse an offload that could never apply to the files of the mount ``name``."""
        from ..responses.offload import XSendfile

        scheme = _scheme_of(url)
        if scheme in self._mounts:
            return  # a mount of a mount: its own kind decides, per download
        local = scheme in (None, "file")
        if local and not isinstance(offload, XSendfile) and offload.location is None:
            raise ValueError(f"mount {name!r} holds local files: its offload needs location=")
        if not local and (isinstance(offload, XSendfile) or offload.remote is None):
            raise ValueError(
                f"mount {name!r} holds objects of a storage: a front server reaches them "
                "through XAccelRedirect(remote=...) only"
            )

    def _check_served(self, name: str, url: str) -> None:
        """Refuse a mount whose URL no backend can serve, before anything is changed."""
        scheme = _scheme_of(url)
        if scheme is None or scheme in self._mounts:
            return
        try:
            self._backend_for(scheme, url)
        except UnknownScheme as exc:
            raise UnknownScheme(f"cannot mount {name!r}: {exc}") from exc
        except MissingDependency as exc:
            raise MissingDependency(f"cannot mount {name!r}: {exc}") from exc

    def _refuse_cycle(self, name: str, url: str) -> None:
        """Refuse a mount whose URL leads back to ``name`` through other mounts."""
        seen = [name]
        scheme = _scheme_of(url)
        while scheme is not None and scheme in self._mounts and scheme != name:
            seen.append(scheme)
            scheme = _scheme_of(self._mounts[scheme].url)
            if scheme in seen:
                break
        if scheme == name:
            chain = " -> ".join([*seen, name])
            raise ValueError(f"mount {name!r} would make a cycle of mounts: {chain}")

    def _claim(self, scheme: str, *, replace: bool) -> str:
        scheme = scheme.lower()
        if not _SCHEME.fullmatch(scheme):
            raise ValueError(f"{scheme!r} is not a URL scheme")
        if not replace and (scheme in self._backends or scheme in self._mounts):
            raise ValueError(f"{scheme!r} is registered already; pass replace=True to replace it")
        self._backends.pop(scheme, None)
        self._mounts.pop(scheme, None)
        return scheme

    # -- resolution -------------------------------------------------------------------------

    def resolve(
        self, source: Any, *, storage_options: Mapping[str, Any] | None = None, **options: Any
    ) -> Resolved:
        """Decide which backend opens ``source``, without any I/O.

        Args:
            source: A path, a URL, a binary file object, an async iterable of bytes, or what
                :meth:`locate` returned (used as it is: its options, the confinement to its
                root among them, take precedence over ``options``).
            storage_options: Backend options as a mapping, the spelling ``send_file`` uses;
                the same as passing them as keywords.
            **options: Backend options; they take precedence over a mount's.

        Raises:
            TypeError: ``source`` is none of the accepted kinds, or a text stream; an option
                is given both in ``storage_options`` and as a keyword.
            UnknownScheme: Nothing serves the URL's scheme (the message suggests near names
                and lists what is registered).
            MissingDependency: The package of the URL's backend is not installed (checked
                here, so a response fails when it is built, not at its first request).
            UnsafePath: A mount path tries to leave its root.
        """
        options = _merged_options(storage_options, options)
        if isinstance(source, Resolved):
            return dataclasses.replace(source, options={**options, **source.options})
        if is_file_object(source):
            return Resolved(self._fileobj, source, options)
        if isinstance(source, os.PathLike):
            return Resolved(self._local, os.fspath(source), options)
        if not isinstance(source, str):
            if isinstance(source, GeneratedSource):
                return Resolved(self._generated, source, options)
            if is_async_iterable(source):
                return Resolved(self._generated, Stream(source), options)
            raise TypeError(
                "a source is a path (str or os.PathLike), a URL, a binary file object or an "
                f"async iterable of bytes, not {type(source).__name__}"
            )
        scheme = _scheme_of(source)
        if scheme is None:
            return Resolved(self._local, source, options)
        rest = source.split("://", 1)[1]
        if scheme in self._mounts:
            mount = self._mounts[scheme]
            resolved = self._join(mount.url, rest, {**mount.storage_options, **options})
            return dataclasses.replace(resolved, offload=mount.offload or resolved.offload)
        if scheme == "file" and self._backends.get("file") is self._local:
            return Resolved(self._local, _file_url_to_path(source), options)
        return Resolved(self._backend_for(scheme, source), source, options)

    def _backend_for(self, scheme: str, source: str) -> Backend:
        """The backend for URLs of ``scheme`` (a registered one, an entry point, or fsspec).

        Raises:
            UnknownScheme: Nothing serves ``scheme``.
            MissingDependency: The package of its backend is not installed.
        """
        backend = self._backends.get(scheme) or self._load_entry_point(scheme)
        if backend is not None:
            return backend
        if _fsspec_knows(scheme):
            from .fsspec import filesystem_class

            filesystem_class(scheme)  # imports the package: a missing one fails now
            return self._fsspec
        known = [*self, *(self._entry_points or {}), *_fsspec_protocols()]
        near = close_schemes(scheme, known)
        guess = f" (did you mean {' or '.join(map(repr, near))}?)" if near else ""
        raise UnknownScheme(
            f"no backend for {scheme!r} in {shorten(redact_url(source))!r}{guess}; registered: "
            f"{', '.join(sorted(self)) or 'none'}, plus every fsspec protocol "
            "(fsspec.available_protocols())"
        )

    def serves_locally(self, resolved: Resolved) -> bool:
        """Whether only the app can send ``resolved``'s bytes (local files, file objects, streams).

        Args:
            resolved: What :meth:`resolve` returned.
        """
        return any(resolved.backend is own for own in (self._local, self._fileobj, self._generated))

    def local_path(self, resolved: Resolved) -> str | None:
        """The path of a local file ``resolved`` names, or ``None`` for any other source.

        Args:
            resolved: What :meth:`resolve` returned.
        """
        if resolved.backend is self._local and isinstance(resolved.target, str):
            return resolved.target
        return None

    def _confined(self, resolved: Resolved, root: str) -> Resolved:
        """Add the local backend's ``root`` option, so symbolic links cannot leave ``root``."""
        if resolved.backend is not self._local or "root" in resolved.options:
            return resolved
        return dataclasses.replace(resolved, options={**resolved.options, "root": root})

    def locate(
        self,
        root: str | os.PathLike[str],
        path: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Resolved:
        """Resolve an untrusted ``path`` under a trusted ``root``, refusing any way out.

        Args:
            root: A mount name (``"media"``), a local directory, or a URL prefix
                (``"s3://bucket/public"``, ``"file:///srv/files"``).
            path: The untrusted relative path, e.g. from the request URL.
            storage_options: Backend options as a mapping; the same as passing them as
                keywords.
            **options: Backend options.

        Raises:
            UnsafePath: ``path`` tries to leave ``root`` (see
                :func:`~sendfs.storages.paths.clean_relative_path`); on local disk a symbolic
                link leading outside ``root`` is refused when the file is opened.
            UnknownScheme: ``root`` is a URL nobody serves.
            MissingDependency: The package of ``root``'s backend is not installed.
            TypeError: An option is given both in ``storage_options`` and as a keyword.
        """
        options = _merged_options(storage_options, options)
        root = os.fspath(root)
        if root.lower() in self._mounts:
            return self.resolve(f"{root}://{clean_relative_path(path)}", **options)
        return self._join(root, path, options)

    def _join(self, root: str, path: str, options: Mapping[str, Any]) -> Resolved:
        """Join an untrusted path onto a root and resolve it, confined to the root."""
        scheme = _scheme_of(root)
        if scheme == "file" and self._backends.get("file") is self._local:
            # Join onto the directory, not the URL: the user path is not URL-quoted, so
            # "a#1.txt" or "100%25.txt" appended to a file:// URL would name another file.
            root = _file_url_to_path(root)
        elif scheme is not None and ("?" in path or "#" in path):
            # fsspec reads URL queries as options (s3fs: ?versionId= serves old versions).
            raise UnsafePath(f"{path!r} carries URL syntax (? or #) under {redact_url(root)!r}")
        resolved = self.resolve(safe_join(root, path), **options)
        return self._confined(resolved, root)

    async def list(
        self, source: Any, *, storage_options: Mapping[str, Any] | None = None, **options: Any
    ) -> list[DirEntry]:
        """List a directory (or an object-store prefix) of a backend that can list.

        Args:
            source: A directory path or URL.
            storage_options: Backend options as a mapping; the same as passing them as
                keywords.
            **options: Backend options.

        Raises:
            SourceNotFound: No such directory, or the backend cannot list.
        """
        resolved = self.resolve(source, storage_options=storage_options, **options)
        lister = getattr(resolved.backend, "list", None)
        if lister is None:
            raise SourceNotFound(f"{type(resolved.backend).__name__} cannot list directories")
        entries: list[DirEntry] = await lister(resolved.target, **resolved.options)
        return entries

    @property
    def lifespan(self) -> Callable[..., AbstractAsyncContextManager[None]]:
        """A lifespan for Lilya, Starlette or FastAPI that closes storage sessions on shutdown.

        ``Lilya(routes=..., lifespan=registry.lifespan)``; with an existing lifespan, enter
        ``registry.lifespan()`` inside it. It is a plain function, not a bound method: Lilya
        calls bound-method lifespans without the app first, which would break this one.
        """

        def lifespan(app: object = None) -> AbstractAsyncContextManager[None]:
            return self._lifespan()

        return lifespan

    @asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await self.aclose()

    def _load_entry_point(self, scheme: str) -> Backend | None:
        if self._entry_points is None:
            from importlib.metadata import entry_points  # only when a scheme is unknown

            self._entry_points = {
                ep.name.lower(): ep for ep in entry_points(group=ENTRY_POINT_GROUP)
            }
        ep = self._entry_points.pop(scheme, None)
        if ep is None:
            return None
        try:
            loaded = ep.load()
        except ImportError as exc:
            raise MissingDependency(
                f"the backend for {scheme!r} ({ep.value}) could not be imported: {exc}"
            ) from exc
        backend: Backend = loaded() if isinstance(loaded, type) else loaded
        self.register(scheme, backend)
        return backend

    async def open(
        self,
        source: Any,
        *,
        read_hint: ReadHint | None = None,
        storage_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Resource:
        """Resolve ``source`` and open it with its backend.

        Args:
            source: A path, a URL or a binary file object.
            read_hint: What the caller expects to read; backends that take hints
                (:class:`~sendfs.storages.base.HintedBackend`: S3, local files) then open
                and start reading in one request or one thread hop. Others ignore it.
            storage_options: Backend options as a mapping, the spelling ``send_file`` uses;
                the same as passing them as keywords.
            **options: Backend options (fsspec storage options).

        Raises:
            TypeError: An option is given both in ``storage_options`` and as a keyword.
            sendfs.exceptions.SendfsError: See :meth:`resolve` and the backends.
        """
        resolved = self.resolve(source, storage_options=storage_options, **options)
        # HintedBackend, checked by attribute: isinstance() on a Protocol costs ~10 us a request.
        open_hinted = (
            getattr(resolved.backend, "open_hinted", None) if read_hint is not None else None
        )
        if open_hinted is not None:
            resource: Resource = await open_hinted(resolved.target, read_hint, **resolved.options)
            return resource
        return await resolved.backend.open(resolved.target, **resolved.options)

    # -- container protocol and lifecycle ----------------------------------------------------

    def __contains__(self, scheme: object) -> bool:
        return isinstance(scheme, str) and (
            scheme.lower() in self._backends or scheme.lower() in self._mounts
        )

    def __iter__(self) -> Iterator[str]:
        """Iterate over the registered schemes and mount names (not fsspec's protocols)."""
        return iter(sorted({*self._backends, *self._mounts}))

    def __repr__(self) -> str:
        backends = ", ".join(f"{s}={type(b).__name__}" for s, b in sorted(self._backends.items()))
        mounts = ", ".join(f"{m.name}->{redact_url(m.url)}" for m in self._mounts.values())
        return f"<StorageRegistry backends=[{backends}] mounts=[{mounts}]>"

    @property
    def mounts(self) -> Mapping[str, Mount]:
        """The named storages, by name."""
        return dict(self._mounts)

    async def aclose(self) -> None:
        """Close the sessions async filesystems opened in the running event loop.

        Call it at shutdown (the app's lifespan); the registry stays usable afterwards and
        opens new sessions on demand.
        """
        if "_fsspec" in self.__dict__:
            await self._fsspec.aclose()
        for backend in self._backends.values():
            close = getattr(backend, "aclose", None)
            if close is not None:
                await close()


#: The default registry used by ``send_file`` when none is given.
registry = StorageRegistry()
