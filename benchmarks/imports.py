"""Section 8: ``import sendfs`` against the import of its own dependencies, in the same run.

All run in a virtual environment holding only sendfs and its runtime dependencies (what
``pip install sendfs`` gives: in the development environment Lilya also imports the optional
packages it finds, PyYAML and python-magic). The dependencies' import is ``fsspec``, ``anyio``
and the Lilya modules that ``import sendfs`` loads (``import lilya`` alone loads next to
nothing). sendfs loads fsspec only with its first storage, so the same modules without fsspec
are a third contender, a reference: the ratio to it is what sendfs's own modules add.

Each figure is one fresh interpreter, isolated (``-I``) in an empty directory so the checkout
is not imported in place of the installed package, timing its import statement with
``time.perf_counter``; the statements alternate, after one warm-up each (which also writes the
bytecode).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmarks.report import Row, verdict
from benchmarks.rounds import Sample, Settings, alternate

__all__ = ["import_section", "runtime_only_python"]

Progress = Callable[[str], None]

MILLISECONDS = "ms"
#: The runtime dependencies whose import sendfs's is compared with.
DEPENDENCIES = ("lilya", "fsspec", "anyio")
TARGET = 1.25
SECTION = "8 import"
SENDFS = "import sendfs (fresh venv: sendfs and its runtime dependencies only)"

_LOADED = (
    "import json, sys, sendfs; print(json.dumps(["
    "name for name in sys.modules if name.partition('.')[0] in {packages!r}]))"
)
_TIMED = (
    "import time; started = time.perf_counter(); {statement}; print(time.perf_counter() - started)"
)


def runtime_only_python(root: Path, workdir: Path) -> str:
    """The interpreter of a virtual environment holding sendfs and its runtime dependencies only.

    The environment is created once under ``workdir`` and the project reinstalled each time.

    Args:
        root: The project checkout.
        workdir: Where the environment is kept between runs.
    """
    venv = workdir / "import-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", str(root)], check=True)
    else:
        install = [str(python), "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps"]
        subprocess.run([*install, str(root)], check=True)
    imported = Path(_run(str(python), "import sendfs; print(sendfs.__file__)")).resolve()
    if not imported.is_relative_to(venv.resolve()):
        raise RuntimeError(f"the import probe would time {imported}, not the installed package")
    return str(python)


def _run(python: str, code: str) -> str:
    """``python -I -c code`` in an empty directory; its output."""
    with tempfile.TemporaryDirectory() as neutral:
        done = subprocess.run(
            [python, "-I", "-c", code], capture_output=True, text=True, check=True, cwd=neutral
        )
    return done.stdout.strip()


def loaded_modules(python: str) -> list[str]:
    """Every module of the dependencies that ``import sendfs`` loads, in the order it does."""
    loaded: list[str] = json.loads(_run(python, _LOADED.format(packages=DEPENDENCIES)))
    return loaded


def _timer(python: str, statement: str) -> Callable[[], Sample]:
    code = _TIMED.format(statement=statement)
    return lambda: {MILLISECONDS: float(_run(python, code)) * 1000}


def import_section(root: Path, workdir: Path, settings: Settings, progress: Progress) -> list[Row]:
    """8. ``import sendfs`` vs its dependencies' import, fresh interpreters alternated."""
    python = runtime_only_python(root, workdir)
    loaded = loaded_modules(python)
    dependencies = ["fsspec", *(name for name in loaded if name != "fsspec")]
    lilya = sum(name.partition(".")[0] == "lilya" for name in loaded)
    deps = f"import of its dependencies: fsspec, anyio and the {lilya} Lilya modules sendfs loads"
    without = f"import of the dependency modules sendfs loads ({len(loaded)}; no fsspec)"
    contenders = {
        SENDFS: _timer(python, "import sendfs"),
        deps: _timer(python, f"import {', '.join(dependencies)}"),
        without: _timer(python, f"import {', '.join(loaded)}"),
    }
    results = alternate(contenders, settings.import_rounds, progress)
    mine, theirs = results[SENDFS][MILLISECONDS], results[deps][MILLISECONDS]
    loaded_only = results[without][MILLISECONDS]
    ratio = mine.ratio(theirs)
    return [
        Row(
            SECTION,
            SENDFS,
            f"{mine.show('ms')}, {ratio:.2f}x its dependencies,"
            f" {mine.ratio(loaded_only):.2f}x the modules of them it loads"
            f" ({settings.import_rounds} interpreters each)",
            target=f"<= {TARGET:g}x the import of its dependencies",
            verdict=verdict(ratio <= TARGET),
        ),
        Row(SECTION, deps, theirs.show("ms")),
        Row(SECTION, without + " (reference)", loaded_only.show("ms")),
    ]
