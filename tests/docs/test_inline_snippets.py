"""Pages show their examples inline, and each shown example is its tested snippet file verbatim.

Every ``<!-- snippet: docs/snippets/x.py -->`` marker in docs/*.md is followed by a python fence
holding exactly that file (which tests/docs imports and runs); no pymdownx.snippets include
remains, since a repository page or the package index cannot expand one; and every snippet
file is shown by some page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.sync_snippets import DOCS, INCLUDE, ROOT, pages
from tests.snippets import SNIPPETS

FIX = "run `python -m tests.docs.sync_snippets` to copy the snippet files into the pages"
MARKER = re.compile(r"^<!-- snippet: (.*?) -->$", re.MULTILINE)
PAGES = [page.name for page in pages()]


def _shown(page: Path) -> list[tuple[str, str | None]]:
    """The snippet path of each marker of ``page``, and the python fence right after it."""
    text = page.read_text(encoding="utf-8")
    found: list[tuple[str, str | None]] = []
    for match in MARKER.finditer(text):
        rest = text[match.end() + 1 :]
        fence = re.match(r"```python\n(.*?)^```$", rest, re.MULTILINE | re.DOTALL)
        found.append((match.group(1), fence.group(1) if fence else None))
    return found


def test_pages_show_snippets() -> None:
    assert any(_shown(DOCS / name) for name in PAGES), "no page has a snippet marker"


@pytest.mark.parametrize("name", PAGES)
def test_markers_are_followed_by_their_file_verbatim(name: str) -> None:
    for path, fence in _shown(DOCS / name):
        target = ROOT / path
        assert path.startswith("docs/snippets/"), f"{name}: {path} is not under docs/snippets/"
        assert target.is_file(), f"{name}: {path} does not exist"
        assert fence is not None, f"{name}: no ```python fence right after the {path} marker"
        assert fence == target.read_text(encoding="utf-8"), f"{name}: {path} differs; {FIX}"


@pytest.mark.parametrize("name", PAGES)
def test_pages_include_no_file(name: str) -> None:
    lines = INCLUDE.findall((DOCS / name).read_text(encoding="utf-8"))
    assert lines == [], f"{name} still has --8<-- includes, invisible off the site; {FIX}"


@pytest.mark.parametrize("snippet", sorted(p.name for p in SNIPPETS.glob("*.py")))
def test_every_snippet_is_shown_by_a_page(snippet: str) -> None:
    shown = {path for name in PAGES for path, _ in _shown(DOCS / name)}
    assert f"docs/snippets/{snippet}" in shown, (
        f"docs/snippets/{snippet} is shown by no page: add a "
        f"<!-- snippet: docs/snippets/{snippet} --> marker and a python fence, then {FIX}"
    )
