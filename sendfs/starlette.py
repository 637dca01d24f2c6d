"""Names for Starlette and FastAPI apps.

Responses sendfs builds are Starlette ``Response`` objects whenever Starlette is loaded, so
FastAPI passes them through as they are. FastAPI also reads a route's return annotation when
the route is defined, and accepts only Starlette ``Response`` classes there. This module has
the same ``send_file`` and ``send_from_storage``, typed to return its :class:`FileResponse`,
which is one (importing the module imports Starlette)::

    from fastapi import FastAPI
    from sendfs.starlette import FileResponse, send_file

    app = FastAPI()

    @app.get("/report")
    async def report() -> FileResponse:
        return send_file("s3://reports/q3.pdf")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, cast

from lilya.datastructures import Header
from starlette.responses import Response as StarletteResponse

from .responses import file, send

__all__ = ["FileResponse", "send_file", "send_from_storage"]

_P = ParamSpec("_P")


class FileResponse(file.FileResponse, StarletteResponse):  # type: ignore[misc]
    """:class:`sendfs.FileResponse`, also a ``starlette.responses.Response``.

    It is the class of every response ``send_file`` builds while Starlette is loaded. Every
    method comes from :class:`sendfs.FileResponse` (first in the MRO).
    """

    # Starlette's read-only ``headers`` property, shadowed so that Lilya's ``make_headers``
    # can set the headers as it does on its own responses.
    headers: Header = None  # type: ignore[assignment]


def _returning_starlette_responses(func: Callable[_P, Any]) -> Callable[_P, FileResponse]:
    """``func`` itself, typed as returning this module's :class:`FileResponse`.

    True at run time: with Starlette loaded, every response sendfs builds is one.
    """
    return cast("Callable[_P, FileResponse]", func)


send_file = _returning_starlette_responses(send.send_file)
""":func:`sendfs.send_file` itself, typed to return :class:`FileResponse`."""

send_from_storage = _returning_starlette_responses(send.send_from_storage)
""":func:`sendfs.send_from_storage` itself, typed to return :class:`FileResponse`."""
