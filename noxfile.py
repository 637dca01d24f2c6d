"""Developer sessions: ``nox -s tests lint typecheck``; ``nox -s tests_matrix`` for every Python.

``nox -s docs`` builds the documentation site with ``mkdocs build --strict`` into ``site/``
(``nox -s docs -- --site-dir DIR`` elsewhere).

``nox -s bench`` runs the benchmark suite (``nox -s bench -- --quick`` for a smoke run).

Dependencies come from the dependency groups in pyproject.toml; Python versions from its
classifiers. ``./dev test`` runs the same checks in one virtual environment, faster.
"""

from __future__ import annotations

import os
import shutil

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)


def install(session: nox.Session, *groups: str) -> None:
    session.install("-U", "pip")
    session.install("-e", ".[all]", *nox.project.dependency_groups(PYPROJECT, *groups))


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite on the Python running nox."""
    install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHONS)
def tests_matrix(session: nox.Session) -> None:
    """The test suite on every supported Python that is installed."""
    install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package and the tests."""
    install(session, "typecheck")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, strict: a warning (broken link, anchor, snippet) fails it."""
    install(session, "docs")
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


def _system_tools(session: nox.Session) -> None:
    """nginx (the practical limit) and wrk (small files) come from apt, when we may install."""
    missing = [tool for tool in ("nginx", "wrk") if not _found(tool)]
    if not missing or os.geteuid() != 0 or not shutil.which("apt-get"):
        if missing:
            session.warn(f"not installed: {', '.join(missing)}; the suite runs without them")
        return
    try:
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", *missing, external=True)
    except nox.command.CommandFailed:
        session.warn(f"could not install {', '.join(missing)}; the suite runs without them")


def _found(tool: str) -> bool:
    return bool(shutil.which(tool) or os.access(f"/usr/sbin/{tool}", os.X_OK))


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark suite: real servers on 127.0.0.1; writes docs/benchmarks.md.

    About 12 minutes on 2 cores with the default 7 rounds. ``nox -s bench -- --quick`` for a
    smoke run, ``-- --only s3,flask`` for some sections; ``-- --help`` for the options.
    """
    install(session, "bench")
    _system_tools(session)
    session.run("python", "-m", "benchmarks.run", *session.posargs)
