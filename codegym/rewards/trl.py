"""An adapter that lets Hugging Face TRL trainers (GRPOTrainer, RLOOTrainer, ...) score with CodeGym.

TRL calls every reward function as ``f(prompts=..., completions=..., **columns)`` where ``columns`` are
the dataset's other columns (one value per completion) plus trainer extras such as ``trainer_state``,
and expects ``list[float | None]`` back (``None``: this reward does not apply to that sample). TRL does
not import CodeGym and CodeGym does not import TRL: the adapter only follows that signature.

Example::

    from trl import GRPOConfig, GRPOTrainer
    from codegym.rewards import trl_reward_func, rltf_adaptive

    suite = codegym.load_suite("humaneval")
    dataset = Dataset.from_list([{"prompt": t.prompt, "task_id": t.task_id} for t in suite])
    reward = trl_reward_func(suite, rltf_adaptive)            # looks tasks up by the task_id column
    trainer = GRPOTrainer(model=..., reward_funcs=[reward], train_dataset=dataset, args=GRPOConfig(...))
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from codegym.execution.result import ExecutionResult
from codegym.rewards.base import RewardFunction, reward_breakdown, reward_name
from codegym.rewards.outcome import pass_fail
from codegym.rewards.terms import extract_code, format_checks
from codegym.tasks import Task

ProgramMode = Literal["auto", "completion", "prompt+completion"]


def completion_text(completion: Any) -> str:
    """The text of one TRL completion: a string, or the last message's ``content`` in chat format."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], Mapping):
        content = completion[-1].get("content", "")
        if isinstance(content, str):
            return content
        # multimodal content: a list of {"type": "text", "text": ...} parts
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    if isinstance(completion, Mapping) and "content" in completion:
        return str(completion["content"])
    raise TypeError(f"a completion must be a string or a list of chat messages, got {completion!r:.80}")


def build_program(task: Task, completion: str, mode: ProgramMode = "auto") -> str:
    """Turn a completion into a full program for ``task``.

    Markdown fences are stripped first (:func:`~codegym.rewards.terms.extract_code`). ``"completion"``
    uses the code as the whole program; ``"prompt+completion"`` appends it to ``task.prompt`` (HumanEval
    style: the completion is the function body); ``"auto"`` uses the code alone when it already defines
    the entry point (or the task has none), and ``task.prompt + code`` otherwise.
    """
    code = extract_code(completion)
    if mode == "completion":
        return code
    if mode == "prompt+completion":
        return task.prompt + code
    if mode != "auto":
        raise ValueError(f"program mode must be 'auto', 'completion' or 'prompt+completion', got {mode!r}")
    checks = format_checks(task, code)
    if not task.entry_point or (checks["parses"] and checks["defines_entry_point"]):
        return code
    return task.prompt + code


