"""Accept-Encoding negotiation for precompressed siblings of a file.

A file ``report.csv`` may have compressed copies beside it, ``report.csv.br`` and
``report.csv.gz``, made ahead of time. When the client accepts one of their content codings,
the sibling is sent with ``Content-Encoding`` instead of the file. These pure functions
choose which codings to try, best first; looking for the siblings is the caller's business.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

__all__ = ["DEFAULT_ENCODINGS", "SUFFIXES", "accepted_encodings", "check_encodings"]

#: The content codings sendfs can serve precompressed, with the suffix of their sibling files.
SUFFIXES: Mapping[str, str] = MappingProxyType({"br": ".br", "zstd": ".zst", "gzip": ".gz"})
#: What ``True`` stands for: the codings every current browser accepts.
DEFAULT_ENCODINGS = ("br", "gzip")

#: RFC 9110 section 5.6.2.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: RFC 9110 section 12.4.2: at most three decimals, never above 1.
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
#: RFC 9110 section 8.4.1.3: recipients treat ``x-gzip`` as ``gzip``.
_ALIASES = {"x-gzip": "gzip"}


def check_encodings(value: bool | Sequence[str]) -> tuple[str, ...]:
    """The precompressed codings to look for, from the option as users give it.

    Args:
        value: ``False`` for none, ``True`` for :data:`DEFAULT_ENCODINGS`, or the names of
            codings in :data:`SUFFIXES`, the server's preferred first (used to break ties
            between codings the client likes equally).

    Returns:
        The names, lower-case, each once, in the given order.

    Raises:
        TypeError: Neither a bool nor a sequence.
        ValueError: A single ``str`` instead of a sequence, or a name sendfs does not know.
    """
    if isinstance(value, bool):
        return DEFAULT_ENCODINGS if value else ()
    known = ", ".join(repr(name) for name in SUFFIXES)
    if not isinstance(value, Sequence):
        raise TypeError(
            f"precompressed encodings are True, False or a list of names among {known}, "
            f"not a {type(value).__name__}"
        )
    if isinstance(value, str):
        # A str is a Sequence[str]: the type checks, the value is the mistake.
        raise ValueError(  # noqa: TRY004
            f"precompressed encodings are a list of names among {known}, not the str {value!r}"
        )
    names: list[str] = []
    for name in value:
        normal = name.lower() if isinstance(name, str) else ""
        if normal not in SUFFIXES:
            raise ValueError(f"unknown precompressed encoding {name!r}; known: {known}")
        if normal not in names:
            names.append(normal)
    return tuple(names)


def accepted_encodings(accept_encoding: str | None, offered: Sequence[str]) -> list[str]:
    """The offered codings the client accepts, best first.

    Read as RFC 9110 section 12.5.3 says: a coding is ranked by its q-value (1 when absent),
    ``q=0`` refuses it, ``*`` stands for every coding not named, and names are
    case-insensitive (``x-gzip`` is ``gzip``). Codings the client likes equally keep the
    order of ``offered``. A coding named twice gets its lowest q-value: a refusal wins.

    Args:
        accept_encoding: The Accept-Encoding value; ``None`` (absent) or empty gives ``[]``,
            so the file itself is sent.
        offered: The codings that could be sent, the server's preferred first.

    Returns:
        Names from ``offered``, as spelt there.

    Security:
        Never raises on a hostile header: a member that is not a token with at most a valid
        ``q`` (``q=abc``, ``q=1.0001``, ``q=2``) is ignored, and the work is linear in the
        header's length.
    """
    if not accept_encoding:
        return []
    weights = _parse(accept_encoding)
    default = weights.get("*", 0)
    ranked = []
    for position, name in enumerate(offered):
        weight = weights.get(name.lower(), default)
        if weight > 0:
            ranked.append((-weight, position, name))
    ranked.sort()
    seen: set[str] = set()
    result = []
    for _, _, name in ranked:
        if name.lower() not in seen:
            seen.add(name.lower())
            result.append(name)
    return result


def _parse(value: str) -> dict[str, int]:
    """The q-value of each coding named, in thousandths, lower-case names."""
    weights: dict[str, int] = {}
    for member in value.split(","):
        parsed = _parse_member(member)
        if parsed is not None:
            name, weight = parsed
            weights[name] = min(weight, weights.get(name, weight))
    return weights


def _parse_member(member: str) -> tuple[str, int] | None:
    """One ``coding;q=0.5`` member, or ``None`` when it is empty or malformed."""
    coding, semicolon, parameters = member.partition(";")
    coding = coding.strip(" \t").lower()
    if not coding or not _TOKEN.fullmatch(coding):
        return None
    weight = _weight(parameters.split(";")) if semicolon else 1000
    return None if weight is None else (_ALIASES.get(coding, coding), weight)


def _weight(parameters: list[str]) -> int | None:
    """The q-value among a member's parameters in thousandths (1000 when absent), or ``None``."""
    weight: int | None = None
    for parameter in parameters:
        name, equals, text = parameter.partition("=")
        if name.strip(" \t").lower() != "q":
            continue
        if weight is not None or not equals:
            return None
        text = text.strip(" \t")
        if not _QVALUE.fullmatch(text):
            return None
        whole, _, decimals = text.partition(".")
        weight = int(whole) * 1000 + int(decimals.ljust(3, "0"))
    return 1000 if weight is None else weight
