"""The reward-function contract shared by environments, wrappers and trainers.

A reward function is any callable ``fn(task, program, result) -> float`` that is pure (same inputs, same
output; no execution of its own unless documented). Composite rewards also expose
``components(task, program, result) -> dict[str, float]``; :func:`reward_breakdown` gives every reward a
named breakdown for ``info["reward_components"]``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from codegym.execution.result import ExecutionResult
from codegym.tasks import Task


@runtime_checkable
class RewardFunction(Protocol):
    """A pure map from (task, program, execution result) to a float."""

    def __call__(self, task: Task, program: str, result: ExecutionResult) -> float:
        """Score ``program`` on ``task`` given its execution ``result``."""
        ...


def reward_name(fn: RewardFunction) -> str:
    """The name a reward is logged under: its ``name`` attribute, else its ``__name__``."""
    return str(getattr(fn, "name", None) or getattr(fn, "__name__", type(fn).__name__))


def reward_breakdown(
    fn: RewardFunction, task: Task, program: str, result: ExecutionResult
) -> tuple[float, dict[str, float]]:
    """Return ``(total, components)``; a simple reward's components are ``{name: total}``."""
    components_fn = getattr(fn, "components", None)
    if callable(components_fn):
        components = {str(k): float(v) for k, v in components_fn(task, program, result).items()}
        return float(fn(task, program, result)), components
    value = float(fn(task, program, result))
    return value, {reward_name(fn): value}
