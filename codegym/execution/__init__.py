"""The execution sandbox: run untrusted programs against a task's tests, fast and honestly."""

from typing import TYPE_CHECKING, Any

from codegym.execution.result import STATUSES, ExecutionResult, Status, TestOutcome

if TYPE_CHECKING:
    from codegym.execution.executor import Executor, Limits

__all__ = ["STATUSES", "ExecutionResult", "Executor", "Limits", "Status", "TestOutcome"]


def __getattr__(name: str) -> Any:
    # The executor is imported on first use so that importing results stays light.
    if name in ("Executor", "Limits"):
        from codegym.execution import executor

        return getattr(executor, name)
    raise AttributeError(f"module 'codegym.execution' has no attribute {name!r}")
