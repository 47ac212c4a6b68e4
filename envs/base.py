"""What every CodeGym environment shares: choosing tasks, executing programs, rewards, info and pickling.

:class:`CodeEnv` is the base of :class:`~codegym.envs.program.ProgramEnv`,
:class:`~codegym.envs.repair.RepairEnv` and :class:`~codegym.envs.token.TokenEnv`. A step is split in two
halves so that :class:`~codegym.envs.vector.CodeVectorEnv` can execute the programs of many environments
in one ``run_batch``:

* ``_prepare(action)`` validates the action and updates the episode; it returns the program to execute
  when the step ends an attempt, else ``None``;
* ``_conclude(result)`` turns the execution result (or ``None``) into ``(obs, reward, terminated,
  truncated, info)``.

Executors are expensive (each owns sandbox processes), so environments in one process that were created
with the same ``executor_kwargs`` share one, acquired on first use and closed when the last of them closes.
A live executor is never pickled: an unpickled environment acquires its own on first use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

import gymnasium as gym
from codegym.envs.curriculum import CurriculumSampler, TaskSampler, UniformSampler

from codegym.execution.result import ExecutionResult
from codegym.rewards.base import RewardFunction, reward_breakdown
from codegym.suites import load_suite
from codegym.tasks import Task, TaskSuite

ObsT = TypeVar("ObsT")
ActT = TypeVar("ActT")

__all__ = ["CodeEnv", "acquire_executor", "cached_suite", "release_executor", "with_examples_only"]

# ---------------------------------------------------------------------------------------------------------
# Shared executors

_SHARED: dict[tuple[int, str], list[Any]] = {}  # (pid, kwargs key) -> [executor, refcount]


def _executor_key(kwargs: Mapping[str, Any]) -> tuple[int, str]:
    return os.getpid(), repr(sorted(kwargs.items()))


def acquire_executor(kwargs: Mapping[str, Any] | None = None) -> Any:
    """Return this process's shared :class:`codegym.Executor` for ``kwargs``, creating it on first use.

    Every call must be matched by one :func:`release_executor` with the same kwargs.
    """
    kwargs = dict(kwargs or {})
    key = _executor_key(kwargs)
    entry = _SHARED.get(key)
    if entry is None:
        from codegym import Executor

        entry = _SHARED[key] = [Executor(**kwargs), 0]
    entry[1] += 1
    return entry[0]


def release_executor(kwargs: Mapping[str, Any] | None = None) -> None:
    """Drop one reference to the shared executor for ``kwargs``; close it when none is left."""
    key = _executor_key(dict(kwargs or {}))
    entry = _SHARED.get(key)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] <= 0:
        del _SHARED[key]
        entry[0].close()


# ---------------------------------------------------------------------------------------------------------
# Suites: immutable, so environments in one process share them (a vector of N envs loads a suite once).

_SUITES: dict[str, TaskSuite] = {}


def cached_suite(name: str, kwargs: Mapping[str, Any] | None = None) -> TaskSuite:
    """Return ``load_suite(name, **kwargs)``, loading each (name, kwargs) once per process."""
    kwargs = dict(kwargs or {})
    key = repr((name, sorted(kwargs.items())))
    suite = _SUITES.get(key)
    if suite is None:
        suite = _SUITES[key] = load_suite(name, **kwargs)
    return suite


def with_examples_only(
    suite_kwargs: Mapping[str, Any] | None, examples_only: bool, *, where: str
) -> dict[str, Any]:
    """Return a copy of ``suite_kwargs`` with ``examples_only=True`` added when ``examples_only`` is set.

    The ``ArithIO``/``ListOpsIO`` ids pass ``examples_only=True`` as an environment argument, not inside
    ``suite_kwargs``: ``gym.make(id, suite_kwargs={...})`` replaces the spec's ``suite_kwargs`` whole, and
    the id must keep its variant. ``codegym train`` builds its held-out suite with this function too.

    Args:
        suite_kwargs: Arguments of ``load_suite`` (not modified).
        examples_only: Whether the examples-only variant is asked for.
        where: Names the caller in error messages.

    Raises:
        ValueError: if ``examples_only`` is not a bool, or ``suite_kwargs`` asks for the plain variant
            while ``examples_only`` asks for the other.
    """
    kwargs = dict(suite_kwargs or {})
    if type(examples_only) is not bool:
        raise ValueError(f"{where}: examples_only must be True or False, got {examples_only!r}")
    if examples_only:
        if kwargs.get("examples_only", True) is not True:
            raise ValueError(
                f"{where}: examples_only=True conflicts with suite_kwargs examples_only="
                f"{kwargs['examples_only']!r}; drop one of them"
            )
        kwargs["examples_only"] = True
    return kwargs


# ---------------------------------------------------------------------------------------------------------
# Text helpers


def clip_text(text: str, limit: int, charset: frozenset[str]) -> str:
    """Return ``text`` with characters outside ``charset`` replaced by ``?``, cut to ``limit`` characters.

    Cut text ends with ``...`` so that the agent can tell it was cut.
    """
    if len(text) > limit:
        text = text[: max(0, limit - 3)] + "..."[:limit]
    if any(c not in charset for c in text):
        text = "".join(c if c in charset else "?" for c in text)
    return text


class CodeEnv(gym.Env[ObsT, ActT], Generic[ObsT, ActT]):
    """Base class of the CodeGym environments: tasks, execution, rewards, info, rendering and pickling.

    Args:
        suite: A suite name for :func:`codegym.load_suite` or a :class:`TaskSuite`.
        split: ``"train"``, ``"test"`` or ``None`` (all tasks) for the tasks sampled at reset.
        task_id: Fix the task (every reset attempts it unless ``options`` picks another).
        sampler: A :class:`TaskSampler`, or ``"curriculum"`` for a :class:`CurriculumSampler` over
            ``suite`` (procedural suites only). Default: uniform over the suite (and split).
        suite_kwargs: Keyword arguments for ``load_suite`` (e.g. ``{"n": 500, "difficulty": 2}``, or the
            data ``path`` of ``mbpp``/``apps``).
        data_path: Shortcut for ``suite_kwargs={"path": data_path}`` (the MBPP/APPS JSONL file).
        examples_only: Load the suite's examples-only variant (``arith``, ``listops``: prompts show only
            input/output examples); the ``ArithIO``/``ListOpsIO`` ids set it. Same as
            ``suite_kwargs={"examples_only": True}``, but kept when ``gym.make`` is given other
            ``suite_kwargs``; with a :class:`TaskSuite`, every task must be examples-only.
        reward_fn: A reward function ``fn(task, program, result) -> float``; default
            :func:`codegym.rewards.pass_fail`.
        executor: An executor to use (not closed by the environment, not pickled). Default: this process's
            shared ``codegym.Executor(**executor_kwargs)``.
        executor_kwargs: Arguments of the default executor (e.g. ``{"timeout_s": 2.0}``).
        render_mode: ``None`` or ``"ansi"``.

    Raises:
        ValueError: for an unknown render mode, split or sampler, an empty task set, or a bad
            ``examples_only``.
        KeyError: for a ``task_id`` that is not in the suite (naming close matches).
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        suite: str | TaskSuite = "basic",
        *,
        split: str | None = None,
        task_id: str | None = None,
        sampler: TaskSampler | str | None = None,
        suite_kwargs: Mapping[str, Any] | None = None,
        data_path: str | os.PathLike[str] | None = None,
        examples_only: bool = False,
        reward_fn: RewardFunction | None = None,
        executor: Any = None,
        executor_kwargs: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"{type(self).__name__}: render_mode must be None or 'ansi', got {render_mode!r}"
            )
        self.render_mode = render_mode
        name = type(self).__name__
        if isinstance(suite, TaskSuite):
            with_examples_only(None, examples_only, where=name)  # checks the value
            if examples_only and not all(t.metadata.get("examples_only") is True for t in suite):
                raise ValueError(
                    f"{name}: examples_only=True but suite {suite.name!r} has tasks that are not "
                    "examples-only; pass the suite's name, or a suite loaded with examples_only=True"
                )
            self.suite = suite
        elif isinstance(suite, str):
            suite_kwargs = with_examples_only(suite_kwargs, examples_only, where=name)
            if data_path is not None:
                suite_kwargs["path"] = os.fspath(data_path)
            self.suite = cached_suite(suite, suite_kwargs)
        else:
            raise TypeError(
                f"{type(self).__name__}: suite must be a suite name or a TaskSuite, got {suite!r:.80}"
            )
        self.suite_name = self.suite.name.split(":")[0]
        # Spaces are sized, and option task ids looked up, over the whole suite: the train and test envs
        # of a suite have equal spaces (one policy serves both), and options may pick any of its tasks.
        self.full_suite = self.suite
        if split is not None:
            self.suite = self.suite.split(split)
        if sampler == "curriculum":
            examples = any(t.metadata.get("examples_only") is True for t in self.full_suite)
            sampler = CurriculumSampler(self.suite_name, split=split, examples_only=examples)
        elif isinstance(sampler, str):
            raise ValueError(
                f"{type(self).__name__}: sampler must be a TaskSampler or 'curriculum', got {sampler!r}"
            )
        elif sampler is None:
            sampler = UniformSampler(self.suite)
        elif not isinstance(sampler, TaskSampler):
            raise TypeError(
                f"{type(self).__name__}: sampler must be a TaskSampler, got {type(sampler).__name__}"
            )
        self.sampler: TaskSampler = sampler
        self._fixed_task: Task | None = self._lookup(task_id) if task_id is not None else None
        if reward_fn is None:
            from codegym.rewards import pass_fail

            reward_fn = pass_fail
        if not callable(reward_fn):
            raise TypeError(
                f"{type(self).__name__}: reward_fn must be callable (task, program, result) -> float, "
                f"got {type(reward_fn).__name__} {reward_fn!r:.80} (for a reward by name, pass "
                "codegym.rewards.get_reward(name))"
            )
        self.reward_fn: RewardFunction = reward_fn
        if executor is not None and not callable(getattr(executor, "run", None)):
            raise TypeError(
                f"{type(self).__name__}: executor must have run(task, program) -> ExecutionResult "
                f"(a codegym.Executor), got {type(executor).__name__}"
            )
        self._user_executor = executor
        self._owns_user_executor = False  # True only for an executor recreated on unpickling
        self._executor_kwargs = dict(executor_kwargs or {})
        if executor is None and self._executor_kwargs:
            from codegym import Executor

            # A misspelt or out-of-range argument fails here, not at the first step (nothing starts).
            Executor.check_arguments(**self._executor_kwargs)
        self._shared_executor: Any = None
        self.task: Task | None = None
        self._done = True
        self._started = False
        self.last_program: str | None = None
        self.last_result: ExecutionResult | None = None

    # ---- tasks -----------------------------------------------------------------------------------------

    @property
    def all_tasks(self) -> list[Task]:
        """Every task a reset can choose: the whole suite (every split) and the sampler's pool."""
        seen: dict[str, Task] = {t.task_id: t for t in self.full_suite}
        for t in self.sampler.tasks:
            seen.setdefault(t.task_id, t)
        return list(seen.values())

    def _lookup(self, task_id: str) -> Task:
        if not isinstance(task_id, str):
            raise TypeError(f"{type(self).__name__}: task_id must be a str, got {task_id!r:.80}")
        if task_id in self.full_suite:
            return self.full_suite.get(task_id)
        for task in self.sampler.tasks:
            if task.task_id == task_id:
                return task
        return self.full_suite.get(task_id)  # raises KeyError naming close matches

    def _choose_task(self, options: Mapping[str, Any] | None) -> Task:
        if options:
            unknown = set(options) - {"task_id"}
            if unknown:
                raise ValueError(
                    f"{type(self).__name__}.reset: unknown options {sorted(unknown)}; known: ['task_id']"
                )
            if options.get("task_id") is not None:
                return self._lookup(options["task_id"])
        if self._fixed_task is not None:
            return self._fixed_task
        return self.sampler.sample(self.np_random)

    def _begin_episode(self, seed: int | None, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """Seed, choose the task and reset the episode flags; return the reset info."""
        super().reset(seed=seed)
        self.task = self._choose_task(options)
        self._done = False
        self._started = True
        self.last_program = None
        self.last_result = None
        info: dict[str, Any] = {"task_id": self.task.task_id, "difficulty": self.task.difficulty}
        info.update(self.sampler.state())
        return info

    def _check_running(self) -> Task:
        if self._done or self.task is None:
            what = "the episode is over" if self._started else "reset() was not called"
            raise RuntimeError(f"{type(self).__name__}.step: {what}; call reset() before step()")
        return self.task

    # ---- execution -------------------------------------------------------------------------------------

    @property
    def executor(self) -> Any:
        """The executor this environment runs programs with (acquired on first use)."""
        if self._user_executor is not None:
            return self._user_executor
        if self._shared_executor is None:
            self._shared_executor = acquire_executor(self._executor_kwargs)
        return self._shared_executor

    def _execute(self, program: str) -> ExecutionResult:
        assert self.task is not None
        return self.executor.run(self.task, program)

    def _score(self, program: str, result: ExecutionResult) -> tuple[float, dict[str, Any]]:
        """Score an executed program; return the reward and the info keys every executing step carries."""
        task = self.task
        assert task is not None
        reward, components = reward_breakdown(self.reward_fn, task, program, result)
        self.sampler.update(task, result.passed)
        self.last_program = program
        self.last_result = result
        info: dict[str, Any] = {
            "task_id": task.task_id,
            "result": result,
            "status": result.status,
            "passed": result.passed,
            "pass_rate": result.pass_rate,
            "num_tests": len(result.tests),
            "num_passed": result.num_passed,
            "feedback": result.feedback,
            "reward_components": components,
        }
        return reward, info

    def step(self, action: ActT) -> tuple[ObsT, float, bool, bool, dict[str, Any]]:
        """Apply ``action``; execute the program when the step ends an attempt.

        Args:
            action: An element of ``action_space`` (a program for program envs, a token id for token envs).

        Returns:
            Gymnasium's five-tuple ``(observation, reward, terminated, truncated, info)``; ``info`` of an
            executing step holds the task id, the :class:`ExecutionResult` summary and
            ``reward_components`` (see docs/envs.md).

        Raises:
            RuntimeError: before ``reset()`` or after the episode ended.
            TypeError, ValueError: for an action outside the action space (naming the value).
        """
        program = self._prepare(action)
        result = None if program is None else self._execute(program)
        return self._conclude(result)

    def _prepare(self, action: ActT) -> str | None:
        raise NotImplementedError

    def _conclude(self, result: ExecutionResult | None) -> tuple[ObsT, float, bool, bool, dict[str, Any]]:
        raise NotImplementedError

    # ---- rendering, closing, pickling ------------------------------------------------------------------

    def _render_program(self) -> str:
        return self.last_program or ""

    def render(self) -> str | None:  # type: ignore[override]
        """With ``render_mode="ansi"``, return the prompt, the program so far and the last verdict."""
        if self.render_mode is None:
            gym.logger.warn(
                f"{type(self).__name__}.render() called without render_mode; pass render_mode='ansi'"
            )
            return None
        if self.task is None:
            return "(no task yet: call reset())\n"
        lines = [
            f"== task {self.task.task_id} (difficulty {self.task.difficulty})",
            self.task.prompt.rstrip(),
        ]
        lines += ["== program", self._render_program().rstrip() or "(empty)"]
        if self.last_result is None:
            lines.append("== verdict: (not executed yet)")
        else:
            r = self.last_result
            lines.append(f"== verdict: {r.status} ({r.num_passed}/{len(r.tests)} tests)")
            if r.feedback:
                lines.append(r.feedback.rstrip())
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        """Release the shared executor (an executor passed in by the user is left open)."""
        if self._owns_user_executor and self._user_executor is not None:
            self._user_executor.close()
            self._user_executor = None
        if self._shared_executor is not None:
            self._shared_executor = None
            release_executor(self._executor_kwargs)
        super().close()

    def __del__(self) -> None:
        try:
            if getattr(self, "_shared_executor", None) is not None:
                self.close()
        except Exception:  # interpreter shutdown: the executor cleans up after itself
            pass

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # Live executors hold processes and pipes. The copy acquires its own shared one on first use; a
        # codegym.Executor passed by the user travels as its configuration (Executor pickles no process)
        # and the copy owns and closes the new one. Other executor objects are dropped.
        state["_shared_executor"] = None
        user = state["_user_executor"]
        state["_user_executor"] = user if _picklable_executor(user) else None
        state["_owns_user_executor"] = state["_user_executor"] is not None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def _picklable_executor(executor: Any) -> bool:
    """True for a :class:`codegym.Executor` on a named backend (it pickles its configuration only)."""
    if executor is None:
        return False
    from codegym.execution.executor import Executor

    return isinstance(executor, Executor) and isinstance(getattr(executor, "_backend_spec", None), str)


def max_length(items: Sequence[int], *, default: int = 1) -> int:
    """The largest of ``items`` (at least ``default``)."""
    return max([default, *items])
