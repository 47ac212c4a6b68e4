"""Composition of rewards: :class:`WeightedSum` and :func:`weighted_sum`.

A weighted sum reports its named components, so ``info["reward_components"]`` shows where every bit of
reward came from. Components are the *weighted* contributions, so they always add up to the total; a
term that is itself a composite contributes its own components under ``"<term>.<component>"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from codegym.execution.result import ExecutionResult
from codegym.rewards.base import RewardFunction, reward_breakdown, reward_name
from codegym.tasks import Task


class WeightedSum:
    """``R = sum_i w_i * R_i`` over named reward terms, reporting each weighted term as a component.

    Args:
        terms: ``(reward_fn, weight)`` pairs, or a mapping ``{name: (reward_fn, weight)}`` to log terms
            under names of your choosing. Unnamed terms are logged under :func:`reward_name`.
        name: The name of the sum itself (its ``__name__``, used by TRL and in logs).

    Raises:
        ValueError: if there is no term, two terms share a name, a weight is not finite, or a term is
            not callable.

    Example::

        reward = weighted_sum(pass_rate=1.0, compiles=0.1)      # by name from codegym.rewards
        reward = WeightedSum([(pass_fail, 1.0), (my_fn, 0.5)])
        total, parts = reward_breakdown(reward, task, program, result)
    """

    def __init__(
        self,
        terms: Iterable[tuple[RewardFunction, float]] | Mapping[str, tuple[RewardFunction, float]],
        name: str = "weighted_sum",
    ) -> None:
        if isinstance(terms, Mapping):
            for key, term in terms.items():
                _check_pair(name, f"term {key!r}", term)
            named = [(str(k), fn, w) for k, (fn, w) in terms.items()]
        else:
            terms = list(terms)
            for index, term in enumerate(terms):
                _check_pair(name, f"term {index}", term)
            named = [(reward_name(fn), fn, w) for fn, w in terms]
        if not named:
            raise ValueError(f"{name}: needs at least one reward term")
        seen: set[str] = set()
        for term_name, fn, weight in named:
            if not callable(fn):
                raise ValueError(f"{name}: term {term_name!r} is not callable: {fn!r:.80}")
            if not isinstance(weight, (int, float)) or not math.isfinite(weight):
                raise ValueError(f"{name}: weight of {term_name!r} must be a finite number, got {weight!r}")
            if term_name in seen:
                raise ValueError(f"{name}: two terms are named {term_name!r}; pass a mapping to rename one")
            seen.add(term_name)
        self.terms: tuple[tuple[str, RewardFunction, float], ...] = tuple(
            (n, fn, float(w)) for n, fn, w in named
        )
        self.name = name
        self.__name__ = name

    @property
    def weights(self) -> dict[str, float]:
        """The weight of every term, by name."""
        return {n: w for n, _, w in self.terms}

    def components(self, task: Task, program: str, result: ExecutionResult) -> dict[str, float]:
        """The weighted contribution of every term (nested composites flattened as ``term.part``)."""
        out: dict[str, float] = {}
        for term_name, fn, weight in self.terms:
            _, parts = reward_breakdown(fn, task, program, result)
            if len(parts) == 1 and not callable(getattr(fn, "components", None)):
                out[term_name] = weight * next(iter(parts.values()))
            else:
                for part, value in parts.items():
                    out[f"{term_name}.{part}"] = weight * value
        return out

    def __call__(self, task: Task, program: str, result: ExecutionResult) -> float:
        """The total reward: the sum of :meth:`components`."""
        return float(sum(self.components(task, program, result).values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={w:g}" for n, _, w in self.terms)
        return f"WeightedSum({inner}, name={self.name!r})"


def _check_pair(name: str, where: str, term: object) -> None:
    """Raise a ValueError unless ``term`` is a ``(reward_fn, weight)`` pair."""
    if not isinstance(term, (tuple, list)) or len(term) != 2:
        raise ValueError(f"{name}: {where} must be a (reward_fn, weight) pair, got {term!r:.80}")


def weighted_sum(
    *terms: tuple[RewardFunction, float], name: str = "weighted_sum", **weights: Any
) -> WeightedSum:
    """Compose rewards into a :class:`WeightedSum`.

    Positional arguments are ``(reward_fn, weight)`` pairs; keyword arguments name a reward of
    :mod:`codegym.rewards` and give its weight (``weighted_sum(pass_rate=1.0, compiles=0.1)``), or map a
    new name to a ``(reward_fn, weight)`` pair (``weighted_sum(tests=(pass_rate, 1.0))``).

    Raises:
        ValueError: for an unknown reward name (the message lists the known ones) or a malformed term.
    """
    import codegym.rewards as library

    named: dict[str, tuple[RewardFunction, float]] = {}
    for index, term in enumerate(terms):
        _check_pair(name, f"term {index}", term)
        fn, weight = term
        if reward_name(fn) in named:
            raise ValueError(f"{name}: two terms are named {reward_name(fn)!r}; pass label=(fn, weight)")
        named[reward_name(fn)] = (fn, weight)
    for key, spec in weights.items():
        if key in named:
            raise ValueError(f"{name}: two terms are named {key!r}")
        if isinstance(spec, tuple):
            _check_pair(name, f"term {key!r}", spec)
            named[key] = spec
            continue
        fn = getattr(library, key, None)
        if fn is None or key not in getattr(library, "REWARDS", {}):
            known = ", ".join(sorted(getattr(library, "REWARDS", {})))
            raise ValueError(f"weighted_sum: unknown reward {key!r}; known rewards: {known}")
        named[key] = (fn, spec)
    return WeightedSum(named, name=name)
