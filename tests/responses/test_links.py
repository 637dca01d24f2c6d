"""Signed, expiring links: round trips, rotation, every refusal, and hostile query strings."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from sendfs.responses.links import EXPIRES_PARAM, SIGNATURE_PARAM, LinkSigner

OLD = "old-secret-0123456789abcdef"
NEW = "new-secret-0123456789abcdef"
OTHER = "another-secret-0123456789"
#: "Now" for every test: 2025-01-01T00:00:00Z plus half a second.
NOW = 1_735_689_600.5
#: The real one, for the tests that count the comparisons.
COMPARE_DIGEST = hmac.compare_digest


class Clock:
    """A clock the tests move by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def signer(*secrets: str | bytes, clock: Clock | None = None) -> LinkSigner:
    return LinkSigner(list(secrets), clock=clock or Clock())


def split(link: str) -> tuple[str, str]:
    """The decoded path and the raw query of a link, as a server sees them."""
    parts = urlsplit(link)
    return unquote(parts.path), parts.query


def params(query: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(query).items()}


# Round trips.


@pytest.mark.parametrize(
    "path",
    [
        "/files/report.pdf",
        "/files/report q3.pdf",
        "/",
        "/données/été 2024/résumé.txt",
        "/日本語/ファイル.txt",
        "/emoji/🎉.png",
        "/odd/a?b#c%20d&e=f+g.txt",
        "/odd/100%.txt",
        "/odd/semi;colon/comma,/at@/tilde~/",
        "/odd/back\\slash",
        "/odd/tab\tand\nnewline",
        "/double//slashes//",
        "/...dots/.hidden/a..b",
    ],
)
def test_signed_link_round_trips(path: str) -> None:
    links = signer(NEW)
    link = links.sign(path)
    request_path, query = split(link)
    assert request_path == path
    assert links.check(request_path, query) is None
    assert links.check(request_path, query.encode("latin-1")) is None


def test_link_is_the_quoted_path_then_expires_then_signature() -> None:
    link = signer(NEW).sign("/files/report q3.pdf", expires_in=60)
    path, _, query = link.partition("?")
    assert path == "/files/report%20q3.pdf"
    expires, signature = query.split("&")
    assert expires == f"{EXPIRES_PARAM}={int(NOW) + 60}"
    name, _, value = signature.partition("=")
    assert name == SIGNATURE_PARAM
    assert len(value) == 43
    assert "=" not in value


def test_signature_is_hmac_sha256_of_the_documented_message() -> None:
    query = signer(NEW).query("/a b/é", expires_in=10)
    expires = str(int(NOW) + 10)
    message = b"sendfs-link-v1\n" + expires.encode() + b"\n" + "/a b/é".encode()
    digest = hmac.new(NEW.encode(), message, hashlib.sha256).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert query == f"expires={expires}&signature={expected}"


def test_query_is_the_query_part_of_sign() -> None:
    links = signer(NEW)
    link = links.sign("/f.txt", expires_in=30)
    assert link == "/f.txt?" + links.query("/f.txt", expires_in=30)


def test_query_appended_to_a_url_with_other_parameters_checks() -> None:
    links = signer(NEW)
    query = "download=1&" + links.query("/f.txt") + "&utm_source=mail"
    assert links.check("/f.txt", query) is None


@pytest.mark.parametrize(
    "query_template",
    [
        "a=1&{signing}",
        "{signing}&a=1",
        "{expires}&a=1&{signature}",
        "{signature}&{expires}",
        "x=%FF%FE&{signing}&y=日本",
        "&&{signing}&&",
        "flag&{signing}",
    ],
)
def test_other_query_parameters_in_any_order_are_fine(query_template: str) -> None:
    links = signer(NEW)
    signing = links.query("/f.txt")
    expires, signature = signing.split("&")
    query = query_template.format(signing=signing, expires=expires, signature=signature)
    assert links.check("/f.txt", query) is None


