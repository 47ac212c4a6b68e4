"""Checking a suite: unique ids, every task has tests, and every reference passes its own tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from codegym.tasks import Task, TaskError

if TYPE_CHECKING:
    from codegym.execution.executor import Executor
    from codegym.execution.result import ExecutionResult


@dataclass(frozen=True)
class ValidationReport:
    """What :func:`validate_suite` checked.

    Attributes:
        num_tasks: Tasks checked.
        num_tests: Hidden tests run (all passed).
        num_visible: Visible tests run (all passed), where the executor reports them.
    """

    num_tasks: int
    num_tests: int
    num_visible: int


def _failure(task: Task, result: ExecutionResult) -> str | None:
    if not result.passed:
        failed = [i for i, t in enumerate(result.tests) if not t.passed]
        detail = result.feedback.strip().splitlines()[0] if result.feedback.strip() else ""
        return f"{task.task_id}: {result.status}, hidden tests failed at {failed[:8]} {detail[:160]}".rstrip()
    bad_visible = [i for i, t in enumerate(result.visible_tests) if not t.passed]
    if bad_visible:
        return f"{task.task_id}: visible examples {bad_visible[:8]} fail for the reference"
    return None


def validate_suite(tasks: Sequence[Task], executor: Executor, *, batch_size: int = 64) -> ValidationReport:
    """Check that ids are unique, every task has tests, and every reference passes all its tests.

    Args:
        tasks: A :class:`~codegym.tasks.TaskSuite` or any sequence of tasks.
        executor: The executor that runs the references (``codegym.Executor()``).
        batch_size: How many references go to ``executor.run_batch`` at once.

    Returns:
        Counts of what was checked.

    Raises:
        TaskError: naming every offending task id: duplicates, tasks without tests, and references that
            do not pass (with their status and the first line of feedback).
    """
    seen: set[str] = set()
    problems: list[str] = []
    for task in tasks:
        if task.task_id in seen:
            problems.append(f"{task.task_id}: duplicate task id")
        seen.add(task.task_id)
        if not task.tests:
            problems.append(f"{task.task_id}: has no tests")
    if problems:
        raise TaskError("invalid suite:\n  " + "\n  ".join(problems))
    num_tests = num_visible = 0
    for start in range(0, len(tasks), batch_size):
        chunk = list(tasks[start : start + batch_size])
        results = executor.run_batch([(task, task.reference) for task in chunk])
        for task, result in zip(chunk, results):
            message = _failure(task, result)
            if message is not None:
                problems.append(message)
            num_tests += len(result.tests)
            num_visible += len(result.visible_tests)
    if problems:
        raise TaskError(f"{len(problems)} reference(s) fail their own tests:\n  " + "\n  ".join(problems))
    return ValidationReport(num_tasks=len(tasks), num_tests=num_tests, num_visible=num_visible)
