"""The suite registry: ``list_suites()``, ``load_suite(name, **kwargs)`` and ``register_suite``.

Built-in suites register themselves lazily (their modules import only when loaded). Third-party code adds
its own with :func:`register_suite`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from codegym.tasks import TaskSuite

SuiteFactory = Callable[..., TaskSuite]
"""A callable that builds a :class:`TaskSuite` from keyword arguments."""

_BUILTIN: dict[str, str] = {
    "arith": "codegym.suites.arith:load",
    "basic": "codegym.suites.basic:load",
    "humaneval": "codegym.suites.humaneval:load",
    "listops": "codegym.suites.listops:load",
    "mbpp": "codegym.suites.mbpp:load",
    "apps": "codegym.suites.apps:load",
}
_REGISTRY: dict[str, SuiteFactory | str] = dict(_BUILTIN)


def register_suite(name: str, factory: SuiteFactory, *, overwrite: bool = False) -> None:
    """Register a suite factory under ``name`` so that ``load_suite(name)`` can build it.

    Raises:
        ValueError: if the name is taken and ``overwrite`` is false.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"suite name must be a non-empty string, got {name!r}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"suite {name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[name] = factory


def list_suites() -> list[str]:
    """Return the names of all registered suites, sorted."""
    return sorted(_REGISTRY)


def load_suite(name: str, **kwargs: Any) -> TaskSuite:
    """Build the suite registered as ``name``; keyword arguments go to its factory.

    Raises:
        KeyError: for an unknown name; the message lists the known suites.
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown suite {name!r}; known suites: {', '.join(list_suites())}")
    factory = _REGISTRY[name]
    if isinstance(factory, str):
        module_name, attr = factory.split(":")
        factory = getattr(importlib.import_module(module_name), attr)
    return factory(**kwargs)
