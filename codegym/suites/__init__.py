"""The suite registry: ``list_suites()``, ``load_suite(name, **kwargs)`` and ``register_suite``.

Built-in suites register themselves lazily (their modules import only when loaded). Third-party code adds
its own with :func:`register_suite`.
"""

from __future__ import annotations

import importlib
import inspect
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

    Args:
        name: The suite's name.
        factory: ``factory(**kwargs) -> TaskSuite``; ``load_suite(name, **kwargs)`` calls it.
        overwrite: Replace a suite already registered under ``name``.

    Raises:
        ValueError: if the name is empty or taken (and ``overwrite`` is false), or the factory is not
            callable.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"suite name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise ValueError(f"suite {name!r}: factory must be callable, got {factory!r:.80}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"suite {name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[name] = factory


def list_suites() -> list[str]:
    """Return the names of all registered suites, sorted."""
    return sorted(_REGISTRY)


def load_suite(name: str, **kwargs: Any) -> TaskSuite:
    """Build the suite registered as ``name``; keyword arguments go to its factory.

    Args:
        name: A registered suite name (see :func:`list_suites`).
        **kwargs: Arguments of the suite's factory, e.g. ``n``, ``seed``, ``difficulty`` for ``arith``
            or ``path`` for ``mbpp`` (see docs/suites.md).

    Returns:
        The suite, a :class:`TaskSuite`.

    Raises:
        KeyError: for an unknown name; the message lists the known suites.
        TypeError: for an argument the factory does not take; the message lists those it takes.
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown suite {name!r}; known suites: {', '.join(list_suites())}")
    factory = _REGISTRY[name]
    if isinstance(factory, str):
        module_name, attr = factory.split(":")
        factory = getattr(importlib.import_module(module_name), attr)
    _check_factory_kwargs(name, factory, kwargs)
    return factory(**kwargs)


def _check_factory_kwargs(name: str, factory: SuiteFactory, kwargs: dict[str, Any]) -> None:
    """Raise a TypeError naming the suite, the unknown arguments and the accepted ones."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a callable without an inspectable signature: let it decide
        return
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(
            f"load_suite({name!r}): unknown argument(s) {', '.join(map(repr, unknown))}; "
            f"suite {name!r} takes: {', '.join(accepted) or 'no arguments'}"
        )
