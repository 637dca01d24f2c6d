"""The files the benchmarks serve, created once in a cache directory and reused; S3 helpers.

The big file is random-ish (a 16 MiB block of ``os.urandom`` repeated), so no layer can cheat
with holes or compression; the small one is 4 KiB of random bytes. The directory is
world-readable: nginx's workers run as ``nobody`` when the runner is root.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["MIB", "RELAY_CHUNK", "DataFiles", "data_dir", "ensure_files", "s3_location"]

MIB = 1024 * 1024
#: The chunk of the hand-written S3 relays (``Body.iter_chunks``).
RELAY_CHUNK = MIB
BLOCK = 16 * MIB
SMALL_SIZE = 4096


@dataclass(frozen=True)
class DataFiles:
    """The local files under test."""

    root: Path
    big: Path
    small: Path

    @property
    def big_size(self) -> int:
        return self.big.stat().st_size


def data_dir() -> Path:
    """``$SENDFS_BENCH_DATA``, else ``<tmp>/sendfs-bench``."""
    configured = os.environ.get("SENDFS_BENCH_DATA")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "sendfs-bench"


def _write_random(path: Path, size: int) -> None:
    partial = path.with_suffix(".partial")
    block = os.urandom(min(BLOCK, size))
    with partial.open("wb") as out:
        written = 0
        while written < size:
            written += out.write(block[: size - written])
    partial.chmod(0o644)
    partial.replace(path)


def ensure_files(big_size: int, root: Path | None = None) -> DataFiles:
    """Create (once) a big file of ``big_size`` bytes and a 4 KiB file in ``root``."""
    root = root or data_dir()
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    big = root / f"big-{big_size // MIB}MiB.bin"
    small = root / "small-4KiB.bin"
    for path, size in ((big, big_size), (small, SMALL_SIZE)):
        if not path.is_file() or path.stat().st_size != size:
            _write_random(path, size)
    return DataFiles(root=root, big=big, small=small)


def read_prefix(path: Path, size: int) -> bytes:
    """The first ``size`` bytes of ``path`` (the S3 object is a prefix of the big file)."""
    with path.open("rb") as source:
        return source.read(size)


def s3_location(url: str) -> tuple[str, str]:
    """The bucket and the key of ``s3://bucket/key``."""
    parts = urlsplit(url)
    return parts.netloc, parts.path.lstrip("/")
