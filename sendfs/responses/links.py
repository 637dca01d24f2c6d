r"""Signed, expiring download links: HMAC-SHA256 over the path and the expiry.

A link is the URL path, percent-encoded, followed by two query parameters::

    /files/report%20q3.pdf?expires=1767225600&signature=<43 base64url characters>

``expires`` is the POSIX second after which the link is refused; ``signature`` is the
HMAC-SHA256 (unpadded base64url) of the message::

    b"sendfs-link-v1\n" + expires + b"\n" + path (UTF-8)

where ``path`` is the path as the server sees it, decoded. :class:`LinkSigner` makes links
(:meth:`~LinkSigner.sign`, :meth:`~LinkSigner.query`) and checks requests
(:meth:`~LinkSigner.check`).

Security:
    - What is bound: the exact decoded path and the expiry. The domain prefix (with a version)
      keeps these signatures from being confused with HMACs the same key makes for anything
      else; ``expires`` is digits only and comes before the path, so no two (expiry, path)
      pairs share a message. Other query parameters, the method, the host and the headers
      are not bound: a link is good for whatever the server serves at that path.
    - No shared state: checking needs only the secrets and a clock, so any number of
      processes and machines check the links any of them made. Their clocks must agree to
      within the precision you need of the expiry.
    - A link cannot be revoked before it expires, except by removing its secret, which
      revokes every link made with it.
    - Rotation: give the new secret first and keep the old one after it until the last link
      it signed has expired; every listed secret is tried, in constant time.
    - A link is a bearer token: anyone who holds it can download until it expires, and it
      ends up in browser histories, proxy logs and ``Referer`` headers. Serve links over
      HTTPS only, keep their lifetimes short, and keep the secrets out of source control
      (at least 16 bytes; 32 random ones are better).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from urllib.parse import parse_qsl, quote

__all__ = ["EXPIRES_PARAM", "SIGNATURE_PARAM", "LinkSigner"]

#: The query parameter holding the expiry, in POSIX seconds.
EXPIRES_PARAM = "expires"
#: The query parameter holding the signature, unpadded base64url.
SIGNATURE_PARAM = "signature"
#: The shortest secret accepted, in bytes.
MIN_SECRET_LENGTH = 16
#: The lifetime of a link when :meth:`LinkSigner.sign` is given none, in seconds.
DEFAULT_EXPIRES_IN = 3600
#: Longer query strings are refused unread (``"malformed"``).
MAX_QUERY_LENGTH = 8192

#: Prefix of every signed message: names the scheme and its version.
_DOMAIN = b"sendfs-link-v1\n"
#: At most 12 digits: beyond the year 33658, so more is an attack or a bug.
_EXPIRES = re.compile(r"[0-9]{1,12}")
_MAX_EXPIRES = 10**12 - 1
#: 32 bytes in unpadded base64url.
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}")
_HOW_TO_MAKE_ONE = 'make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'


class LinkSigner:
    """Makes and checks signed, expiring links (see the module documentation for the scheme).

    Args:
        secrets: One secret, or several: the first signs, all are accepted when checking
            (rotation: put the new secret first, keep the old ones until their links have
            expired). Each is at least :data:`MIN_SECRET_LENGTH` bytes; a ``str`` counts in
            UTF-8.
        clock: Returns the current POSIX time; for tests.

    Raises:
        TypeError: ``secrets`` is neither a ``str``, ``bytes`` nor a sequence of them.
        ValueError: No secret, or one too short.

    Security:
        The secrets are never shown by ``repr``. Anyone who knows one can make links to any
        path, so keep them as secret as a session key.
    """

    __slots__ = ("_clock", "_keys")

    def __init__(
        self,
        secrets: str | bytes | Sequence[str | bytes],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = _check_secrets(secrets)
        self._clock = clock

    def __repr__(self) -> str:
        count = len(self._keys)
        return f"<LinkSigner: {count} secret{'' if count == 1 else 's'}>"

    def sign(
        self,
        path: str,
        *,
        expires_in: int | None = None,
        expires_at: datetime | float | None = None,
    ) -> str:
        """A signed link to ``path``: the path percent-encoded, then the signing parameters.

        Args:
            path: The URL path as the server will see it, decoded (``/files/report q3.pdf``).
                It starts with one ``/`` (``//host/x`` names another host) and has no ``.``
                or ``..`` segment (clients remove those, so the link could never be
                checked).
            expires_in: Seconds the link is valid from now, a positive int.
            expires_at: When the link expires: an aware datetime or a POSIX timestamp, in the
                future (truncated to the second). Give at most one of ``expires_in`` and
                ``expires_at``; with neither, the link lasts :data:`DEFAULT_EXPIRES_IN`.

        Returns:
            ``quoted-path?expires=...&signature=...``; unquoting the path gives ``path`` back.

        Raises:
            TypeError: An expiry of the wrong type.
            ValueError: Both expiries, an expiry not in the future, or a path that does not
                start with one ``/``, has a dot segment or is not valid Unicode.
        """
        signing = self.query(path, expires_in=expires_in, expires_at=expires_at)
        return f"{quote(path, safe='/')}?{signing}"

    def query(
        self,
        path: str,
        *,
        expires_in: int | None = None,
        expires_at: datetime | float | None = None,
    ) -> str:
        """Only the signing parameters of :meth:`sign`, ``expires=...&signature=...``.

        For applications that build their URLs themselves: append this to the URL of
        ``path`` (after ``?``, or after ``&`` when it has a query already).

        Args:
            path: The URL path as the server will see it, decoded.
            expires_in: As for :meth:`sign`.
            expires_at: As for :meth:`sign`.

        Returns:
            The query string; its characters need no quoting.

        Raises:
            TypeError: An expiry of the wrong type.
            ValueError: As for :meth:`sign`.
        """
        _check_path(path)
        expires = str(self._expiry(expires_in, expires_at))
        digest = _digest(self._keys[0], expires, path)
        signature = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        return f"{EXPIRES_PARAM}={expires}&{SIGNATURE_PARAM}={signature}"

    def check(self, path: str, query: str | bytes) -> str | None:
        """Check a request for a signed link.

        Args:
            path: The request's path, decoded (ASGI ``scope["path"]``, WSGI ``PATH_INFO``
                decoded as UTF-8).
            query: The raw query string; other parameters may come before, between and after
                the signing ones.

        Returns:
            ``None`` when the link is valid, else why it is not: ``"missing"`` (a signing
            parameter is absent), ``"malformed"`` (a signing parameter repeated or
            unreadable, or a query longer than :data:`MAX_QUERY_LENGTH`), ``"tampered"`` (the
            signature matches no secret: the path, the expiry or the signature was changed,
            or its secret was removed) or ``"expired"``.

        Security:
            Never raises on any ``query``. The signature is compared against every secret in
            constant time, and the expiry is looked at only afterwards, so the time taken does
            not tell which secret or how much of the signature matched. Tell the client only
            that the link is not valid (403, or 410 for ``"expired"``), not the reason.
        """
        fields = _signing_fields(query)
        if isinstance(fields, str):
            return fields
        expires, given = fields
        matched = False
        for key in self._keys:
            # ``|`` and not ``or``: every secret is compared, whichever matches.
            matched |= hmac.compare_digest(_digest(key, expires, path), given)
        if not matched:
            return "tampered"
        if int(expires) < self._clock():
            return "expired"
        return None

    def _expiry(self, expires_in: int | None, expires_at: datetime | float | None) -> int:
        if expires_in is not None and expires_at is not None:
            raise ValueError("give expires_in or expires_at, not both")
        now = self._clock()
        if expires_at is None:
            seconds = DEFAULT_EXPIRES_IN if expires_in is None else expires_in
            if not isinstance(seconds, int) or isinstance(seconds, bool):
                raise TypeError(f"expires_in must be an int, not {type(seconds).__name__}")
            if seconds <= 0:
                raise ValueError(f"expires_in must be a positive number of seconds, not {seconds}")
            expires = math.floor(now) + seconds
        else:
            expires = _timestamp(expires_at)
            if expires <= now:
                raise ValueError(f"expires_at {expires_at!r} is not in the future")
        if expires > _MAX_EXPIRES:
            raise ValueError("the link would expire after the year 33658")
        return expires


def _check_secrets(secrets: object) -> tuple[bytes, ...]:
    """The secrets as bytes, first the one that signs."""
    if isinstance(secrets, (str, bytes)):
        secrets = [secrets]
    if not isinstance(secrets, Sequence):
        raise TypeError(
            f"secrets must be a str, bytes or a list of them, not {type(secrets).__name__}"
        )
    if not secrets:
        raise ValueError(f"LinkSigner needs at least one secret; {_HOW_TO_MAKE_ONE}")
    keys = []
    for position, secret in enumerate(secrets):
        if isinstance(secret, str):
            try:
                key = secret.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"secret #{position} is not valid Unicode") from None
        elif isinstance(secret, bytes):
            key = bytes(secret)
        else:
            raise TypeError(f"secret #{position} is a {type(secret).__name__}, not str or bytes")
        if len(key) < MIN_SECRET_LENGTH:
            # The message says which secret, never what it is.
            raise ValueError(
                f"secret #{position} is {len(key)} bytes; at least {MIN_SECRET_LENGTH} are "
                f"needed; {_HOW_TO_MAKE_ONE}"
            )
        keys.append(key)
    return tuple(keys)


def _check_path(path: str) -> None:
    if not isinstance(path, str):
        raise TypeError(f"path must be a str, not {type(path).__name__}")
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/': {path!r}")
    if path.startswith("//"):
        # ``//host/x`` is a URL of another host, wherever the link is used.
        raise ValueError(f"path must not start with '//', clients read a host there: {path!r}")
    if any(segment in {".", ".."} for segment in path.split("/")):
        raise ValueError(f"clients remove the '.' and '..' segments of {path!r}; resolve them")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"path {path!r} is not valid Unicode (a lone surrogate)") from None


def _timestamp(moment: datetime | float) -> int:
    """``expires_at`` in POSIX seconds, truncated."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("expires_at must be an aware datetime (give it a tzinfo)")
        return math.floor(moment.timestamp())
    if isinstance(moment, bool) or not isinstance(moment, (int, float)):
        raise TypeError(
            f"expires_at must be a datetime or a POSIX timestamp, not {type(moment).__name__}"
        )
    if not math.isfinite(moment):
        raise ValueError(f"expires_at must be a finite timestamp, not {moment!r}")
    return math.floor(moment)


