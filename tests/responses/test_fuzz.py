"""Hostile input, fuzzed with hypothesis: request headers, download names, media types, paths.

Whatever a client (or a server passing raw bytes) puts in Range, If-Range, If-Match,
If-None-Match, If-Modified-Since and If-Unmodified-Since, and whatever an app passes as a download
name or media type: never a 5xx, never a malformed response header, never a body much larger than
the file, and Content-Length always equals the bytes sent. Whatever path a user asks for:
``send_from_storage`` and ``StorageFiles`` never reach outside their root.

Responses are checked at the ASGI message level (the raw header bytes a server would write) by
calling the app directly, and through httpx's ASGI transport for what a client library sends.
"""

from __future__ import annotations

import functools
import io
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import fsspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from lilya.apps import Lilya
from lilya.exceptions import HTTPException
from lilya.routing import Include

from sendfs import send_file, send_from_storage
from sendfs.exceptions import SourceNotFound
from sendfs.responses.file import FileResponse
from sendfs.responses.static import StorageFiles
from sendfs.storages import StorageRegistry
from sendfs.storages.metadata import derived_etag
from tests.helpers import asgi_client, lilya_app, parse_multipart, record_call

pytestmark = pytest.mark.anyio

CONTENT = bytes((i * 7 + 3) % 256 for i in range(1000))
SIZE = len(CONTENT)
#: "About twice the file's size": the bound every body must stay under.
MAX_BODY = 2 * SIZE + 1024
#: 2023-11-14 22:13:20 UTC.
MTIME = 1_700_000_000

FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

CONDITIONAL_FIELDS = (
    "range",
    "if-range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
)

#: RFC 9110 token: what a field name must be.
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: C0 controls but HTAB, DEL and C1 controls: never in a field value we send.
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_CONTENT_RANGE = re.compile(r"bytes ([0-9]+)-([0-9]+)/([0-9]+)")


# -- strategies ------------------------------------------------------------------------------

#: What an HTTP header value can carry through httpx: Latin-1 text without CR, LF or NUL.
header_text = st.text(st.characters(codec="latin-1", exclude_characters="\r\n\x00"), max_size=200)
#: Any text at all, lone surrogates (undecodable file names) and controls included.
wild_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=100),
    st.text(st.characters(codec="latin-1"), max_size=100),
    st.text(st.characters(exclude_categories=()), min_size=1000, max_size=2000),
)


def _positions() -> st.SearchStrategy[str]:
    # "²" is a digit to str.isdigit() but not to RFC 9110; huge numbers must not overflow.
    odd = st.sampled_from(["", "²", " 1", "1 ", "-0", "+1", "0x10", "99999999999999999999999"])
    return st.one_of(st.integers(0, 2 * SIZE).map(str), odd)


def _well_formed_ranges() -> st.SearchStrategy[str]:
    """Range sets that parse: one range (206), several (multipart or 200), none inside (416)."""
    position = st.integers(0, SIZE + 50)
    spec = st.one_of(
        st.builds(lambda first, extra: f"{first}-{first + extra}", position, st.integers(0, 300)),
        position.map(lambda first: f"{first}-"),
        st.integers(1, SIZE + 50).map(lambda length: f"-{length}"),
    )
    unit = st.sampled_from(["bytes", "BYTES", " bytes", "bytes "])
    satisfiable = st.builds(
        lambda u, specs: f"{u}={', '.join(specs)}", unit, st.lists(spec, min_size=1, max_size=20)
    )
    beyond_end = st.lists(st.integers(SIZE, 10 * SIZE), min_size=1, max_size=3).map(
        lambda firsts: "bytes=" + ",".join(f"{first}-" for first in firsts)
    )
    return st.one_of(satisfiable, beyond_end)


