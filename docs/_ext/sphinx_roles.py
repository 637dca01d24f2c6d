"""A griffe extension for the API reference: render Sphinx roles in docstrings as code.

The docstrings say :func:`sendfs.send_file` or :meth:`~sendfs.storages.StorageRegistry.open`,
which read well in the source and in ``help()``; mkdocstrings would show the role markup as
it is. This rewrites each role to inline code (``~`` keeps the last component only), so the
reference reads like the rest of the site.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|attr|data|exc|obj|const):`(~?)([^`]+)`")


def plain_roles(text: str) -> str:
    """Replace every Sphinx cross-reference role in ``text`` with inline code.

    Args:
        text: A docstring.

    Returns:
        The docstring with ``:role:`a.b``` as ```a.b```, ``:role:`~a.b``` as ```b```, and
        reST literal-block markers (``Example::``) as plain colons.
    """

    def code(match: re.Match[str]) -> str:
        target = match.group(2)
        return f"`{target.rsplit('.', 1)[-1]}`" if match.group(1) else f"`{target}`"

    # reST's "Example::" introduces a literal block; in Markdown the indented block suffices.
    return _ROLE.sub(code, text).replace("::\n\n", ":\n\n")


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring once the object tree is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite the roles of one object's docstring.

        Args:
            obj: The object griffe loaded.
            **kwargs: Whatever else griffe passes.
        """
        if obj.docstring is not None:
            obj.docstring.value = plain_roles(obj.docstring.value)