def _digest(key: bytes, expires: str, path: str) -> bytes:
    # ``expires`` is digits only, so the first newline after the prefix ends it: unambiguous.
    # surrogatepass: a path with a lone surrogate (undecodable bytes) still gets a digest.
    message = _DOMAIN + expires.encode("ascii") + b"\n" + path.encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).digest()


def _signing_fields(query: str | bytes) -> tuple[str, bytes] | str:
    """The expiry digits and the signature bytes of a query, or the reason they are unusable."""
    if len(query) > MAX_QUERY_LENGTH:
        return "malformed"
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    found: dict[str, list[str]] = {EXPIRES_PARAM: [], SIGNATURE_PARAM: []}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in found:
            found[name].append(value)
    expires, signatures = found[EXPIRES_PARAM], found[SIGNATURE_PARAM]
    if len(expires) > 1 or len(signatures) > 1:
        return "malformed"
    if not expires or not signatures:
        return "missing"
    if not _EXPIRES.fullmatch(expires[0]) or not _SIGNATURE.fullmatch(signatures[0]):
        return "malformed"
    raw = base64.urlsafe_b64decode(signatures[0] + "=")
    # 43 characters carry 258 bits: refuse the three other spellings of the same 32 bytes.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != signatures[0]:
        return "malformed"
    return expires[0], raw