def test_default_lifetime_is_an_hour() -> None:
    clock = Clock()
    links = signer(NEW, clock=clock)
    query = links.query("/f.txt")
    assert params(query)["expires"] == str(int(NOW) + 3600)
    clock.now = int(NOW) + 3600
    assert links.check("/f.txt", query) is None
    clock.now = int(NOW) + 3600.001
    assert links.check("/f.txt", query) == "expired"


# Expiry.


def test_link_is_valid_until_its_expiry_second_then_expired() -> None:
    clock = Clock()
    links = signer(NEW, clock=clock)
    path, query = split(links.sign("/f.txt", expires_in=5))
    expires = int(NOW) + 5
    for now, reason in [
        (NOW, None),
        (expires - 0.5, None),
        (expires, None),
        (expires + 0.001, "expired"),
        (expires + 10**6, "expired"),
    ]:
        clock.now = now
        assert links.check(path, query) == reason


@pytest.mark.parametrize(
    ("expires_at", "expected"),
    [
        (datetime(2025, 1, 1, 1, 0, tzinfo=timezone.utc), 1_735_693_200),
        (datetime(2025, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=1))), 1_735_693_200),
        (1_735_693_200, 1_735_693_200),
        (1_735_693_200.9, 1_735_693_200),
    ],
)
def test_expires_at_sets_the_expiry(expires_at: datetime | float, expected: int) -> None:
    query = signer(NEW).query("/f.txt", expires_at=expires_at)
    assert params(query)["expires"] == str(expected)


@pytest.mark.parametrize(
    "expires_at",
    [
        datetime(2024, 12, 31, 23, 59, tzinfo=timezone.utc),
        datetime(2025, 1, 1, tzinfo=timezone.utc),
        NOW,
        NOW - 1,
        int(NOW),
        0,
        -5,
    ],
)
def test_expires_at_not_in_the_future_is_refused_at_sign_time(
    expires_at: datetime | float,
) -> None:
    with pytest.raises(ValueError, match="not in the future"):
        signer(NEW).sign("/f.txt", expires_at=expires_at)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"expires_in": 0}, ValueError, "positive"),
        ({"expires_in": -1}, ValueError, "positive"),
        ({"expires_in": 10**13}, ValueError, "33658"),
        ({"expires_in": 1.5}, TypeError, "int"),
        ({"expires_in": True}, TypeError, "int"),
        ({"expires_in": "60"}, TypeError, "int"),
        ({"expires_in": 60, "expires_at": NOW + 60}, ValueError, "not both"),
        ({"expires_at": datetime(2030, 1, 1)}, ValueError, "aware"),
        ({"expires_at": float("inf")}, ValueError, "finite"),
        ({"expires_at": float("nan")}, ValueError, "finite"),
        ({"expires_at": 10.0**12}, ValueError, "33658"),
        ({"expires_at": "2030-01-01"}, TypeError, "timestamp"),
        ({"expires_at": True}, TypeError, "timestamp"),
    ],
)
def test_bad_expiry_options_are_refused(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        signer(NEW).sign("/f.txt", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "start with"),
        ("files/a.txt", "start with"),
        ("https://example.com/a.txt", "start with"),
        ("/a/../b.txt", "segments"),
        ("/a/./b.txt", "segments"),
        ("/a/..", "segments"),
        ("/.", "segments"),
        ("//evil.example/a.txt", "host"),
        ("//", "host"),
        ("/bad\udcff.txt", "Unicode"),
    ],
)
def test_paths_a_link_cannot_carry_are_refused(path: str, message: str) -> None:
    links = signer(NEW)
    with pytest.raises(ValueError, match=message):
        links.sign(path)
    with pytest.raises(ValueError, match=message):
        links.query(path)


# Rotation.


def test_rotation_accepts_links_of_every_listed_secret() -> None:
    old_link = signer(OLD).sign("/f.txt")
    rotated = signer(NEW, OLD)
    assert rotated.check(*split(old_link)) is None
    assert rotated.check(*split(rotated.sign("/f.txt"))) is None