def _fuzzy_ranges() -> st.SearchStrategy[str]:
    """Range headers that are nearly right: odd numbers, units, separators, junk specs."""
    position = _positions()
    spec = st.one_of(
        st.builds(lambda first, last: f"{first}-{last}", position, position),
        position.map(lambda length: f"-{length}"),
        header_text.map(lambda text: text[:8]),
    )
    unit = st.sampled_from(["bytes", "BYTES", " bytes", "bytes ", "items", "", "bytes=bytes"])
    separator = st.sampled_from([",", ", ", ",,", " , ", ";"])
    return st.builds(
        lambda u, specs, sep: f"{u}={sep.join(specs)}",
        unit,
        st.lists(spec, max_size=40),
        separator,
    )


def range_values() -> st.SearchStrategy[str]:
    """Range headers that mostly parse, so the interesting paths (206, multipart, 416) run."""
    return st.one_of(_well_formed_ranges(), _fuzzy_ranges())


@functools.cache
def etag_values(etag: str) -> st.SearchStrategy[str]:
    """Entity-tag lists built around the file's real tag."""
    tag = st.sampled_from(
        [f'"{etag}"', f'W/"{etag}"', etag, "*", '"other"', 'W/"other"', '""', '"', "W/", '"a,b"']
    )
    return st.builds(
        lambda tags, sep: sep.join(tags),
        st.lists(tag, min_size=1, max_size=5),
        st.sampled_from([",", ", ", " ,", ",,"]),
    )


def date_values() -> st.SearchStrategy[str]:
    """HTTP dates around the file's mtime, in the three formats, and near misses."""
    moment = st.integers(-100_000, 100_000).map(
        lambda delta: datetime.fromtimestamp(MTIME, timezone.utc) + timedelta(seconds=delta)
    )
    formats: list[Callable[[datetime], str]] = [
        lambda m: format_datetime(m, usegmt=True),
        lambda m: m.strftime("%A, %d-%b-%y %H:%M:%S GMT"),
        lambda m: m.strftime("%a %b %e %H:%M:%S %Y"),
        lambda m: format_datetime(m, usegmt=True).replace("GMT", "UTC"),
        lambda m: format_datetime(m, usegmt=True).lower(),
        lambda m: f"{format_datetime(m, usegmt=True)}, {format_datetime(m, usegmt=True)}",
        lambda m: str(m.timestamp()),
        lambda m: m.isoformat(),
    ]
    return st.builds(lambda m, fmt: fmt(m), moment, st.sampled_from(formats))


@functools.cache
def field_values(name: str, etag: str) -> st.SearchStrategy[str]:
    """Free Latin-1 text, or a near-valid value for the field ``name``.

    Strategies are cached per tag: building them is what costs, not drawing from them.
    """
    near_valid: dict[str, st.SearchStrategy[str]] = {
        "range": range_values(),
        "if-range": st.one_of(etag_values(etag), date_values()),
        "if-match": etag_values(etag),
        "if-none-match": etag_values(etag),
        "if-modified-since": date_values(),
        "if-unmodified-since": date_values(),
    }
    return st.one_of(header_text, near_valid[name])


@functools.cache
def conditional_headers(etag: str) -> st.SearchStrategy[dict[str, str]]:
    """Some of the six fields with fuzzed values; Range alone or with If-Range half the time."""
    values = {name: field_values(name, etag) for name in CONDITIONAL_FIELDS}
    return st.one_of(
        st.fixed_dictionaries({"range": values["range"]}),
        st.fixed_dictionaries({"range": values["range"], "if-range": values["if-range"]}),
        st.fixed_dictionaries({}, optional=values),
    )


@functools.cache
def raw_header_lists(etag: str) -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    """Header lists as a server could pass them: any bytes, any case, repeated fields."""
    name = st.sampled_from(
        [*CONDITIONAL_FIELDS, *(n.upper() for n in CONDITIONAL_FIELDS), "Range", "If-Match"]
    ).map(str.encode)
    text_value = st.sampled_from(CONDITIONAL_FIELDS).flatmap(lambda n: field_values(n, etag))
    value = st.one_of(
        st.binary(max_size=300),
        text_value.map(lambda text: text.encode("latin-1")),
        st.text(max_size=50).map(lambda text: text.encode("utf-8", "surrogatepass")),
    )
    fields = st.lists(st.tuples(name, value), max_size=8)
    range_only = conditional_headers(etag).map(
        lambda headers: [(key.encode(), text.encode("latin-1")) for key, text in headers.items()]
    )
    return st.one_of(fields, range_only)


