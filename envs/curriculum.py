"""Task samplers: which task an environment attempts at each reset, including a difficulty curriculum.

An environment draws its task from a sampler at every ``reset`` (unless ``options={"task_id": ...}`` or a
fixed ``task_id`` picks it), using the environment's own ``np_random`` so that seeded runs repeat exactly.
After each executed program the environment reports the outcome with :meth:`TaskSampler.update`.

* :class:`UniformSampler`: uniform over a suite (the default).
* :class:`CurriculumSampler`: for the procedural suites (``arith``, ``listops``): starts at the easiest
  level and moves up one level when the success rate over the last ``window`` attempts at the current level
  reaches ``promote_at`` (and, optionally, down when it falls below ``demote_at``).
"""

from __future__ import annotations

import importlib
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from codegym.suites import load_suite
from codegym.tasks import Task, TaskSuite

__all__ = ["CurriculumSampler", "TaskSampler", "UniformSampler"]


class TaskSampler:
    """Chooses tasks for an environment; subclass and override :meth:`sample` (and :meth:`update`)."""

    @property
    def tasks(self) -> Sequence[Task]:
        """Every task this sampler can return (environments size their spaces to fit all of them)."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> Task:
        """Return the next task, drawing randomness only from ``rng``."""
        raise NotImplementedError

    def update(self, task: Task, passed: bool) -> None:
        """Record the outcome of an executed attempt at ``task``; the default ignores it."""

    def state(self) -> dict[str, Any]:
        """Small facts for ``info`` at reset (e.g. the curriculum level); empty by default."""
        return {}


class UniformSampler(TaskSampler):
    """Draws tasks uniformly from a fixed collection.

    Args:
        tasks: The tasks (a :class:`TaskSuite` or any non-empty sequence).

    Raises:
        ValueError: if ``tasks`` is empty.
    """

    def __init__(self, tasks: Sequence[Task]) -> None:
        if len(tasks) == 0:
            name = getattr(tasks, "name", "tasks")
            raise ValueError(f"UniformSampler: {name} is empty (check the suite and split)")
        self._tasks = tasks

    @property
    def tasks(self) -> Sequence[Task]:
        """The tasks drawn from."""
        return self._tasks

    def sample(self, rng: np.random.Generator) -> Task:
        """Return a uniformly chosen task."""
        return self._tasks[int(rng.integers(len(self._tasks)))]


class CurriculumSampler(TaskSampler):
    """A difficulty curriculum over a procedural suite: promote when the recent success rate is high.

    Tasks of every level are generated up front (``load_suite(suite, n=tasks_per_level, seed=seed,
    difficulty=level)``, restricted to ``split``). The sampler draws from the current level; with
    probability ``review`` it draws from a uniformly chosen earlier level instead, so that easy skills are
    not forgotten. Outcomes of attempts at the current level go into a window of the last ``window``
    attempts; when the window is full and its success rate is at least ``promote_at``, the level goes up
    and the window is cleared; when ``demote_at`` is set and the rate falls below it, the level goes down.

    Args:
        suite: A procedural suite with a ``difficulty`` argument (``"arith"``, ``"listops"``).
        levels: The difficulty levels in order; default ``1 .. MAX_DIFFICULTY`` of the suite's module.
        tasks_per_level: Tasks generated per level.
        seed: Seed of the task generator (not of the sampling, which uses the environment's rng).
        split: ``"train"``, ``"test"`` or ``None`` (all tasks).
        promote_at: Success rate over the window that moves up one level.
        demote_at: Success rate below which the level moves down (``None``: never).
        window: Number of recent attempts at the current level that decide.
        review: Probability of drawing from an earlier level.
        start_level: Index into ``levels`` to start at.
        examples_only: Generate the suite's examples-only variant (``load_suite(..., examples_only=True)``),
            as the ``ArithIO``/``ListOpsIO`` ids do.

    Raises:
        ValueError: naming the bad argument and its value.
    """

    def __init__(
        self,
        suite: str = "arith",
        *,
        levels: Sequence[int] | None = None,
        tasks_per_level: int = 100,
        seed: int = 0,
        split: str | None = "train",
        promote_at: float = 0.8,
        demote_at: float | None = None,
        window: int = 32,
        review: float = 0.1,
        start_level: int = 0,
        examples_only: bool = False,
    ) -> None:
        if levels is None:
            module = importlib.import_module(f"codegym.suites.{suite}")
            top = getattr(module, "MAX_DIFFICULTY", None)
            if top is None:
                raise ValueError(f"CurriculumSampler: suite {suite!r} has no MAX_DIFFICULTY; pass levels=...")
            levels = range(1, int(top) + 1)
        self.levels: tuple[int, ...] = tuple(int(lvl) for lvl in levels)
        if not self.levels:
            raise ValueError("CurriculumSampler: levels is empty")
        if not 0.0 < promote_at <= 1.0:
            raise ValueError(f"CurriculumSampler: promote_at must be in (0, 1], got {promote_at!r}")
        if demote_at is not None and not 0.0 <= demote_at < promote_at:
            raise ValueError(f"CurriculumSampler: demote_at must be in [0, promote_at), got {demote_at!r}")
        if type(window) is not int or window < 1:
            raise ValueError(f"CurriculumSampler: window must be a positive int, got {window!r}")
        if not 0.0 <= review < 1.0:
            raise ValueError(f"CurriculumSampler: review must be in [0, 1), got {review!r}")
        if type(examples_only) is not bool:
            raise ValueError(f"CurriculumSampler: examples_only must be True or False, got {examples_only!r}")
        if not 0 <= start_level < len(self.levels):
            raise ValueError(
                f"CurriculumSampler: start_level must index levels {self.levels}, got {start_level!r}"
            )
        self.suite = suite
        self.promote_at = float(promote_at)
        self.demote_at = None if demote_at is None else float(demote_at)
        self.window = window
        self.review = float(review)
        self._by_level: list[TaskSuite] = []
        for level in self.levels:
            # Only the examples-only variant passes the flag: other suites need not know it.
            variant = {"examples_only": True} if examples_only else {}
            tasks = load_suite(suite, n=tasks_per_level, seed=seed, difficulty=level, **variant)
            if split is not None:
                tasks = tasks.split(split)
            if len(tasks) == 0:
                raise ValueError(f"CurriculumSampler: level {level} of {suite} has no {split} tasks")
            self._by_level.append(tasks)
        self._all = TaskSuite(suite, [t for level_tasks in self._by_level for t in level_tasks])
        self._level_of = {t.task_id: i for i, level_tasks in enumerate(self._by_level) for t in level_tasks}
        self._index = start_level
        self._outcomes: deque[bool] = deque(maxlen=window)

    @property
    def tasks(self) -> TaskSuite:
        """All tasks of all levels."""
        return self._all

    @property
    def level(self) -> int:
        """The current difficulty level (a value of ``levels``)."""
        return self.levels[self._index]

    @property
    def success_rate(self) -> float:
        """Success rate over the current window at the current level (0.0 when empty)."""
        return sum(self._outcomes) / len(self._outcomes) if self._outcomes else 0.0

    def sample(self, rng: np.random.Generator) -> Task:
        """Draw from the current level, or with probability ``review`` from an earlier one."""
        index = self._index
        if index > 0 and self.review > 0.0 and rng.random() < self.review:
            index = int(rng.integers(index))
        tasks = self._by_level[index]
        return tasks[int(rng.integers(len(tasks)))]

    def update(self, task: Task, passed: bool) -> None:
        """Record an outcome; move the level when the window is full and crosses a threshold."""
        if self._level_of.get(task.task_id) != self._index:
            return  # reviews of easier levels (and foreign tasks) do not decide promotion
        self._outcomes.append(bool(passed))
        if len(self._outcomes) < self.window:
            return
        rate = self.success_rate
        if rate >= self.promote_at and self._index + 1 < len(self.levels):
            self._index += 1
            self._outcomes.clear()
        elif self.demote_at is not None and rate < self.demote_at and self._index > 0:
            self._index -= 1
            self._outcomes.clear()

    def state(self) -> dict[str, Any]:
        """``{"curriculum_level": level, "curriculum_success_rate": rate}`` for ``info``."""
        return {"curriculum_level": self.level, "curriculum_success_rate": self.success_rate}
