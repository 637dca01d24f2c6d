"""Opens confined to a root: one table of cases, answered alike by openat2 and by the walk."""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path

import anyio
import pytest

from sendfs import send_from_storage
from sendfs.exceptions import SourceIsDirectory, SourceNotFound, UnsafePath
from sendfs.storages import LocalBackend, StorageRegistry, confined
from sendfs.storages.confined import MAX_SYMLINKS, open_beneath, relative_to_root, stat_beneath
from sendfs.storages.local import LocalResource
from tests.helpers import http_scope, record_call

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="symbolic links, FIFOs and dir_fd need POSIX"
)

TOP = b"top file\n"
DEEP = b"deep file\n"
SECRET = b"OUTSIDE SECRET\n"
READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC

STRATEGIES = ["openat2", "walk"]


@pytest.fixture(params=STRATEGIES)
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs once with openat2 (where the kernel has it) and once with the walk."""
    name: str = request.param
    if name == "openat2" and confined._openat2() is None:
        pytest.skip("this kernel (or its seccomp filter) has no openat2")
    monkeypatch.setattr(confined, "prefer_openat2", name == "openat2")
    return name


def make_tree(base: Path) -> Path:
    """A root full of links, next to an ``outside`` directory holding the secret."""
    outside = base / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.txt").write_bytes(SECRET)
    (outside / "dir" / "f.txt").write_bytes(SECRET)
    root = base / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "f.txt").write_bytes(TOP)
    (root / "a" / "b" / "c.txt").write_bytes(DEEP)
    links = {
        "rel-file": "a/b/c.txt",
        "dir-link": "a/b",
        "abs-file": f"{root}/a/b/c.txt",
        "abs-dir": f"{root}/a",
        "abs-root": str(root),
        "chain1": "chain2",
        "chain2": "a/chain3",
        "a/chain3": "../f.txt",
        "loop1": "loop2",
        "loop2": "loop1",
        "out-rel": "../outside/secret.txt",
        "out-abs": f"{outside}/secret.txt",
        "out-dir": "../outside/dir",
        "out-back-in": "../root/f.txt",
        "dangling": "missing.txt",
        "a/up": "../f.txt",
        "a/b/up2": "../../a/b/c.txt",
        "a/b/deep-out": "../../../outside/secret.txt",
        "a/parent": "..",
        "dot": ".",
        "slash-file": "f.txt/",
        "slash-dir": "a/b/",
        "abs-dotdot-out": f"{root}/../outside/secret.txt",
        "proc-self": "/proc/self/root/etc/hostname",
    }
    for name, target in links.items():
        os.symlink(target, root / name)
    for index in range(MAX_SYMLINKS + 1):  # long0 -> long1 -> ... -> long40 -> f.txt
        following = f"long{index + 1}" if index < MAX_SYMLINKS else "f.txt"
        os.symlink(following, root / f"long{index}")
    os.mkfifo(root / "fifo")
    return root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_tree(tmp_path)


#: relative path -> what opening it for reading gives: the bytes, "directory", "fifo",
#: "unsafe" (UnsafePath), "missing" (FileNotFoundError), "notdir" (NotADirectoryError).
CASES: dict[str, bytes | str] = {
    "f.txt": TOP,
    "a/b/c.txt": DEEP,
    "rel-file": DEEP,
    "dir-link/c.txt": DEEP,
    "abs-file": DEEP,
    "abs-dir/b/c.txt": DEEP,
    "abs-root/f.txt": TOP,
    "chain1": TOP,
    "a/up": TOP,
    "a/b/up2": DEEP,
    "a/parent/f.txt": TOP,
    "dot/dot/f.txt": TOP,
    "long1": TOP,  # 40 links: the most the kernel follows
    "long0": "unsafe",  # 41
    "loop1": "unsafe",
    "out-rel": "unsafe",
    "out-abs": "unsafe",
    "out-dir/f.txt": "unsafe",
    "out-back-in": "unsafe",  # climbs above the root, even to come back
    "a/b/deep-out": "unsafe",
    "abs-dotdot-out": "unsafe",
    "proc-self": "unsafe",
    "dangling": "missing",
    "missing.txt": "missing",
    "a/missing/x": "missing",
    "f.txt/x": "notdir",
    "slash-file": "notdir",
    "fifo": "fifo",
    "a": "directory",
    "slash-dir": "directory",
    "dir-link": "directory",
    "": "directory",
}


def outcome(root: Path, relative: str, flags: int = READ_FLAGS) -> bytes | str:
    """What ``open_beneath`` gives for ``relative``, as a value of :data:`CASES`."""
    try:
        fd = open_beneath(str(root), relative, flags)
    except UnsafePath:
        return "unsafe"
    except FileNotFoundError:
        return "missing"
    except NotADirectoryError:
        return "notdir"
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            return "directory"
        if stat.S_ISFIFO(st.st_mode):
            return "fifo"
        return os.pread(fd, 1000, 0)
    finally:
        os.close(fd)


@pytest.mark.parametrize(("relative", "expected"), list(CASES.items()), ids=list(CASES))
def test_open_beneath_table(
    strategy: str, root: Path, relative: str, expected: bytes | str
) -> None:
    assert outcome(root, relative) == expected


def test_both_strategies_agree_on_every_case(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if confined._openat2() is None:
        pytest.skip("this kernel (or its seccomp filter) has no openat2")
    answers = {}
    for prefer in (True, False):
        monkeypatch.setattr(confined, "prefer_openat2", prefer)
        answers[prefer] = {relative: outcome(root, relative) for relative in CASES}
    assert answers[True] == answers[False]


def test_a_root_given_through_a_symlink_accepts_links_spelled_with_either_path(
    strategy: str, tmp_path: Path
) -> None:
    real = make_tree(tmp_path)
    alias = tmp_path / "current"
    alias.symlink_to(real, target_is_directory=True)
    os.symlink(f"{alias}/f.txt", real / "via-alias")
    assert outcome(alias, "via-alias") == TOP
    assert outcome(alias, "abs-file") == DEEP  # spelled with the real path
    assert outcome(alias, "out-abs") == "unsafe"


def test_listing_flags_open_directories_only(strategy: str, root: Path) -> None:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    assert outcome(root, "dir-link", flags) == "directory"
    assert outcome(root, "abs-dir", flags) == "directory"
    assert outcome(root, "f.txt", flags) == "notdir"
    assert outcome(root, "out-dir", flags) == "unsafe"


def test_stat_beneath_follows_links_inside_only(strategy: str, root: Path) -> None:
    assert stat_beneath(str(root), "rel-file").st_size == len(DEEP)
    assert stat_beneath(str(root), "abs-file").st_size == len(DEEP)
    assert stat.S_ISDIR(stat_beneath(str(root), "dir-link").st_mode)
    with pytest.raises(UnsafePath):
        stat_beneath(str(root), "out-abs")
    with pytest.raises(UnsafePath):
        stat_beneath(str(root), "loop1")
    with pytest.raises(FileNotFoundError):
        stat_beneath(str(root), "dangling")


def test_a_name_too_long_is_not_found(strategy: str, root: Path) -> None:
    with pytest.raises(SourceNotFound):
        open_beneath(str(root), "x" * 300, READ_FLAGS)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_no_descriptor_leaks(strategy: str, root: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for relative in CASES:
        outcome(root, relative)
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize(
    ("path", "root", "relative"),
    [
        ("/srv/files/a/b", "/srv/files", "a/b"),
        ("/srv/files/a", "/srv/files/", "a"),
        ("/srv/files", "/srv/files", ""),
        ("/a", "/", "a"),
        ("files/a", "files", "a"),
    ],
)
def test_relative_to_root(path: str, root: str, relative: str) -> None:
    assert relative_to_root(path, root) == relative


@pytest.mark.parametrize(
    ("path", "root"),
    [("/srv/files-private/a", "/srv/files"), ("/srv/other", "/srv/files"), ("/srv", "/srv/f")],
)
def test_relative_to_root_refuses_paths_not_under_the_root(path: str, root: str) -> None:
    with pytest.raises(UnsafePath):
        relative_to_root(path, root)


# -- the openat2 plumbing -------------------------------------------------------------------


def test_a_kernel_without_openat2_is_detected_once_and_walked(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(confined, "_SYS_OPENAT2", 0x7FFF_FFFF)  # ENOSYS, like an old kernel
    confined._openat2.cache_clear()
    try:
        assert confined._openat2() is None
        assert outcome(root, "abs-file") == DEEP
        assert outcome(root, "out-rel") == "unsafe"
    finally:
        confined._openat2.cache_clear()


@pytest.mark.parametrize("error", [errno.EXDEV, errno.EAGAIN])
def test_openat2_refusals_that_may_be_fine_are_decided_by_the_walk(
    root: Path, monkeypatch: pytest.MonkeyPatch, error: int
) -> None:
    calls: list[str] = []

    def refusing(dir_fd: int, path: str, flags: int, resolve: int) -> int:
        calls.append(path)
        return -error

    monkeypatch.setattr(confined, "_openat2", lambda: refusing)
    assert outcome(root, "abs-file") == DEEP
    assert outcome(root, "out-abs") == "unsafe"
    assert len(calls) == (2 if error == errno.EXDEV else 6)


# -- through the backend and the registry -----------------------------------------------------


@pytest.fixture
def reg() -> StorageRegistry:
    return StorageRegistry(entry_points=False)


def backend_outcome(reg: StorageRegistry, root: Path, relative: str) -> bytes | str:
    async def run() -> bytes | str:
        try:
            resource = await reg.open(reg.locate(str(root), relative))
        except UnsafePath:
            return "unsafe"
        except SourceIsDirectory:
            return "directory"
        except SourceNotFound:
            return "missing"
        try:
            assert isinstance(resource, LocalResource)
            assert resource.sendable_by_path is False
            return b"".join([chunk async for chunk in resource.iter_range(0, None, 4)])
        finally:
            await resource.aclose()

    return anyio.run(run)


#: What the backend answers for each case: FIFOs and non-directories are all "missing".
BACKEND_CASES = {
    relative: {"fifo": "missing", "notdir": "missing"}.get(expected, expected)
    if isinstance(expected, str)
    else expected
    for relative, expected in CASES.items()
    if relative  # locate(root, "") is the root: a directory either way
}


@pytest.mark.parametrize(
    ("relative", "expected"), list(BACKEND_CASES.items()), ids=list(BACKEND_CASES)
)
def test_backend_table(
    strategy: str, reg: StorageRegistry, root: Path, relative: str, expected: bytes | str
) -> None:
    assert backend_outcome(reg, root, relative) == expected


@pytest.mark.anyio
async def test_a_path_not_under_the_root_option_is_refused(root: Path) -> None:
    with pytest.raises(UnsafePath):
        await LocalBackend().open(str(root.parent / "outside" / "secret.txt"), root=str(root))


@pytest.mark.anyio
async def test_an_unconfined_open_may_be_sent_by_path(root: Path) -> None:
    resource = await LocalBackend().open(str(root / "f.txt"))
    try:
        assert resource.sendable_by_path is True
    finally:
        await resource.aclose()


@pytest.mark.anyio
async def test_a_confined_file_is_streamed_even_when_the_server_offers_pathsend(
    root: Path,
) -> None:
    response = send_from_storage(str(root), "rel-file")
    scope = {**http_scope(), "extensions": {"http.response.pathsend": {}}}
    recorded = await record_call(response, scope)
    assert [m["type"] for m in recorded.messages] == ["http.response.start", "http.response.body"]
    assert recorded.body == DEEP


@pytest.mark.anyio
@pytest.mark.parametrize("prefer", [True, False], ids=STRATEGIES)
async def test_listing_shows_links_inside_and_hides_links_out(
    reg: StorageRegistry, root: Path, monkeypatch: pytest.MonkeyPatch, prefer: bool
) -> None:
    monkeypatch.setattr(confined, "prefer_openat2", prefer)
    entries = {entry.name: entry for entry in await reg.list(reg.locate(str(root), ""))}
    assert entries["rel-file"].size == len(DEEP)
    assert entries["abs-file"].size == len(DEEP)
    assert entries["dir-link"].is_dir
    assert entries["a"].is_dir
    hidden = {"out-rel", "out-abs", "out-dir", "out-back-in", "loop1", "dangling", "long0"}
    assert hidden.isdisjoint(entries)
    through_link = await reg.list(reg.locate(str(root), "abs-dir/b"))
    assert [entry.name for entry in through_link] == ["c.txt", "up2"]
    with pytest.raises(UnsafePath):
        await reg.list(reg.locate(str(root), "out-dir"))
