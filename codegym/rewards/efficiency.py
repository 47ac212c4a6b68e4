"""Runtime efficiency against the reference solution, timed by the same executor.

Unlike the other rewards, :class:`Efficiency` runs code of its own: the task's *reference* program, once
per task (the timing is cached), through the executor it was given; the candidate's time comes from the
result it is scored on. Both must come from the same executor (same backend, limits and machine) for the
ratio to mean anything, which is why the executor is an explicit constructor argument.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any, Protocol

from codegym.execution.result import ExecutionResult
from codegym.tasks import Task


class _Runs(Protocol):
    def run(self, task: Task, program: str) -> ExecutionResult: ...


def run_time(result: ExecutionResult) -> float:
    """The time a run spent on its tests: the sum of per-test times, else the whole run's duration.

    The executor times each test inside the sandbox (``TestOutcome.duration_s``: the clock around the
    call, in a single-threaded child), which excludes start-up and harness overhead that would otherwise
    swamp the difference between two short programs.
    """
    per_test = sum(t.duration_s for t in result.tests)
    return per_test if per_test > 0 else float(result.duration_s)


class Efficiency:
    """Speed-up over the reference, clipped, for passing programs only (cf. ACECode, Yang et al. 2024).

    Formula::

        R = clip(t_ref / max(t_cand, min_time), 0, max_speedup)   if the candidate passed
            fail_value (0.0)                                       otherwise

    where ``t`` is :func:`run_time` of a run: per-test time measured by ``executor`` in its sandbox.
    The reference is run through the same executor ``repeats`` times on first use of a task, and its
    median time is cached (``reference_time``). A candidate as fast as the reference earns 1.0, twice
    as fast earns 2.0 (the default cap), half as fast earns 0.5. Timings of programs that run for
    microseconds are noisy: ``min_time`` floors both times, and the term is best given a small weight
    next to a correctness reward.

    Args:
        executor: Any object with ``run(task, program) -> ExecutionResult`` (a :class:`codegym.Executor`).
        max_speedup: Upper clip of the ratio.
        min_time: Floor applied to both times, seconds.
        fail_value: The reward of a program that did not pass.
        repeats: Runs of the reference whose median is cached.
        time_of: How a result's time is read; default :func:`run_time`.
        name: Name for logs and ``reward_components``.

    Raises:
        ValueError: at construction, for a non-positive cap, floor or repeat count.
        RuntimeError: when the reference itself does not pass (the message names the task and status).
    """

    def __init__(
        self,
        executor: _Runs,
        *,
        max_speedup: float = 2.0,
        min_time: float = 1e-4,
        fail_value: float = 0.0,
        repeats: int = 3,
        time_of: Callable[[ExecutionResult], float] = run_time,
        name: str = "efficiency",
    ) -> None:
        if not callable(getattr(executor, "run", None)):
            raise ValueError(f"Efficiency needs an executor with run(task, program), got {executor!r:.80}")
        if not (max_speedup > 0 and math.isfinite(max_speedup)):
            raise ValueError(f"max_speedup must be a finite number > 0, got {max_speedup!r}")
        if not (min_time > 0 and math.isfinite(min_time)):
            raise ValueError(f"min_time must be a finite number > 0, got {min_time!r}")
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats!r}")
        self.executor = executor
        self.max_speedup = float(max_speedup)
        self.min_time = float(min_time)
        self.fail_value = float(fail_value)
        self.repeats = int(repeats)
        self.time_of = time_of
        self.name = name
        self.__name__ = name
        self._reference_times: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def reference_time(self, task: Task) -> float:
        """The median time of ``task.reference`` on this executor (measured once, then cached)."""
        key = (task.task_id, task.reference)
        with self._lock:
            cached = self._reference_times.get(key)
        if cached is not None:
            return cached
        times = []
        for attempt in range(self.repeats):
            result = self._run_uncached(task, task.reference, attempt)
            if result.status != "passed":
                raise RuntimeError(
                    f"task {task.task_id}: the reference program did not pass on this executor "
                    f"(status {result.status!r}: {result.feedback[:200]}); cannot time it"
                )
            times.append(self.time_of(result))
        times.sort()
        value = max(times[len(times) // 2], self.min_time)
        with self._lock:
            self._reference_times[key] = value
        return value

    def _run_uncached(self, task: Task, program: str, attempt: int) -> ExecutionResult:
        # The executor caches results by program text: a distinct trailing comment per attempt makes each
        # repeat a real run without touching the user's cache, and leaves the program's behaviour unchanged.
        return self.executor.run(task, f"{program.rstrip()}\n# codegym efficiency timing run {attempt}\n")

    def __call__(self, task: Task, program: str, result: ExecutionResult) -> float:
        """The clipped speed-up of ``program`` (whose run is ``result``) over the reference."""
        if result.status != "passed":
            return self.fail_value
        t_cand = max(self.time_of(result), self.min_time)
        ratio = self.reference_time(task) / t_cand
        return float(min(max(ratio, 0.0), self.max_speedup))

    def __repr__(self) -> str:
        return (
            f"Efficiency(max_speedup={self.max_speedup:g}, min_time={self.min_time:g}"
            f", repeats={self.repeats})"
        )


def efficiency(executor: _Runs, **kwargs: Any) -> Efficiency:
    """Build an :class:`Efficiency` reward timed by ``executor``; keyword arguments as for the class."""
    return Efficiency(executor, **kwargs)