# -- driving the app directly ------------------------------------------------------------------


@dataclass
class Exchange:
    """Everything the app sent for one request."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    finished: bool

    def header(self, name: bytes) -> bytes | None:
        values = [value for key, value in self.headers if key == name]
        assert len(values) <= 1, (name, values)
        return values[0] if values else None


def http_scope(
    method: str, path: str, headers: Sequence[tuple[bytes, bytes]], raw_path: bytes | None = None
) -> dict[str, Any]:
    """An HTTP scope as uvicorn builds it (``path`` percent-decoded, ``raw_path`` as sent)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": raw_path if raw_path is not None else path.encode("utf-8", "surrogatepass"),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "extensions": {},
    }


async def call_app(app: Any, scope: dict[str, Any]) -> Exchange:
    """Call ``app`` like a server whose client waits for the whole response."""
    messages = (await record_call(app, scope)).messages
    start, *rest = messages
    assert start["type"] == "http.response.start", messages[:2]
    assert all(message["type"] == "http.response.body" for message in rest), rest
    body = b"".join(message.get("body", b"") for message in rest)
    finished = bool(rest) and not rest[-1].get("more_body", False)
    return Exchange(start["status"], list(start.get("headers", [])), body, finished)


def assert_clean_headers(headers: Sequence[tuple[bytes, bytes]]) -> None:
    """Every name a lower-case token, every value Latin-1 without CR, LF, NUL or controls."""
    for name, value in headers:
        assert isinstance(name, bytes)
        assert isinstance(value, bytes)
        assert _TOKEN.fullmatch(name), name
        assert name == name.lower(), name
        assert not _CONTROL.search(value), (name, value)
        value.decode("latin-1")


def assert_sane_file_response(exchange: Exchange, method: str) -> None:
    """The guarantees of a response serving CONTENT, whatever the request said."""
    multipart = (exchange.header(b"content-type") or b"").startswith(b"multipart/")
    event(f"{method} {exchange.status}{' multipart' if multipart else ''}")
    assert exchange.status in (200, 206, 304, 412, 416), exchange.status
    assert exchange.finished
    assert_clean_headers(exchange.headers)
    assert len(exchange.body) <= MAX_BODY
    if method == "HEAD" or exchange.status not in (200, 206):
        assert exchange.body == b""
        return
    length = exchange.header(b"content-length")
    assert length is not None
    assert int(length) == len(exchange.body)
    assert_exact_body(exchange.status, exchange.header(b"content-type") or b"", exchange)


def assert_exact_body(status: int, content_type: bytes, exchange: Exchange) -> None:
    if status == 200:
        assert exchange.body == CONTENT
        return
    if content_type.startswith(b"multipart/byteranges"):
        parts = parse_multipart(content_type.decode(), exchange.body)
        assert len(parts) >= 2
        for part in parts:
            first, last = _content_range(part.headers["content-range"])
            assert part.body == CONTENT[first : last + 1]
        return
    content_range = exchange.header(b"content-range")
    assert content_range is not None
    first, last = _content_range(content_range.decode())
    assert exchange.body == CONTENT[first : last + 1]


def _content_range(value: str) -> tuple[int, int]:
    match = _CONTENT_RANGE.fullmatch(value)
    assert match, value
    first, last, size = (int(group) for group in match.groups())
    assert size == SIZE
    assert first <= last < SIZE
    return first, last


# -- the file --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """How to make a fresh source holding CONTENT, and the entity tag it is served with."""

    kind: str
    make: Callable[[], Any]
    etag: str


