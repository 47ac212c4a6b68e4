"""The execution sandbox: run untrusted programs against a task's tests, fast and honestly."""

from codegym.execution.result import STATUSES, ExecutionResult, Status, TestOutcome

__all__ = ["STATUSES", "ExecutionResult", "Status", "TestOutcome"]
