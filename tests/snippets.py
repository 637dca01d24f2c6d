"""Load the code snippets the documentation includes, so the tests run exactly that code.

Snippets live in ``docs/snippets/<name>.py``; pages show them inline after a
``<!-- snippet: docs/snippets/<name>.py -->`` marker (``tests/docs/test_inline_snippets.py`` keeps
the two equal) and tests import them with :func:`load_snippet`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SNIPPETS = Path(__file__).resolve().parent.parent / "docs" / "snippets"


def load_snippet(name: str) -> ModuleType:
    """Import ``docs/snippets/<name>.py`` as a fresh module named ``snippet_<name>``.

    Args:
        name: The snippet's file name without ``.py``.
    """
    path = SNIPPETS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"snippet_{name}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
