"""Every snippet is shown by a page, every included snippet exists, README code is tested."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"
INCLUDE = re.compile(r'^\s*--8<--\s+"([^"]+)"\s*$', re.MULTILINE)
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _includes() -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for page in DOCS.rglob("*.md"):
        for target in INCLUDE.findall(page.read_text(encoding="utf-8")):
            found.setdefault(target, []).append(page)
    return found


def test_pages_include_snippets() -> None:
    assert _includes(), "no page includes a snippet: did the include syntax change?"


@pytest.mark.parametrize("snippet", sorted(p.name for p in SNIPPETS.glob("*.py")))
def test_every_snippet_is_included_by_a_page(snippet: str) -> None:
    assert f"docs/snippets/{snippet}" in _includes(), f"{snippet} is shown by no page"


def test_every_include_names_an_existing_file() -> None:
    missing = {
        target: [str(page.relative_to(ROOT)) for page in pages]
        for target, pages in _includes().items()
        if not (ROOT / target).is_file()
    }
    assert missing == {}


def test_includes_sit_alone_in_python_fences() -> None:
    for page in DOCS.rglob("*.md"):
        text = page.read_text(encoding="utf-8")
        for match in INCLUDE.finditer(text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            after = text[match.end() :].lstrip("\n").split("\n", 1)[0]
            assert (before, after) == ("```python", "```"), f"{page.name}: {match.group(0)}"


def test_readme_python_examples_are_snippets() -> None:
    """README cannot include files, so each of its examples must equal a tested snippet."""
    snippets = {p.read_text(encoding="utf-8") for p in SNIPPETS.glob("*.py")}
    blocks = PYTHON_BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert blocks
    for block in blocks:
        assert block in snippets, f"README example is not a docs/snippets file:\n{block}"
