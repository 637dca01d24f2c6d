"""``./dev``: what each command installs, checked with a stand-in Python that records its calls.

The stand-in creates the "virtual environment" and logs every command line with its working
directory, so no package is installed and no network is needed.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0

#: A stand-in for python: `-m venv DIR` copies it to DIR/bin/python; every call is logged.
FAKE_PYTHON = """\
#!/usr/bin/env bash
echo "$PWD $*" >> "$FAKE_PYTHON_LOG"
if [ "$1" = -m ] && [ "$2" = venv ]; then
  mkdir -p "$3/bin"
  cp "$0" "$3/bin/python"
fi
"""


@pytest.fixture
def fake_python(tmp_path: Path) -> Path:
    path = tmp_path / "python"
    path.write_text(FAKE_PYTHON)
    path.chmod(0o755)
    return path


def run_dev(tmp_path: Path, fake_python: Path, *args: str, cwd: Path = PROJECT) -> list[str]:
    """Run ``./dev ARGS`` with the stand-in; the calls it made, ``cwd`` shown as ``.``."""
    log = tmp_path / "calls.log"
    env = {
        **os.environ,
        "PYTHON": str(fake_python),
        "VENV": str(tmp_path / "venv"),
        "FAKE_PYTHON_LOG": str(log),
    }
    result = subprocess.run(
        [str(PROJECT / "dev"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return calls


def test_dev_serve_installs_only_the_serving_extras_once(tmp_path: Path, fake_python: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    venv = tmp_path / "venv"
    first = run_dev(tmp_path, fake_python, "serve", "--port", "1", cwd=served)
    again = run_dev(tmp_path, fake_python, "serve", cwd=served)
    assert first == [
        f"{PROJECT} -m venv {venv}",
        f"{PROJECT} -m pip install --quiet -e .[cli,s3]",
        f"{served} -m sendfs serve --port 1",
    ]
    assert again == [f"{served} -m sendfs serve"]
    assert (venv / ".installed-serve").exists()
    assert not (venv / ".installed").exists()


def test_dev_fast_installs_the_dev_group_then_runs_only_fast_tests(
    tmp_path: Path, fake_python: Path
) -> None:
    venv = tmp_path / "venv"
    run_dev(tmp_path, fake_python, "serve")  # a venv made by the serve path is completed
    calls = run_dev(tmp_path, fake_python, "fast", "tests/responses")
    assert calls == [
        f"{PROJECT} -m pip install --quiet --upgrade pip",
        f"{PROJECT} -m pip install --quiet -e .[all] --group dev",
        f"{PROJECT} -m pytest -m not e2e -x -q tests/responses",
    ]
    assert (venv / ".installed").exists()
    # The whole environment serves too: no second install.
    assert run_dev(tmp_path, fake_python, "serve") == [f"{PROJECT} -m sendfs serve"]


def test_dev_without_a_command_prints_its_commands() -> None:
    result = subprocess.run(
        [str(PROJECT / "dev")], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == 2
    for command in ("./dev serve", "./dev fast", "./dev test", "./dev install"):
        assert command in result.stdout
