"""Shared fixtures: the sandbox backends that tests run against."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import codegym

BACKENDS = ["local", "docker"]


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


@pytest.fixture(scope="module", params=BACKENDS)
def sandbox(request: pytest.FixtureRequest) -> Iterator[codegym.Executor]:
    """A module-wide Executor per backend (short limits, no cache), so that zygotes are started once."""
    reason = backend_unavailable(request.param)
    if reason:
        pytest.skip(reason)
    ex = codegym.Executor(backend=request.param, timeout_s=1.0, memory_mb=256, workers=2, cache=False)
    try:
        yield ex
    finally:
        ex.close()
