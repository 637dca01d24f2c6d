"""First contact with ``send_file``: mistakes fail when the response is built, and say what to do.

Other libraries' keyword names are refused with the keyword sendfs takes, a URL whose backend
is missing or unknown fails at build time, and ``source`` has a type an editor can show.
"""

from __future__ import annotations

import inspect
import io
import textwrap
import typing
from collections.abc import AsyncIterable, Callable
from pathlib import Path
from typing import Any

import pytest

from sendfs import send_file, send_from_storage
from sendfs.exceptions import UnknownScheme
from sendfs.responses.core import BinaryFile, Download, Source
from sendfs.storages.registry import Resolved
from sendfs.storages.streams import Stream
from tests.helpers import run_python


def faces() -> list[Any]:
    """The faces that wrap the Lilya face's ``send_file``: they share its keywords."""
    from sendfs import litestar, starlette

    return [
        pytest.param(send_file, id="lilya"),
        pytest.param(starlette.send_file, id="starlette"),
        pytest.param(litestar.send_file, id="litestar"),
    ]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.7")
    return path


# -- other libraries' keywords ---------------------------------------------------------------


@pytest.mark.parametrize("send", faces())
@pytest.mark.parametrize(
    ("keyword", "value", "message"),
    [
        ("media_type", "text/plain", "takes mimetype=, not media_type= (Starlette's name)"),
        ("filename", "q3.pdf", "takes download_name=, not filename= (Starlette's name"),
        (
            "content_disposition_type",
            "attachment",
            "takes as_attachment=, not content_disposition_type= (Starlette's name",
        ),
        ("path", "a.txt", "takes the source as its first argument, not path= (Starlette's name)"),
        ("cache_timeout", 60, "takes max_age=, not cache_timeout= (Flask's name before 2.0)"),
    ],
)
def test_another_librarys_keyword_is_a_type_error_naming_ours(
    send: Callable[..., Any], path: Path, keyword: str, value: Any, message: str
) -> None:
    with pytest.raises(TypeError) as excinfo:
        send(path, **{keyword: value})
    assert str(excinfo.value).startswith(f"send_file() {message}")


def test_a_misspelt_keyword_gets_a_suggestion(path: Path) -> None:
    # The "type: ignore" pins the static side too: mypy flags any keyword send_file lacks.
    with pytest.raises(TypeError) as excinfo:
        send_file(path, download_nmae="q3.pdf")  # type: ignore[arg-type]
    assert str(excinfo.value) == (
        "send_file() got an unexpected keyword argument 'download_nmae'; "
        "did you mean download_name=?"
    )


def test_a_far_keyword_is_an_ordinary_type_error(path: Path) -> None:
    with pytest.raises(TypeError) as excinfo:
        send_file(path, xyzzy=1)  # type: ignore[arg-type]
    assert str(excinfo.value) == "send_file() got an unexpected keyword argument 'xyzzy'"


def test_send_from_storage_passes_the_teaching_error_on(path: Path) -> None:
    with pytest.raises(TypeError, match="takes mimetype=, not media_type="):
        send_from_storage(path.parent, path.name, media_type="text/plain")


def test_sendfs_keywords_still_work(path: Path) -> None:
    response = send_file(path, mimetype="application/pdf", download_name="q3.pdf")
    assert response.download.media_type == "application/pdf"
    assert response.download.filename == "q3.pdf"


# -- the backend is found when the response is built ------------------------------------------


def test_an_unknown_scheme_fails_at_build_time_with_a_suggestion() -> None:
    with pytest.raises(UnknownScheme, match=r"no backend for 's4'.*did you mean 's3'"):
        send_file("s4://bucket/report.pdf")


@pytest.mark.parametrize(
    ("module", "url", "extra"),
    [("s3fs", "s3://bucket/report.pdf", "s3"), ("adlfs", "az://container/report.pdf", "azure")],
)
def test_a_storage_url_without_its_package_fails_at_build_time(
    module: str, url: str, extra: str
) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules[{module!r}] = None
        from sendfs import send_file
        from sendfs.exceptions import MissingDependency

        try:
            send_file({url!r})
        except MissingDependency as exc:
            assert isinstance(exc, ImportError)
            print("MISSING:", exc)
        else:
            print("BUILT")
        """
    )
    done = run_python(script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("MISSING: ")
    assert f"pip install 'sendfs[{extra}]'" in done.stdout


# -- a source type an editor can show ----------------------------------------------------------


def test_source_names_every_kind_of_source() -> None:
    kinds = typing.get_args(Source)
    assert str in kinds
    assert BinaryFile in kinds
    assert Resolved in kinds
    assert Stream in kinds
    assert any(typing.get_origin(kind) is AsyncIterable for kind in kinds)
    assert any("PathLike" in repr(kind) for kind in kinds)


@pytest.mark.parametrize("func", [send_file, Download])
def test_send_file_and_download_annotate_source_with_source(func: Callable[..., Any]) -> None:
    annotation = inspect.signature(func).parameters["source"].annotation
    assert annotation == "Source"


def test_binary_file_objects_match_the_binary_file_protocol() -> None:
    reader: BinaryFile = io.BytesIO(b"x")  # mypy checks this line: BytesIO is a BinaryFile
    assert reader.read(1) == b"x"
