"""The directory listing of ``sendfs serve`` as headless Chromium renders it, phone and desktop.

Chromium saves a screenshot at each size and dumps the DOM it built; each run has its own
profile directory and process group, killed by its id when it does not exit in time.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.test_cli import serving

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_TIMEOUT = 60.0
PHONE = (390, 844)
DESKTOP = (1280, 800)
#: A rendered listing compresses to more than this; a blank or failed page to far less.
MIN_PNG_BYTES = 8 * 1024

SPACED = "notes with spaces.txt"
UNICODE = "ünïcødé-файл-名前.txt"
LONG = "a-rather-long-file-name-for-a-quarterly-report-2024-final-final-v2-really.tar.gz"
SUBDIR = "sub dir"
DOTFILE = ".env"

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)"
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / SUBDIR).mkdir(parents=True)
    (root / SUBDIR / "inner.txt").write_bytes(b"inner")
    (root / SPACED).write_bytes(b"spaced " * 100)
    (root / UNICODE).write_bytes(b"unicode" * 3000)
    (root / LONG).write_bytes(b"\0" * 5_000_000)
    (root / DOTFILE).write_bytes(b"SECRET=1")
    return root


def chromium(profile: Path, *args: str) -> str:
    """Run headless Chromium to completion; its stdout."""
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-proxy-server",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    env = {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")}
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # its own process group: renderers go with it
    )
    try:
        stdout, _ = process.communicate(timeout=BROWSER_TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=BROWSER_TIMEOUT)
    assert process.returncode == 0, f"chromium exited with {process.returncode}"
    return stdout.decode("utf-8")


def screenshot(tmp_path: Path, url: str, size: tuple[int, int]) -> Path:
    png = tmp_path / f"listing-{size[0]}x{size[1]}.png"
    profile = tmp_path / f"profile-{size[0]}"
    chromium(profile, f"--window-size={size[0]},{size[1]}", f"--screenshot={png}", url)
    return png


# -- reading the PNG with the standard library -------------------------------------------------


def _paeth(left: int, up: int, up_left: int) -> int:
    estimate = left + up - up_left
    distances = (abs(estimate - left), abs(estimate - up), abs(estimate - up_left))
    return (left, up, up_left)[distances.index(min(distances))]


def png_colours(png: bytes, enough: int = 8) -> tuple[int, int, set[bytes]]:
    """Width, height and the distinct pixel values, decoding rows until ``enough`` are seen.

    8-bit RGB or RGBA, not interlaced: what Chromium writes.
    """
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat = 8, b""
    width = height = bpp = 0
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind, data = png[offset + 4 : offset + 8], png[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data)
            assert (depth, interlace) == (8, 0)
            assert colour in (2, 6)
            bpp = 4 if colour == 6 else 3
        elif kind == b"IDAT":
            idat += data
        offset += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    previous = bytearray(stride)
    colours: set[bytes] = set()
    for row in range(height):
        start = row * (stride + 1)
        filter_type, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up_left = previous[i - bpp] if i >= bpp else 0
            up = previous[i]
            if filter_type == 1:
                line[i] = (line[i] + left) & 0xFF
            elif filter_type == 2:
                line[i] = (line[i] + up) & 0xFF
            elif filter_type == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif filter_type == 4:
                line[i] = (line[i] + _paeth(left, up, up_left)) & 0xFF
        colours.update(bytes(line[i : i + bpp]) for i in range(0, stride, bpp))
        if len(colours) >= enough:
            break
        previous = line
    return width, height, colours


# -- the tests -----------------------------------------------------------------------------------


@needs_chromium
def test_listing_renders_on_a_phone_and_a_desktop(tmp_path: Path, tree: Path) -> None:
    with serving(tmp_path, str(tree)) as server:
        shots = {size: screenshot(tmp_path, server.url, size) for size in (PHONE, DESKTOP)}
        dom = chromium(tmp_path / "profile-dom", "--dump-dom", server.url)
        code, stderr = server.stop()
    for (width, height), png in shots.items():
        assert png.stat().st_size > MIN_PNG_BYTES, png
        shown_width, shown_height, colours = png_colours(png.read_bytes())
        assert (shown_width, shown_height) == (width, height)
        assert len(colours) >= 8, f"{png} is nearly one colour: {colours}"
    # What the browser built: every entry linked, percent-encoded; no parent link at the root;
    # no dotfile.
    links = dict(re.findall(r'<a href="([^"]*)">([^<]*)</a>', dom))
    assert links == {
        "sub%20dir/": "sub dir/",
        LONG: LONG,
        "notes%20with%20spaces.txt": SPACED,
        "%C3%BCn%C3%AFc%C3%B8d%C3%A9-%D1%84%D0%B0%D0%B9%D0%BB-%E5%90%8D%E5%89%8D.txt": UNICODE,
    }
    assert "../" not in dom
    assert DOTFILE not in dom
    assert "<td>4.8 MiB</td>" in dom
    assert code == 0
    assert "Traceback" not in stderr