@pytest.fixture(params=["local", "bytesio"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Served:
    if request.param == "bytesio":
        return Served("bytesio", lambda: io.BytesIO(CONTENT), "no-etag")
    path = tmp_path / "data.bin"
    path.write_bytes(CONTENT)
    os.utime(path, (MTIME, MTIME))
    st_ = os.stat(path)
    etag = derived_etag(st_.st_dev, st_.st_ino, st_.st_mtime_ns, st_.st_size)
    return Served("local", lambda: str(path), etag)


def file_app(served: Served, **options: Any) -> Lilya:
    async def endpoint() -> FileResponse:
        return send_file(served.make(), **options)

    return lilya_app(endpoint)


# -- request headers -------------------------------------------------------------------------


@FUZZ
@given(data=st.data(), method=st.sampled_from(["GET", "GET", "GET", "HEAD"]))
async def test_any_conditional_or_range_header_text_from_a_client_gets_a_sane_response(
    served: Served, data: st.DataObject, method: str
) -> None:
    headers = data.draw(conditional_headers(served.etag), label="headers")
    raw = [(name.encode(), value.encode("latin-1")) for name, value in headers.items()]
    async with asgi_client(file_app(served)) as client:
        response = await client.request(method, "/file", headers=raw)
    exchange = Exchange(
        response.status_code, list(response.headers.raw), response.content, finished=True
    )
    assert_sane_file_response(exchange, method)


@FUZZ
@given(data=st.data(), method=st.sampled_from(["GET", "GET", "GET", "HEAD"]))
async def test_any_header_bytes_a_server_passes_get_a_sane_response(
    served: Served, data: st.DataObject, method: str
) -> None:
    headers = data.draw(raw_header_lists(served.etag), label="headers")
    exchange = await call_app(file_app(served), http_scope(method, "/file", headers))
    assert_sane_file_response(exchange, method)


@FUZZ
@given(
    download_name=st.none() | wild_text,
    mimetype=st.none() | wild_text,
    as_attachment=st.booleans(),
    range_header=st.sampled_from([None, "bytes=0-9", "bytes=-5", "bytes=0-0,500-509,990-"]),
)
async def test_any_download_name_or_mimetype_gives_clean_headers(
    served: Served,
    download_name: str | None,
    mimetype: str | None,
    as_attachment: bool,
    range_header: str | None,
) -> None:
    app = file_app(
        served, download_name=download_name, mimetype=mimetype, as_attachment=as_attachment
    )
    headers = [(b"range", range_header.encode())] if range_header else []
    exchange = await call_app(app, http_scope("GET", "/file", headers))
    assert_sane_file_response(exchange, "GET")
    disposition = exchange.header(b"content-disposition")
    if as_attachment:
        assert disposition is not None
        assert disposition.startswith(b"attachment")
    if disposition is not None:
        # The name never grows without bound: cut to 255 UTF-8 bytes, each percent-encoded
        # at most in filename*, besides an ASCII fallback of at most 255 characters.
        assert len(disposition) < 255 * 3 + 255 + 100


# -- paths -----------------------------------------------------------------------------------

#: Pieces of paths attackers try, mixed with arbitrary text.
_TRICKS = [
    "..",
    ".",
    "",
    "a.txt",
    "sub",
    "b.txt",
    "root-private",
    "secret.txt",
    "%2e%2e",
    "%2E%2e",
    "%2f",
    "..%2f",
    "%5c",
    "..\\..",
    "\\",
    "~",
    "%00",
    "\x00",
    "C:",
    "c:secret.txt",
    "con",
    "NUL.txt",
    "..\u2215",
    "\uff0e\uff0e",
    "a::memory://x",
    "file:",
    "//",
    "%252e%252e",
]
segments = st.one_of(
    st.lists(st.one_of(st.sampled_from(_TRICKS), st.text(max_size=12)), max_size=7),
    # The files themselves, with harmless (".", "//") and harmful ("..") decorations.
    st.lists(st.sampled_from([".", "", "..", "sub", "a.txt", "b.txt"]), max_size=3).flatmap(
        lambda noise: st.sampled_from([["a.txt"], ["sub", "b.txt"]]).map(
            lambda target: [*noise, *target]
        )
    ),
)
any_path = st.one_of(st.text(), segments.map("/".join))

SECRET = b"TOP SECRET: outside the root"
A_TXT = b"file a, inside the root"
B_TXT = b"file b, in a subdirectory"


def _local_tree(base: Path) -> str:
    """``base/root/{a.txt, sub/b.txt}`` and the secret next to it in ``base/root-private``."""
    root = base / "root"
    (root / "sub").mkdir(parents=True, exist_ok=True)
    (root / "a.txt").write_bytes(A_TXT)
    (root / "sub" / "b.txt").write_bytes(B_TXT)
    (base / "root-private").mkdir(exist_ok=True)
    (base / "root-private" / "secret.txt").write_bytes(SECRET)
    (base / "secret.txt").write_bytes(SECRET)
    return str(root)


@pytest.fixture
def local_root(tmp_path: Path) -> str:
    return _local_tree(tmp_path)


def _within_text(target: str, root: str) -> bool:
    return target == root or target.startswith(root + "/")


def _resolve_or_404(
    reg: StorageRegistry, root: str, path: str
) -> tuple[FileResponse | None, str | None]:
    """``send_from_storage`` and the target it resolved to, or ``(None, None)`` for a 404."""
    try:
        response = send_from_storage(root, path, registry=reg)
    except HTTPException as exc:
        assert exc.status_code == 404  # noqa: PT017 - either outcome is valid here
        with pytest.raises(SourceNotFound):
            reg.locate(root, path)
        return None, None
    target = reg.locate(root, path).target
    assert response.download.resolved.target == target
    return response, target


@FUZZ
@given(path=any_path)
def test_send_from_storage_never_resolves_outside_a_local_root(local_root: str, path: str) -> None:
    reg = StorageRegistry()
    _response, target = _resolve_or_404(reg, local_root, path)
    if target is None:
        return
    assert _within_text(target, local_root), target
    real_root = os.path.realpath(local_root)
    assert _within_text(os.path.realpath(target), real_root), target


@FUZZ
@given(path=any_path)
def test_send_from_storage_never_resolves_outside_a_memory_root(path: str) -> None:
    reg = StorageRegistry()
    root = "memory://fuzz-root"
    _response, target = _resolve_or_404(reg, root, path)
    if target is None:
        return
    assert _within_text(target, root), target
    # What fsspec will actually open stays under the root too.
    stripped = fsspec.get_filesystem_class("memory")._strip_protocol(target).lstrip("/")
    assert stripped == "fuzz-root" or stripped.startswith("fuzz-root/"), stripped


@FUZZ
@given(parts=segments, per_segment=st.booleans(), trailing_slash=st.booleans())
async def test_storage_files_serves_only_the_files_inside_its_root(
    local_root: str, parts: list[str], per_segment: bool, trailing_slash: bool
) -> None:
    reg = StorageRegistry()
    app = Lilya(routes=[Include("/files", app=StorageFiles(local_root, registry=reg))])
    relative = "/".join(parts) + ("/" if trailing_slash else "")
    if per_segment:
        quoted = "/".join(quote(part, safe="") for part in relative.split("/"))
    else:
        quoted = quote(relative, safe="/")
    raw_path = f"/files/{quoted}"
    # What uvicorn does: percent-decode the raw path once, as UTF-8.
    scope = http_scope("GET", unquote(raw_path), [], raw_path=raw_path.encode("ascii"))
    exchange = await call_app(app, scope)

    event(f"status {exchange.status}")
    assert exchange.status < 500, exchange
    assert SECRET not in exchange.body
    assert_clean_headers(exchange.headers)
    decoded = unquote(quoted)
    canonical = "/".join(part for part in decoded.split("/") if part not in ("", "."))
    expected = {"a.txt": A_TXT, "sub/b.txt": B_TXT}.get(canonical)
    if exchange.status == 200:
        assert expected is not None, (raw_path, exchange.status)
        assert exchange.body == expected
    if expected is not None and not decoded.endswith("/"):
        assert exchange.status == 200, (raw_path, exchange.status)
