"""safe_join and clean_relative_path: which untrusted paths pass, and what they become."""

from __future__ import annotations

import pytest

from sendfs.exceptions import SourceNotFound, UnsafePath
from sendfs.storages import StorageRegistry
from sendfs.storages.paths import clean_relative_path, redact_url, redact_urls_in, safe_join

ACCEPTED = [
    ("a", "a"),
    ("a/b", "a/b"),
    ("a//b", "a/b"),
    ("./a", "a"),
    ("a/./b/", "a/b"),
    ("a/b/.", "a/b"),
    ("...", "..."),
    ("a..b/c..", "a..b/c.."),
    (".hidden", ".hidden"),
    ("ファイル/報告.pdf", "ファイル/報告.pdf"),
    ("café/naïve résumé.txt", "café/naïve résumé.txt"),
    ("my file.txt", "my file.txt"),
    ("my%20file.txt", "my%20file.txt"),
    ("100%.txt", "100%.txt"),
    ("50%25 off/a.txt", "50%25 off/a.txt"),
    ("%41%42.txt", "%41%42.txt"),
    ("console.txt", "console.txt"),
    ("com10", "com10"),
    ("auxiliary.txt", "auxiliary.txt"),
]

REFUSED = [
    "..",
    "../x",
    "a/..",
    "a/../b",
    "a/b/../../..",
    "/etc/passwd",
    "/",
    "//server/share",
    "\\",
    "a\\b",
    "\\windows\\system32",
    "..\\x",
    "C:foo",
    "c:/x",
    "a:b",
    "C:\\x",
    "a\x00b",
    "a\nb",
    "a\rb",
    "a\tb",
    "a\x7fb",
    "\x1b[31m",
    "%2e%2e/x",
    "%2E%2E/x",
    "a/%2e%2e",
    "%2e%2e",
    "%2f",
    "%2Fetc%2Fpasswd",
    "a%2F..%2Fb",
    "a%2fb",
    "%5c",
    "a%5Cb",
    "%00",
    "a%0ab",
    "con",
    "CON",
    "CON.txt",
    "dir/con",
    "aux",
    "prn.log",
    "nul",
    "lpt1",
    "LPT9.doc",
    "com1",
    "com9.log",
    "conin$",
    "con .txt",
]


@pytest.mark.parametrize(("path", "expected"), ACCEPTED)
def test_clean_relative_path_accepts_and_normalises(path: str, expected: str) -> None:
    assert clean_relative_path(path) == expected


@pytest.mark.parametrize(("path", "expected"), ACCEPTED)
def test_safe_join_appends_accepted_paths_under_the_root(path: str, expected: str) -> None:
    assert safe_join("/srv/files", path) == f"/srv/files/{expected}"


@pytest.mark.parametrize("path", REFUSED)
def test_clean_relative_path_refuses_unsafe_paths(path: str) -> None:
    with pytest.raises(UnsafePath):
        clean_relative_path(path)


@pytest.mark.parametrize("path", REFUSED)
def test_safe_join_refuses_unsafe_paths_as_not_found(path: str) -> None:
    with pytest.raises(SourceNotFound):
        safe_join("/srv/files", path)


@pytest.mark.parametrize("path", ["", ".", "./", "./.", "././", ".//."])
def test_empty_path_is_the_root(path: str) -> None:
    assert clean_relative_path(path) == ""
    assert safe_join("/srv/files", path) == "/srv/files"
    assert safe_join("s3://bucket/prefix", path) == "s3://bucket/prefix"


@pytest.mark.parametrize(
    ("root", "path", "expected"),
    [
        ("/srv/files", "x", "/srv/files/x"),
        ("/srv/files/", "x", "/srv/files/x"),
        ("/srv/files//", "a/b", "/srv/files/a/b"),
        ("/", "etc", "/etc"),
        ("s3://bucket/prefix", "a/b.txt", "s3://bucket/prefix/a/b.txt"),
        ("s3://bucket/prefix/", "a/b.txt", "s3://bucket/prefix/a/b.txt"),
        ("memory://root", "x.bin", "memory://root/x.bin"),
    ],
)
def test_safe_join_puts_exactly_one_slash_between_root_and_path(
    root: str, path: str, expected: str
) -> None:
    assert safe_join(root, path) == expected


@pytest.mark.parametrize("path", ["-private/secret", "-private", "../files-private/secret"])
def test_safe_join_never_reaches_a_sibling_sharing_the_root_prefix(path: str) -> None:
    try:
        joined = safe_join("/srv/files", path)
    except UnsafePath:
        return
    assert joined.startswith("/srv/files/")
    assert not joined.startswith("/srv/files-private")


def test_unsafe_path_is_a_source_not_found() -> None:
    assert issubclass(UnsafePath, SourceNotFound)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("s3://AKIA:secret@bucket/key.bin", "s3://***@bucket/key.bin"),
        ("https://host/f.pdf?X-Amz-Signature=abc", "https://host/f.pdf?***"),
        ("https://u:p@host/f?sig=x#frag", "https://***@host/f?***"),
        ("memory://exports/a.csv", "memory://exports/a.csv"),
        ("/srv/a.txt", "/srv/a.txt"),
    ],
)
def test_redact_url_masks_user_info_and_query(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_urls_in_masks_every_url_quoted_in_an_error_text() -> None:
    text = (
        "ClientResponseError(RequestInfo(url=URL('https://h/f?X-Amz-Signature=S'), "
        'real_url=URL("https://u:pw@h/g?sig=T")), status=500) and ftp://a:b@c/d.txt'
    )
    assert redact_urls_in(text) == (
        "ClientResponseError(RequestInfo(url=URL('https://h/f?***'), "
        'real_url=URL("https://***@h/g?***")), status=500) and ftp://***@c/d.txt'
    )
    assert redact_urls_in("no URL here, not even a://") == "no URL here, not even a://"


def test_a_refused_path_under_a_mount_does_not_quote_the_mounts_credentials() -> None:
    registry = StorageRegistry()
    registry.mount("media", "https://user:PASSWORD@cdn.example.com/files?sig=SECRET")
    with pytest.raises(UnsafePath) as caught:
        registry.locate("media", "a?b.txt")
    assert "PASSWORD" not in str(caught.value)
    assert "SECRET" not in str(caught.value)