class TRLRewardFunc:
    """A CodeGym reward with TRL's reward-function signature; build it with :func:`trl_reward_func`.

    Attributes:
        reward: The CodeGym reward applied to each (task, program, result).
        last_components: The named breakdown of every sample of the last call (for logging).
    """

    def __init__(
        self,
        tasks: Any,
        reward: RewardFunction,
        executor: Any,
        task_column: str,
        program: ProgramMode,
        on_missing: Literal["error", "none"],
        name: str | None,
    ) -> None:
        if on_missing not in ("error", "none"):
            raise ValueError(f"on_missing must be 'error' or 'none', got {on_missing!r}")
        if program not in ("auto", "completion", "prompt+completion"):
            raise ValueError(f"program must be 'auto', 'completion' or 'prompt+completion', got {program!r}")
        if not callable(reward):
            raise TypeError(
                f"trl_reward_func: reward must be callable (task, program, result), got {reward!r:.80}"
            )
        self.tasks = _task_index(tasks)
        self.reward = reward
        self.task_column = task_column
        self.program = program
        self.on_missing = on_missing
        self.__name__ = name or f"codegym_{reward_name(reward)}"
        self._executor = executor
        self._owns_executor = executor is None
        self._lock = threading.Lock()
        self.last_components: list[dict[str, float] | None] = []

    @property
    def executor(self) -> Any:
        """The executor used (created on first use when none was given)."""
        with self._lock:
            if self._executor is None:
                from codegym.execution.executor import Executor

                self._executor = Executor()
            return self._executor

    def close(self) -> None:
        """Close the executor if this adapter created it."""
        if self._owns_executor and self._executor is not None:
            self._executor.close()
            self._executor = None

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        """Score a batch; the task of sample i is ``kwargs[task_column][i]``."""
        if self.task_column not in kwargs:
            raise KeyError(
                f"{self.__name__}: no {self.task_column!r} column among the reward kwargs "
                f"({', '.join(sorted(kwargs)) or 'none'}); add the task id column to the dataset"
            )
        ids = kwargs[self.task_column]
        if len(ids) != len(completions):
            raise ValueError(
                f"{self.__name__}: {len(completions)} completions but {len(ids)} values "
                f"in column {self.task_column!r}"
            )
        jobs: list[tuple[Task, str]] = []
        where: list[int | None] = []
        for task_id, completion in zip(ids, completions):
            task = self.tasks.get(str(task_id))
            if task is None:
                if self.on_missing == "error":
                    raise KeyError(
                        f"{self.__name__}: unknown task id {task_id!r} in column {self.task_column!r}"
                    )
                where.append(None)
                continue
            where.append(len(jobs))
            jobs.append((task, build_program(task, completion_text(completion), self.program)))
        results: list[ExecutionResult] = list(self.executor.run_batch(jobs)) if jobs else []
        rewards: list[float | None] = []
        self.last_components = []
        for index in where:
            if index is None:
                rewards.append(None)
                self.last_components.append(None)
                continue
            task, program = jobs[index]
            total, parts = reward_breakdown(self.reward, task, program, results[index])
            rewards.append(total)
            self.last_components.append(parts)
        return rewards

    def __repr__(self) -> str:
        return f"TRLRewardFunc({self.__name__}, {len(self.tasks)} tasks, column={self.task_column!r})"


def _task_index(tasks: Any) -> dict[str, Task]:
    if isinstance(tasks, str):
        from codegym.suites import load_suite

        tasks = load_suite(tasks)
    if isinstance(tasks, Task):
        tasks = [tasks]
    if isinstance(tasks, Mapping):
        return {str(k): v for k, v in tasks.items()}
    if not isinstance(tasks, Iterable):
        raise TypeError(f"trl_reward_func needs Tasks, a TaskSuite or a suite name, got {tasks!r:.80}")
    index: dict[str, Task] = {}
    for task in tasks:
        if not isinstance(task, Task):
            raise TypeError(f"trl_reward_func needs Tasks, a TaskSuite or a suite name, got {task!r:.80}")
        index[task.task_id] = task
    return index


def trl_reward_func(
    tasks: Any,
    reward: RewardFunction = pass_fail,
    *,
    executor: Any = None,
    task_column: str = "task_id",
    program: ProgramMode = "auto",
    on_missing: Literal["error", "none"] = "error",
    name: str | None = None,
) -> TRLRewardFunc:
    """Wrap a CodeGym reward as a TRL reward function ``f(prompts, completions, **kwargs)``.

    The function returns ``list[float | None]``, one entry per completion.

    Every call executes the whole batch at once through ``executor.run_batch`` (GRPO groups repeat
    programs; the executor's cache answers the repeats), then applies ``reward`` to each result.

    Args:
        tasks: A :class:`~codegym.tasks.TaskSuite`, a sequence of tasks, a ``{task_id: Task}`` mapping, or
            a registered suite name.
        reward: Any CodeGym reward function or composite (default :func:`pass_fail`).
        executor: A :class:`codegym.Executor` (or anything with ``run_batch``); one is created on first
            use when omitted (close it with ``.close()``).
        task_column: The dataset column that holds each sample's task id.
        program: How a completion becomes a program (see :func:`build_program`).
        on_missing: For a task id not in ``tasks``: ``"error"`` raises ``KeyError``; ``"none"`` returns
            ``None`` for that sample, TRL's "not applicable".
        name: The function's ``__name__`` (TRL logs rewards under it); default ``codegym_<reward>``.

    Returns:
        A callable :class:`TRLRewardFunc`.
    """
    return TRLRewardFunc(tasks, reward, executor, task_column, program, on_missing, name)
