"""The result of running one program against one task's tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal[
    "passed",
    "failed",
    "syntax_error",
    "runtime_error",
    "timeout",
    "memory_limit",
    "output_limit",
    "sandbox_error",
]
"""Every verdict an execution can end with. ``sandbox_error`` is kept for the executor's own faults."""

STATUSES: tuple[str, ...] = (
    "passed",
    "failed",
    "syntax_error",
    "runtime_error",
    "timeout",
    "memory_limit",
    "output_limit",
    "sandbox_error",
)


@dataclass(frozen=True)
class TestOutcome:
    """The outcome of one test case.

    Attributes:
        passed: Whether the test passed.
        status: ``"passed"``, ``"failed"`` (wrong answer), ``"runtime_error"``, ``"timeout"``, ... for
            this test alone, or ``"not_run"`` when an earlier fault stopped the run.
        duration_s: CPU or wall time spent on this test, seconds.
        verified_in_parent: True when the verdict was decided by the parent process from the returned
            value (call and stdio tests); False for assert tests, whose verdict comes from the sandbox.
        visible: True for a visible example (``task.visible_tests``), False for a hidden test.
        message: Short detail (exception line, or for visible tests the expected and got values).
    """

    passed: bool
    status: str
    duration_s: float = field(default=0.0, compare=False)  # timing is not part of the verdict
    verified_in_parent: bool = True
    visible: bool = False
    message: str = ""


@dataclass(frozen=True)
class ExecutionResult:
    """What happened when a program ran against a task's tests.

    Attributes:
        status: The overall verdict (see :data:`Status`).
        tests: One outcome per hidden test of ``task.tests``, in order.
        feedback: Short text for an agent: the first failing visible test with input, expected and got,
            or the exception line, or the syntax error with line and caret. Never reveals the expected
            value of a hidden test.
        stdout: Excerpt of what the program printed (capped).
        stderr: Excerpt of its standard error (capped).
        duration_s: Wall-clock time of the whole execution, seconds.
        task_id: The task this result belongs to.
        cached: True if this result came from the executor's cache.
        visible_tests: One outcome per visible example of ``task.visible_tests`` (they do not decide).
        cpu_s: CPU time of the run's processes as counted by the kernel (measured outside the sandbox,
            so a program cannot fake it, unlike the per-test ``TestOutcome.duration_s`` it reports).
    """

    status: Status
    tests: tuple[TestOutcome, ...] = ()
    feedback: str = ""
    stdout: str = ""
    stderr: str = ""
    # Timing and cache provenance are excluded from equality: two runs of the same program compare equal
    # (environments put results in ``info``, and Gymnasium's determinism checks compare infos with ==).
    duration_s: float = field(default=0.0, compare=False)
    task_id: str = ""
    cached: bool = field(default=False, compare=False)
    visible_tests: tuple[TestOutcome, ...] = field(default=())
    cpu_s: float = field(default=0.0, compare=False)

    @property
    def passed(self) -> bool:
        """True when every hidden test passed."""
        return self.status == "passed"

    @property
    def num_passed(self) -> int:
        """How many hidden tests passed."""
        return sum(1 for t in self.tests if t.passed)

    @property
    def pass_rate(self) -> float:
        """Fraction of hidden tests passed (0.0 when no test ran)."""
        return self.num_passed / len(self.tests) if self.tests else 0.0

    def summary(self) -> dict[str, object]:
        """A small dict for ``info``: status, passed, pass_rate, counts, duration and feedback."""
        return {
            "status": self.status,
            "passed": self.passed,
            "pass_rate": self.pass_rate,
            "num_tests": len(self.tests),
            "num_passed": self.num_passed,
            "duration_s": self.duration_s,
            "feedback": self.feedback,
        }