def test_rotation_signs_with_the_first_secret() -> None:
    rotated = signer(NEW, OLD)
    assert signer(NEW).check(*split(rotated.sign("/f.txt"))) is None
    assert signer(OLD).check(*split(rotated.sign("/f.txt"))) == "tampered"


def test_link_of_a_removed_secret_is_refused() -> None:
    old_link = signer(OLD).sign("/f.txt")
    assert signer(NEW).check(*split(old_link)) == "tampered"
    assert signer(NEW, OTHER).check(*split(old_link)) == "tampered"


def test_str_and_bytes_secrets_are_the_same_key() -> None:
    link = signer(NEW).sign("/f.txt")
    assert signer(NEW.encode()).check(*split(link)) is None
    assert LinkSigner(NEW.encode(), clock=Clock()).check(*split(link)) is None
    assert LinkSigner(NEW, clock=Clock()).check(*split(link)) is None


# Refusals.


def _tamper_signature(query: str) -> str:
    fields = params(query)
    raw = bytearray(base64.urlsafe_b64decode(fields["signature"] + "="))
    raw[0] ^= 1
    signature = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    return f"expires={fields['expires']}&signature={signature}"


def _tamper_expires(query: str) -> str:
    fields = params(query)
    return f"expires={int(fields['expires']) + 1}&signature={fields['signature']}"


def _expires_with_leading_zero(query: str) -> str:
    fields = params(query)
    return f"expires=0{fields['expires']}&signature={fields['signature']}"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda path, query: ("/f.txt", query), None),
        (lambda path, query: ("/g.txt", query), "tampered"),
        (lambda path, query: ("/f.txt/", query), "tampered"),
        (lambda path, query: ("/F.txt", query), "tampered"),
        (lambda path, query: ("/f.txt\x00", query), "tampered"),
        (lambda path, query: ("/f.txt\udcff", query), "tampered"),
        (lambda path, query: (path, _tamper_signature(query)), "tampered"),
        (lambda path, query: (path, _tamper_expires(query)), "tampered"),
        (lambda path, query: (path, _expires_with_leading_zero(query)), "tampered"),
    ],
)
def test_tampering_with_path_expires_or_signature_is_refused(
    change: Callable[[str, str], tuple[str, str]], reason: str | None
) -> None:
    links = signer(NEW, OLD)
    path, query = split(links.sign("/f.txt"))
    assert links.check(*change(path, query)) == reason


def test_tampered_and_expired_link_reports_tampered() -> None:
    clock = Clock()
    links = signer(NEW, clock=clock)
    query = links.query("/f.txt", expires_in=1)
    clock.now += 100
    assert links.check("/f.txt", query) == "expired"
    assert links.check("/g.txt", query) == "tampered"


