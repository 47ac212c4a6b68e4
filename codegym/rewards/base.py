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


_EXPECTED: dict[str, tuple[type, str]] = {
    "task": (Task, "a codegym Task"),
    "program": (str, "the program text (str)"),
    "result": (ExecutionResult, "an ExecutionResult (from Executor.run)"),
}


def check_reward_args(reward: str, **args: object) -> None:
    """Raise a TypeError naming ``reward``, the argument and its type when an argument has the wrong type.

    A reward passes the arguments it reads, by name: ``check_reward_args("pass_fail", result=result)``.

    Args:
        reward: The reward's name, for the message.
        **args: Any of ``task`` (must be a :class:`~codegym.tasks.Task`), ``program`` (a ``str``) and
            ``result`` (an :class:`~codegym.execution.result.ExecutionResult`).

    Raises:
        TypeError: for the first argument of the wrong type.
    """
    for arg, value in args.items():
        expected, what = _EXPECTED[arg]
        if not isinstance(value, expected):
            raise TypeError(f"{reward}: {arg} must be {what}, got {type(value).__name__} {value!r:.60}")


def reward_name(fn: RewardFunction) -> str:
    """The name a reward is logged under: its ``name`` attribute, else its ``__name__``."""
    return str(getattr(fn, "name", None) or getattr(fn, "__name__", type(fn).__name__))


def reward_breakdown(
    fn: RewardFunction, task: Task, program: str, result: ExecutionResult
) -> tuple[float, dict[str, float]]:
    """Return ``(total, components)``; a simple reward's components are ``{name: total}``.

    Args:
        fn: Any reward; a composite's own ``components(task, program, result)`` gives its breakdown.
        task: The task.
        program: The program that ran.
        result: Its execution result.

    Returns:
        The reward and its named components (what environments put in ``info["reward_components"]``).
    """
    components_fn = getattr(fn, "components", None)
    if callable(components_fn):
        components = {str(k): float(v) for k, v in components_fn(task, program, result).items()}
        return float(fn(task, program, result)), components
    value = float(fn(task, program, result))
    return value, {reward_name(fn): value}
