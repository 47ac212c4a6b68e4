"""Shared fixtures: the sandbox backends that tests run against."""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import ModuleType

import pytest

import codegym
from codegym.execution.backend import LocalBackend

BACKENDS = ["local", "docker"]


def on_ci() -> bool:
    """Whether the tests run on CI (``CI=true``), where every optional dependency is installed."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency, or skip with the install command; on CI fail instead.

    ``scripts/setup_venv.sh`` installs every extra, so on CI a missing module is a broken set-up that
    must not pass as "skipped".
    """
    if on_ci():
        try:
            return __import__(module, fromlist=["_"])
        except ImportError as exc:
            pytest.fail(f"CI must have {module!r} (pip install 'codegym[{extra}]'): {exc}")
    return pytest.importorskip(module, reason=f"{module} is not installed (pip install 'codegym[{extra}]')")


def backend_unavailable(name: str) -> str | None:
    """Why the backend ``name`` cannot run here (a skip reason), or None if it can."""
    if name != "docker":
        return None
    try:
        from codegym.execution.docker_backend import docker_available
    except ImportError as exc:
        return f"docker backend not importable: {exc}"
    ok, reason = docker_available()
    return None if ok else f"docker unavailable: {reason}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of a sandbox backend; ``docker`` skips with the reason when no engine or image is there."""
    reason = backend_unavailable(request.param)
    if reason:
        pytest.skip(reason)
    return request.param


@pytest.fixture(scope="module", params=(*BACKENDS, "local-python"))
def sandbox(request: pytest.FixtureRequest) -> Iterator[codegym.Executor]:
    """A module-wide Executor per backend (short limits, no cache), so that zygotes are started once.

    ``local-python`` is the local backend on the zygote's pure-Python path (``native=False``): the path
    that containers run, and the one every machine without a C compiler at install time runs.
    """
    reason = backend_unavailable(request.param)
    if reason:
        pytest.skip(reason)
    backend: str | LocalBackend = request.param
    if request.param == "local-python":
        backend = LocalBackend(2, native=False)
    ex = codegym.Executor(backend=backend, timeout_s=1.0, memory_mb=256, workers=2, cache=False)
    try:
        yield ex
    finally:
        ex.close()
