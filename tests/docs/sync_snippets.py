"""Copy each docs/snippets file into the pages that show it: ``python -m tests.docs.sync_snippets``.

A page shows a snippet as a marker line followed by a python fence holding the file verbatim::

    <!-- snippet: docs/snippets/quickstart.py -->
    ```python
    ...the exact content of docs/snippets/quickstart.py...
    ```

The snippet files are the source (tests/docs imports and runs them); this script rewrites the
fence after every marker from its file, and turns a pymdownx.snippets include fence
(``--8<-- "docs/snippets/x.py"`` alone in a python fence) into a marker and the file's content.
Without arguments it rewrites every docs/*.md; otherwise only the pages named.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"

FENCE_OPEN = "```python\n"
FENCE_CLOSE = "```\n"
#: A marker and the python fence right after it; group 2 is the fence's content.
MARKED = re.compile(r"^<!-- snippet: (\S+) -->\n```python\n(.*?)^```$\n?", re.MULTILINE | re.DOTALL)
#: A pymdownx.snippets include, alone in a python fence.
INCLUDE_FENCE = re.compile(r'^```python\n--8<-- "([^"]+)"\n```$\n?', re.MULTILINE)
#: Any pymdownx.snippets include line.
INCLUDE = re.compile(r"^[ \t]*--8<--.*$", re.MULTILINE)


def marker(path: str) -> str:
    """The comment line that names the snippet file shown by the fence below it."""
    return f"<!-- snippet: {path} -->\n"


def block(path: str) -> str:
    """The marker and fence showing ``path`` (relative to the repository root)."""
    return marker(path) + FENCE_OPEN + (ROOT / path).read_text(encoding="utf-8") + FENCE_CLOSE


def synced(text: str) -> str:
    """``text`` with every marked fence and include fence holding its file's current content."""
    text = MARKED.sub(lambda match: block(match.group(1)), text)
    return INCLUDE_FENCE.sub(lambda match: block(match.group(1)), text)


def pages() -> list[Path]:
    """Every Markdown page of the documentation."""
    return sorted(DOCS.glob("*.md"))


def main(argv: list[str]) -> int:
    """Rewrite the pages named in ``argv`` (all of docs/*.md when empty); print those changed."""
    targets = [Path(arg).resolve() for arg in argv] or pages()
    for page in targets:
        text = page.read_text(encoding="utf-8")
        new = synced(text)
        if new != text:
            page.write_text(new, encoding="utf-8")
            print(f"updated {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