GOOD_SIGNATURE = "A" * 42 + "E"


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("", "missing"),
        ("a=1&b=2", "missing"),
        ("expires=1800000000", "missing"),
        (f"signature={GOOD_SIGNATURE}", "missing"),
        (f"Expires=1800000000&Signature={GOOD_SIGNATURE}", "missing"),
        (f"?expires=1800000000&signature={GOOD_SIGNATURE}", "missing"),
        (f"expires=1800000000&expires=1800000000&signature={GOOD_SIGNATURE}", "malformed"),
        (f"expires=1800000000&signature={GOOD_SIGNATURE}&signature=x", "malformed"),
        ("expires=1&expires=2", "malformed"),
        (f"expires=&signature={GOOD_SIGNATURE}", "malformed"),
        (f"expires&signature={GOOD_SIGNATURE}", "malformed"),
        (f"expires=-1&signature={GOOD_SIGNATURE}", "malformed"),
        (f"expires=+1800000000&signature={GOOD_SIGNATURE}", "malformed"),
        (f"expires=1800000000.5&signature={GOOD_SIGNATURE}", "malformed"),
        (f"expires=1e9&signature={GOOD_SIGNATURE}", "malformed"),
        (f"expires=0x10&signature={GOOD_SIGNATURE}", "malformed"),
        (f"expires=%EF%BC%91&signature={GOOD_SIGNATURE}", "malformed"),  # fullwidth 1
        (f"expires=%C2%B2&signature={GOOD_SIGNATURE}", "malformed"),  # superscript 2
        (f"expires=1800000000%0A&signature={GOOD_SIGNATURE}", "malformed"),
        (f"expires={'9' * 13}&signature={GOOD_SIGNATURE}", "malformed"),
        (f"expires={'1' * 5000}&signature={GOOD_SIGNATURE}", "malformed"),
        ("expires=1800000000&signature=", "malformed"),
        ("expires=1800000000&signature", "malformed"),
        (f"expires=1800000000&signature={GOOD_SIGNATURE}=", "malformed"),
        (f"expires=1800000000&signature={GOOD_SIGNATURE[:-1]}", "malformed"),
        (f"expires=1800000000&signature={GOOD_SIGNATURE}A", "malformed"),
        (f"expires=1800000000&signature={'A' * 42}F", "malformed"),  # not canonical
        (f"expires=1800000000&signature={'+' * 43}", "malformed"),
        (f"expires=1800000000&signature={'/' * 43}", "malformed"),
        (f"expires=1800000000&signature={'é' * 43}", "malformed"),
        (f"expires=1800000000&signature={'A' * 86}", "malformed"),
        (f"expires=1800000000&signature={GOOD_SIGNATURE}", "tampered"),
        (f"expires=0&signature={GOOD_SIGNATURE}", "tampered"),
    ],
)
def test_each_refusal_reason(query: str, reason: str) -> None:
    links = signer(NEW)
    assert links.check("/f.txt", query) == reason
    assert links.check("/f.txt", query.encode("utf-8")) == reason


@pytest.mark.parametrize(
    "query",
    [
        "a=" + "x" * 9000,
        "&" * 100_000,
        "expires=1&" * 1000,
        "x" * 10**6,
        b"\xff" * 9000,
    ],
)
def test_huge_query_strings_are_malformed_unread(query: str | bytes) -> None:
    assert signer(NEW).check("/f.txt", query) == "malformed"


def test_valid_signing_parameters_in_an_oversized_query_are_refused() -> None:
    links = signer(NEW)
    query = links.query("/f.txt") + "&pad=" + "x" * 8192
    assert links.check("/f.txt", query) == "malformed"


@pytest.mark.parametrize(
    "query",
    [
        b"\xff\xfe\x00\x80",
        b"expires=\xff&signature=\xff",
        "expires=日本&signature=語",
        "expires=%&signature=%%",
        "expires=%zz&signature=%zz",
        "\x00\r\n=\x00",
        "=&=&==",
        ";;;",
        "\udcff=\udcff",
        "expires=1800000000;signature=" + GOOD_SIGNATURE,
    ],
)
def test_hostile_query_strings_never_raise(query: str | bytes) -> None:
    assert signer(NEW).check("/f.txt", query) in {"missing", "malformed"}


@pytest.mark.parametrize(
    "path",
    ["", "no-slash", "/\x00", "/\udcff\ud800", "/" + "a" * 100_000, "/日本/\r\n"],
)
def test_hostile_paths_are_refused_without_raising(path: str) -> None:
    query = "expires=1800000000&signature=" + GOOD_SIGNATURE
    assert signer(NEW).check(path, query) == "tampered"


def test_signature_encoded_with_percent_escapes_is_read_like_a_form() -> None:
    links = signer(NEW)
    query = links.query("/f.txt")
    expires, signature = query.split("&")
    name, _, value = signature.partition("=")
    escaped = "".join(f"%{ord(char):02X}" for char in value)
    assert links.check("/f.txt", f"{expires}&{name}={escaped}") is None


