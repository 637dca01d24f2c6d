"""Examples serving memory:// files fill them themselves: run as is, their routes answer 200.

The memory filesystem is global to a process, and other tests fill it: each example is
imported in a fresh interpreter, whose memory filesystem starts empty, from an empty working
directory, and asked for the routes its page describes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.sync_snippets import ROOT
from tests.snippets import SNIPPETS

#: Each snippet that serves memory:// files, and the routes its page says answer.
MEMORY_ROUTES = {
    "events": ["/reports/q3.csv"],
    "fastapi_app": ["/exports/orders.csv", "/public/logo.svg"],
    "starlette_app": ["/exports/orders.csv", "/public/logo.svg"],
}

CHILD = """
import asyncio, json, sys

from fsspec.implementations.memory import MemoryFileSystem

from tests.helpers import asgi_client
from tests.snippets import load_snippet


async def main(name: str, paths: list[str]) -> None:
    assert not MemoryFileSystem.store, "the memory filesystem is not empty before the import"
    app = load_snippet(name).app
    async with asgi_client(app) as client:
        answers = {path: await client.get(path) for path in paths}
    print(json.dumps({path: [r.status_code, len(r.content)] for path, r in answers.items()}))


asyncio.run(main(sys.argv[1], sys.argv[2:]))
"""


def test_every_snippet_serving_memory_files_is_run_verbatim() -> None:
    serving_memory = {
        path.stem for path in SNIPPETS.glob("*.py") if "memory://" in path.read_text("utf-8")
    }
    assert serving_memory == set(MEMORY_ROUTES), (
        "a snippet serving memory:// files must fill them (# demo data) and be listed here"
    )


@pytest.mark.parametrize("name", sorted(MEMORY_ROUTES))
def test_memory_example_answers_200_when_run_as_is(name: str, tmp_path: Path) -> None:
    paths = MEMORY_ROUTES[name]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", CHILD, name, *paths],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert {path: status for path, (status, _) in answers.items()} == dict.fromkeys(paths, 200)
    assert all(size > 0 for _, size in answers.values()), answers
