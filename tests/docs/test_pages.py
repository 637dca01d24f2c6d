"""README code is tested: each of its python examples is a docs/snippets file.

The pages' examples are checked by test_inline_snippets.py.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SNIPPETS = ROOT / "docs" / "snippets"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def test_readme_python_examples_are_snippets() -> None:
    """README's examples must each equal a tested snippet, as the pages' examples do."""
    snippets = {p.read_text(encoding="utf-8") for p in SNIPPETS.glob("*.py")}
    blocks = PYTHON_BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert blocks
    for block in blocks:
        assert block in snippets, f"README example is not a docs/snippets file:\n{block}"