# Construction.


@pytest.mark.parametrize(
    ("secrets", "error", "message"),
    [
        ([], ValueError, "at least one secret"),
        ((), ValueError, "at least one secret"),
        ("short", ValueError, "secret #0 is 5 bytes"),
        ("", ValueError, "secret #0 is 0 bytes"),
        (b"x" * 15, ValueError, "at least 16"),
        ([NEW, "x" * 15], ValueError, "secret #1 is 15 bytes"),
        ("é" * 7, ValueError, "14 bytes"),
        ("\udcff" * 20, ValueError, "not valid Unicode"),
        (None, TypeError, "NoneType"),
        (12345678901234567890, TypeError, "int"),
        ({NEW, OLD}, TypeError, "set"),
        ([NEW, 1234], TypeError, "secret #1 is a int"),
        ([NEW, None], TypeError, "secret #1 is a NoneType"),
        ([bytearray(b"x" * 32)], TypeError, "bytearray"),
    ],
)
def test_bad_secrets_are_refused_at_construction(
    secrets: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        LinkSigner(secrets)  # type: ignore[arg-type]


def test_short_secret_error_says_how_to_make_one() -> None:
    with pytest.raises(ValueError, match=r"secrets\.token_urlsafe\(32\)"):
        LinkSigner("short")


def test_sixteen_byte_secret_is_enough() -> None:
    assert repr(LinkSigner("x" * 16)) == "<LinkSigner: 1 secret>"
    assert repr(LinkSigner("é" * 8)) == "<LinkSigner: 1 secret>"


@pytest.mark.parametrize(
    ("secrets", "expected"),
    [
        (NEW, "<LinkSigner: 1 secret>"),
        (NEW.encode(), "<LinkSigner: 1 secret>"),
        ([NEW], "<LinkSigner: 1 secret>"),
        ([NEW, OLD], "<LinkSigner: 2 secrets>"),
        ((NEW, OLD.encode(), OTHER), "<LinkSigner: 3 secrets>"),
    ],
)
def test_repr_counts_secrets_and_never_shows_them(
    secrets: str | bytes | list[str] | tuple[str | bytes, ...], expected: str
) -> None:
    links = LinkSigner(secrets)
    assert repr(links) == expected
    assert str(links) == expected
    for secret in (NEW, OLD, OTHER, "secret-0123"):
        assert secret not in repr(links)


def test_default_clock_is_the_real_time() -> None:
    links = LinkSigner(NEW)
    query = links.query("/f.txt", expires_in=60)
    assert links.check("/f.txt", query) is None
    assert signer(NEW, clock=Clock(4_000_000_000)).check("/f.txt", query) == "expired"


@pytest.mark.parametrize("signed_with", [NEW, OLD, OTHER])
def test_every_secret_is_compared_whichever_matches(
    signed_with: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bool] = []

    def counting_compare(a: bytes, b: bytes) -> bool:
        assert isinstance(a, bytes)
        assert isinstance(b, bytes)
        calls.append(COMPARE_DIGEST(a, b))
        return calls[-1]

    monkeypatch.setattr(hmac, "compare_digest", counting_compare)
    query = signer(signed_with).query("/f.txt")
    assert signer(NEW, OLD, OTHER).check("/f.txt", query) is None
    assert calls == [secret == signed_with for secret in (NEW, OLD, OTHER)]


def test_expired_link_is_compared_against_every_secret_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[bool] = []

    def counting_compare(a: bytes, b: bytes) -> bool:
        calls.append(COMPARE_DIGEST(a, b))
        return calls[-1]

    monkeypatch.setattr(hmac, "compare_digest", counting_compare)
    clock = Clock()
    links = signer(NEW, OLD, clock=clock)
    query = links.query("/f.txt", expires_in=1)
    clock.now += 10
    assert links.check("/f.txt", query) == "expired"
    assert calls == [True, False]
