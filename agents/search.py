"""Best-of-n reranking: visible tests, a learned verifier, and LEVER's aggregation.

A policy samples ``n`` programs per task; a reranker picks one of them without looking at the hidden
tests; the chosen program's verdict on the hidden tests is what counts. Three rerankers:

* ``visible-tests``: run every sample on the task's visible examples only (``task.visible_tests``, the
  examples of the prompt: a copy of the task whose tests are those, through the same executor), score =
  the share of them it passes. Ties (common: most right programs pass every example) go to the highest
  *mean* token log-prob, the ranking that Chen et al. 2021 (Codex, sec. 3.3) found best among the LM's
  own scores (the summed log-prob prefers short programs), then to the earliest sample.
* ``verifier``: score = ``p(correct | prompt, program, visible-test result)`` from a :class:`Verifier`
  trained by :func:`train_verifier` (``codegym train-verifier``) on the policy's own samples of the *train*
  split, labelled by their hidden tests; ties as above.
* ``lever`` (Ni et al. 2023, LEVER): group the samples by their execution result on the visible inputs
  (:func:`execution_signature`), score a group by ``sum over its distinct programs of p_LM(program |
  prompt) * p_verifier(correct | ...)`` (:func:`lever_scores`), and pick the most likely program
  (largest product) of the best group.

**The verifier** is a logistic regression over features of each sample (:func:`candidate_features`): the
policy's final hidden state mean-pooled over the program's tokens (each has read the prompt before it:
on hand-built arith programs this pooling separated right from wrong ones better than pooling over the
prompt too, AUC 0.77 against 0.67 from the hidden state alone), the LM's mean token log-prob, and the
visible-test result (one-hot status, pass rate). LEVER fine-tunes a separate LM (T5/RoBERTa) as the
verifier; here the policy itself reads the program in one extra forward, so the verifier is a few hundred
weights that train in well under a second on a CPU from a few hundred labelled samples, need no second
model, and cannot be run on the wrong tokenizer. A linear head on frozen features is also hard to overfit
with so few labels, and its probability is roughly calibrated, which matters because LEVER multiplies it.

**The LM probability** of a program is the policy's probability of its text (in the tokenizer's own
segmentation) followed by EOS, at temperature 1, from the same forward that gives the hidden states: the
model's probability, not the tempered sampling distribution's, so a program scores the same whatever
temperature sampled it. LEVER multiplies the *sequence* probability (``lm_prob="sequence"``, the default):
summed over a group's distinct programs it estimates the model's probability of that execution result,
which a length-normalised probability (``lm_prob="mean"``: exp of the mean token log-prob) does not.
A program sampled twice counts once (its probability already says how often it is sampled).

Typical use::

    from codegym.agents import rerank_evaluate, train_verifier
    verifier, training = train_verifier("default", "arith", n=8)              # train split only
    report = rerank_evaluate("default", "arith", methods=("visible-tests", "lever"), n=8, verifier=verifier)
    print(report.to_markdown())

or ``codegym train-verifier ... --out DIR`` and ``codegym eval --rerank lever --verifier DIR -n 8``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from codegym.agents import evaluation as ev

from codegym.execution.result import STATUSES, ExecutionResult
from codegym.tasks import Task, TaskSuite

if TYPE_CHECKING:
    from codegym.agents.policy import LMPolicy

    from codegym.execution.executor import Executor

__all__ = [
    "LM_PROBS",
    "METHODS",
    "Candidate",
    "RerankReport",
    "RerankRow",
    "Verifier",
    "VerifierTraining",
    "add_parser",
    "candidate_features",
    "execution_signature",
    "lever_scores",
    "lever_select",
    "make_candidates",
    "policy_features",
    "rerank_evaluate",
    "roc_auc",
    "select",
    "train_verifier",
    "visible_task",
]

METHODS: tuple[str, ...] = ("visible-tests", "verifier", "lever")
"""The rerankers (``codegym eval --rerank`` also takes ``none``: plain evaluation)."""

LM_PROBS: tuple[str, ...] = ("sequence", "mean")
"""How LEVER turns log-probs into ``p_LM``: exp of the summed (LEVER's) or of the mean token log-prob."""

EXEC_FEATURES: tuple[str, ...] = (
    *(f"visible_status={status}" for status in STATUSES),
    "visible_pass_rate",
    "no_visible_tests",
    "mean_token_logprob",
)
"""The verifier's features after the hidden state, in order (see :func:`candidate_features`)."""

HIDDEN_POOLING = "mean of the policy's final hidden state over the program's tokens and EOS"
"""How the hidden-state part of the verifier's features is pooled."""

_VERIFIER_JSON = "verifier.json"
_VERIFIER_WEIGHTS = "verifier.safetensors"
_FORMAT = "codegym-verifier"
_L2_GRID: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)


# ---------------------------------------------------------------------------------------------------------
# Candidates: a sampled program with everything a reranker may look at


@dataclass
class Candidate:
    """One sampled program of a task, with what a reranker may look at and the verdict that counts.

    Attributes:
        program: The program, as submitted.
        logprob: ``log p_LM(program + EOS | prompt)`` at temperature 1 (0.0 without a language model).
        num_tokens: Tokens of the program plus its EOS (0 without a language model).
        visible: Its result on the visible examples only (None when the task has none).
        hidden_state: The policy's pooled final hidden state (:data:`HIDDEN_POOLING`), or None.
        result: Its result on the hidden tests: what counts, and what no reranker looks at.
    """

    program: str
    logprob: float = 0.0
    num_tokens: int = 0
    visible: ExecutionResult | None = None
    hidden_state: np.ndarray | None = field(default=None, repr=False)
    result: ExecutionResult | None = None

    @property
    def mean_logprob(self) -> float:
        """The mean token log-prob (0.0 without a language model)."""
        return self.logprob / self.num_tokens if self.num_tokens else 0.0

    @property
    def visible_pass_rate(self) -> float:
        """Share of the visible examples passed (0.0 when there are none)."""
        return self.visible.pass_rate if self.visible is not None else 0.0

    @property
    def passed(self) -> bool:
        """Whether the program passed every hidden test (False when it was not run)."""
        return self.result is not None and self.result.passed


def visible_task(task: Task) -> Task | None:
    """A copy of ``task`` whose tests are its visible examples (None when it has none).

    Running a program on this copy tells a reranker what running the prompt's examples would: the hidden
    tests are not in it, so nothing about them (not even a timeout in one of them) leaks into the result.
    """
    if not task.visible_tests:
        return None
    return dataclasses.replace(task, tests=task.visible_tests, visible_tests=())


def execution_signature(candidate: Candidate) -> Hashable:
    """The execution result of a program on the visible inputs, as a hashable key (LEVER's grouping).

    Two programs share a signature when their visible run ended with the same status and every example
    ended the same way: passed, or the same wrong value (``expected ..., got ...``, values shortened past a
    few hundred characters), or the same exception text. A syntax error is one group. Without visible
    examples every program has the same signature, and LEVER reduces to ranking by ``p_LM * p_verifier``.
    """
    if candidate.visible is None:
        return ("no_visible_tests",)
    return (candidate.visible.status, tuple((t.status, t.message) for t in candidate.visible.tests))


def policy_features(
    policy: LMPolicy, prompts: Sequence[str], programs: Sequence[str], *, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled hidden states and log-probs of programs under the policy, in one forward per batch.

    Each row is ``prompt`` (as :meth:`LMPolicy.encode_prompt` encodes it) followed by the program's tokens
    and EOS, right padded (a causal model's real tokens never see the padding after them). A row longer
    than the model's context loses its prompt's first tokens (and, if that is not enough, its last ones).

    Args:
        policy: The policy.
        prompts: One prompt per program.
        programs: The programs.
        batch_size: Rows per forward.

    Returns:
        ``(hidden [N, hidden_size] float32, logprob [N] float64, num_tokens [N] int64)``: the final hidden
        state averaged over the program's tokens and EOS, ``log p(program + EOS | prompt)`` at temperature
        1, and the number of program tokens plus EOS.

    Raises:
        ValueError: for mismatched lengths.
    """
    import torch

    if len(prompts) != len(programs):
        raise ValueError(f"policy_features: {len(prompts)} prompts for {len(programs)} programs")
    hidden_size = _policy_hidden_size(policy)
    rows: list[tuple[list[int], list[int]]] = []
    for prompt, program in zip(prompts, programs):
        head = policy.encode_prompt(prompt)
        tail = [*policy.tokenizer(program, add_special_tokens=False)["input_ids"], policy.eos_token_id]
        overflow = len(head) + len(tail) - policy.context_length
        if overflow > 0:
            # The model cannot read it all: drop the prompt's first tokens (keeping one, which predicts
            # the program's first token), then, if still too long, the program's last ones.
            cut = min(overflow, len(head) - 1)
            head = head[cut:]
            tail = tail[: policy.context_length - len(head)]
        rows.append((head, tail))
    hidden = np.zeros((len(rows), hidden_size), dtype=np.float32)
    logprob = np.zeros(len(rows), dtype=np.float64)
    num_tokens = np.array([len(tail) for _, tail in rows], dtype=np.int64)
    # Rows of similar length share a batch: less padding.
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]) + len(rows[i][1]))
    device = policy.device
    was_training = policy.model.training
    policy.model.eval()
    try:
        for start in range(0, len(order), max(1, batch_size)):
            chunk = order[start : start + max(1, batch_size)]
            width = max(len(rows[i][0]) + len(rows[i][1]) for i in chunk)
            ids = torch.full((len(chunk), width), policy.pad_token_id, dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.bool)
            scored = torch.zeros((len(chunk), width), dtype=torch.bool)  # the program's tokens and EOS
            for r, i in enumerate(chunk):
                head, tail = rows[i]
                ids[r, : len(head) + len(tail)] = torch.tensor(head + tail, dtype=torch.long)
                attention[r, : len(head) + len(tail)] = True
                scored[r, len(head) : len(head) + len(tail)] = True
            ids, attention, scored = ids.to(device), attention.to(device), scored.to(device)
            positions = torch.arange(width, device=device).expand(len(chunk), width)
            with policy._forward_mode(), torch.no_grad():
                logits, _, last = policy._forward(ids, attention, positions, hidden=True)
            assert last is not None
            # Token t is predicted by the logits at t - 1 (a prompt has at least one token: BOS or text).
            log_dist = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            token_logprobs = log_dist.gather(-1, ids[:, 1:, None]).squeeze(-1)
            sums = (token_logprobs * scored[:, 1:]).sum(-1).double()
            weights = scored[..., None].float()  # the program's tokens (they attend to the prompt's)
            pooled = (last.float() * weights).sum(1) / weights.sum(1)
            hidden[chunk] = pooled.cpu().numpy()
            logprob[chunk] = sums.cpu().numpy()
    finally:
        policy.model.train(was_training)
    return hidden, logprob, num_tokens


def make_candidates(
    tasks: Sequence[Task],
    programs: Sequence[Sequence[str]],
    *,
    executor: Executor,
    policy: LMPolicy | None = None,
    batch_size: int = 64,
) -> list[list[Candidate]]:
    """Judge programs on the hidden tests and on the visible examples, and score them with the policy.

    Args:
        tasks: The tasks.
        programs: For each task, its programs (any number, none included).
        executor: The sandbox: one :meth:`~codegym.Executor.run_batch` holds every hidden and visible run.
        policy: The policy whose log-probs and hidden states the candidates carry; None: neither (enough
            for ``visible-tests``, which then breaks ties by sample order).
        batch_size: Rows per forward of the policy.

    Returns:
        For each task, one :class:`Candidate` per program, in order.

    Raises:
        ValueError: if ``programs`` does not have one list per task.
    """
    if len(programs) != len(tasks):
        raise ValueError(f"make_candidates: {len(programs)} program lists for {len(tasks)} tasks")
    visible_tasks = [visible_task(task) for task in tasks]
    pairs: list[tuple[Task, str]] = []
    for task, shown, group in zip(tasks, visible_tasks, programs):
        for program in group:
            pairs.append((task, program))
            if shown is not None:
                pairs.append((shown, program))
    results = iter(executor.run_batch(pairs))
    out: list[list[Candidate]] = []
    for shown, group in zip(visible_tasks, programs):
        row = []
        for program in group:
            result = next(results)
            row.append(
                Candidate(program, result=result, visible=next(results) if shown is not None else None)
            )
        out.append(row)
    if policy is not None:
        _attach_features(policy, tasks, out, batch_size)
    return out


def _attach_features(
    policy: LMPolicy, tasks: Sequence[Task], rows: Sequence[Sequence[Candidate]], batch_size: int
) -> None:
    """Fill in the log-probs, token counts and hidden states of the candidates (one row per task)."""
    flat = [(task, c) for task, row in zip(tasks, rows) for c in row]
    if not flat:
        return
    hidden, logprob, num_tokens = policy_features(
        policy, [t.prompt for t, _ in flat], [c.program for _, c in flat], batch_size=batch_size
    )
    for i, (_, candidate) in enumerate(flat):
        candidate.hidden_state = hidden[i]
        candidate.logprob, candidate.num_tokens = float(logprob[i]), int(num_tokens[i])


def candidate_features(candidates: Sequence[Candidate]) -> np.ndarray:
    """The verifier's feature rows: the pooled hidden state, then :data:`EXEC_FEATURES`.

    Raises:
        ValueError: for a candidate without a hidden state (made without a policy), or hidden states of
            different sizes.
    """
    rows = []
    for i, candidate in enumerate(candidates):
        if candidate.hidden_state is None:
            raise ValueError(
                f"candidate_features: candidate {i} has no hidden state; the verifier needs candidates made "
                "with a policy (make_candidates(..., policy=...))"
            )
        status = np.zeros(len(STATUSES), dtype=np.float32)
        if candidate.visible is not None:
            status[STATUSES.index(candidate.visible.status)] = 1.0
        extra = [candidate.visible_pass_rate, float(candidate.visible is None), candidate.mean_logprob]
        rows.append(np.concatenate([candidate.hidden_state.astype(np.float32), status, extra]))
    if not rows:
        return np.zeros((0, len(EXEC_FEATURES)), dtype=np.float32)
    if len({len(r) for r in rows}) > 1:
        raise ValueError("candidate_features: the candidates' hidden states differ in size")
    return np.stack(rows).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# The verifier


def roc_auc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random positive outscores a random negative (ties half).

    Returns:
        The AUC, or NaN when one class is absent (it is undefined then).
    """
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    # Mann-Whitney U from average ranks (ties share their mean rank).
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


class Verifier:
    """``p(correct | prompt, program, visible-test result)``: logistic regression on standardised features.

    Build one with :meth:`fit` (or :func:`train_verifier`, which samples and labels the data), keep it with
    :meth:`save` and :meth:`load`. Inference is numpy only.

    Args:
        weight: ``[features]`` coefficients on the standardised features.
        bias: The intercept.
        mean: ``[features]`` feature means of the training data.
        std: ``[features]`` their standard deviations (at least 1e-6).
        info: What the verifier was trained on and how (saved as JSON beside the weights).

    Raises:
        ValueError: if the arrays disagree in size.
    """

    def __init__(
        self,
        weight: np.ndarray,
        bias: float,
        mean: np.ndarray,
        std: np.ndarray,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.weight = np.asarray(weight, dtype=np.float64).reshape(-1)
        self.bias = float(bias)
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(std, dtype=np.float64).reshape(-1)
        if not len(self.weight) == len(self.mean) == len(self.std):
            raise ValueError(
                f"Verifier: weight, mean and std must have one entry per feature, got {len(self.weight)}, "
                f"{len(self.mean)}, {len(self.std)}"
            )
        self.info: dict[str, Any] = dict(info or {})

    @property
    def num_features(self) -> int:
        """Features per sample."""
        return len(self.weight)

    @property
    def hidden_size(self) -> int:
        """The hidden size of the policy whose states it reads."""
        return self.num_features - len(EXEC_FEATURES)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """``p(correct)`` for each feature row (``[N, features]`` -> ``[N]`` float64).

        Raises:
            ValueError: for rows of another width (naming both).
        """
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValueError(
                f"Verifier: expected [N, {self.num_features}] features (hidden size {self.hidden_size} + "
                f"{len(EXEC_FEATURES)}), got shape {x.shape}"
            )
        logits = ((x - self.mean) / self.std) @ self.weight + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -60.0, 60.0)))

    def score(self, candidates: Sequence[Candidate]) -> np.ndarray:
        """``p(correct)`` of each candidate (see :func:`candidate_features`)."""
        return self.predict_proba(candidate_features(candidates))

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        labels: Sequence[int] | np.ndarray,
        *,
        l2: float = 0.01,
        info: Mapping[str, Any] | None = None,
    ) -> Verifier:
        """Fit the logistic regression with a class-balanced loss (each class weighs half) and an L2 penalty.

        Full-batch L-BFGS in float64 from zero weights: the loss is convex, so the fit is deterministic and
        needs no seed.

        Args:
            features: ``[N, features]`` rows (:func:`candidate_features`).
            labels: 1 for a program that passed its hidden tests, else 0.
            l2: The penalty ``l2 / 2 * ||weight||^2`` (on standardised features; the intercept is free).
            info: Recorded with the verifier.

        Raises:
            ValueError: for mismatched sizes, no rows, or labels of one class only.
        """
        import torch

        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(labels).astype(np.float64).reshape(-1)
        if x.ndim != 2 or len(x) != len(y) or len(y) == 0:
            raise ValueError(f"Verifier.fit: need [N, F] features and N labels, got {x.shape} and {y.shape}")
        positives = int(y.sum())
        if positives in (0, len(y)):
            kind = "passing" if positives else "failing"
            raise ValueError(
                f"Verifier.fit: all {len(y)} samples are {kind}; a verifier needs both passing and failing "
                "programs (sample more per task, or use tasks the policy solves sometimes)"
            )
        if not (isinstance(l2, (int, float)) and math.isfinite(l2) and l2 >= 0):
            raise ValueError(f"Verifier.fit: l2 must be a finite number >= 0, got {l2!r}")
        mean = x.mean(0)
        std = np.maximum(x.std(0), 1e-6)
        xt = torch.tensor((x - mean) / std, dtype=torch.float64)
        yt = torch.tensor(y, dtype=torch.float64)
        sample_weight = torch.where(yt > 0.5, 0.5 / positives, 0.5 / (len(y) - positives))
        weight = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [weight, bias], lr=1.0, max_iter=500, tolerance_grad=1e-10, tolerance_change=1e-12,
            line_search_fn="strong_wolfe",
        )  # fmt: skip

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            logits = xt @ weight + bias
            loss = (sample_weight * torch.nn.functional.binary_cross_entropy_with_logits(
                logits, yt, reduction="none"
            )).sum() + 0.5 * l2 * (weight**2).sum()  # fmt: skip
            loss.backward()
            return loss

        optimizer.step(closure)
        return cls(
            weight.detach().numpy(), float(bias.detach()[0]), mean, std, {**dict(info or {}), "l2": l2}
        )

    def save(self, path: str | Path) -> Path:
        """Write ``verifier.safetensors`` (weights, feature means, stds) and ``verifier.json`` into ``path``.

        Returns:
            The directory.
        """
        from safetensors.numpy import save_file

        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        save_file(
            {
                "weight": self.weight,
                "bias": np.array([self.bias]),
                "mean": self.mean,
                "std": self.std,
            },
            str(out / _VERIFIER_WEIGHTS),
        )
        meta = {
            "format": _FORMAT,
            "version": 1,
            "kind": "logistic_regression",
            "features": {
                "hidden": {"size": self.hidden_size, "pooling": HIDDEN_POOLING},
                "exec": list(EXEC_FEATURES),
            },
            **self.info,
        }
        (out / _VERIFIER_JSON).write_text(json.dumps(meta, indent=2) + "\n")
        return out

    @classmethod
    def load(cls, path: str | Path) -> Verifier:
        """Read a verifier written by :meth:`save`.

        Raises:
            FileNotFoundError: if ``path`` has no ``verifier.json`` or ``verifier.safetensors``.
            ValueError: for another file format or a feature spec this version does not compute.
        """
        from safetensors.numpy import load_file

        source = Path(path)
        for name in (_VERIFIER_JSON, _VERIFIER_WEIGHTS):
            if not (source / name).is_file():
                raise FileNotFoundError(
                    f"Verifier.load: {source / name} not found (make a verifier with `codegym train-verifier "
                    "--out DIR`)"
                )
        meta = json.loads((source / _VERIFIER_JSON).read_text())
        if meta.get("format") != _FORMAT:
            raise ValueError(f"Verifier.load: {source / _VERIFIER_JSON} is not a {_FORMAT} file")
        features = meta.get("features", {})
        if (
            list(features.get("exec", [])) != list(EXEC_FEATURES)
            or features.get("hidden", {}).get("pooling") != HIDDEN_POOLING
        ):
            raise ValueError(
                f"Verifier.load: {source} was trained on features {meta.get('features')}, not the "
                f"{list(EXEC_FEATURES)} this version computes"
            )
        tensors = load_file(str(source / _VERIFIER_WEIGHTS))
        info = {k: v for k, v in meta.items() if k not in ("format", "version", "kind", "features")}
        return cls(tensors["weight"], float(tensors["bias"][0]), tensors["mean"], tensors["std"], info)


# ---------------------------------------------------------------------------------------------------------
# Choosing a program


def lever_scores(
    lm_logprobs: Sequence[float],
    verifier_probs: Sequence[float],
    signatures: Sequence[Hashable],
    programs: Sequence[str] | None = None,
) -> dict[Hashable, float]:
    """LEVER's score of each execution result: ``sum over its samples of p_LM * p_verifier``.

    Args:
        lm_logprobs: ``log p_LM`` of each sample (summed token log-probs for LEVER's sequence probability,
            or the mean token log-prob for the length-normalised one).
        verifier_probs: ``p_verifier(correct)`` of each sample, in [0, 1].
        signatures: Each sample's execution result (:func:`execution_signature`).
        programs: Each sample's text: a program that appears more than once counts once. None: every
            sample counts.

    Returns:
        ``{signature: score}`` in order of first appearance (computed in log space, then exponentiated).

    Raises:
        ValueError: for mismatched lengths or a verifier probability outside [0, 1].
    """
    logs = _lever_log_scores(lm_logprobs, verifier_probs, signatures, programs)
    return {signature: math.exp(value) for signature, (value, _) in logs.items()}


def lever_select(
    lm_logprobs: Sequence[float],
    verifier_probs: Sequence[float],
    signatures: Sequence[Hashable],
    programs: Sequence[str] | None = None,
) -> int:
    """The sample LEVER picks: of the best-scoring execution result, the one with the largest ``p_LM * p_v``.

    Ties go to the group, and then the sample, that appears first. Arguments as in :func:`lever_scores`.

    Raises:
        ValueError: for no samples, or as :func:`lever_scores`.
    """
    logs = _lever_log_scores(lm_logprobs, verifier_probs, signatures, programs)
    if not logs:
        raise ValueError("lever_select: no samples")
    best = max(logs.values(), key=lambda item: item[0])  # max keeps the first of equal scores
    return best[1]


def _lever_log_scores(
    lm_logprobs: Sequence[float],
    verifier_probs: Sequence[float],
    signatures: Sequence[Hashable],
    programs: Sequence[str] | None,
) -> dict[Hashable, tuple[float, int]]:
    """``{signature: (log score, index of its best sample)}``, in order of first appearance."""
    count = len(lm_logprobs)
    if len(verifier_probs) != count or len(signatures) != count or (programs and len(programs) != count):
        raise ValueError(
            f"lever_scores: {count} log-probs, {len(verifier_probs)} verifier probabilities, "
            f"{len(signatures)} signatures" + (f", {len(programs)} programs" if programs else "")
        )
    terms: dict[Hashable, list[float]] = {}
    best: dict[Hashable, tuple[float, int]] = {}
    seen: set[str] = set()
    for i in range(count):
        p = float(verifier_probs[i])
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"lever_scores: verifier probability {i} is {p!r}, outside [0, 1]")
        if programs is not None:
            if programs[i] in seen:
                continue
            seen.add(programs[i])
        term = float(lm_logprobs[i]) + (math.log(p) if p > 0 else -math.inf)
        terms.setdefault(signatures[i], []).append(term)
        if signatures[i] not in best or term > best[signatures[i]][0]:
            best[signatures[i]] = (term, i)
    return {sig: (_logsumexp(values), best[sig][1]) for sig, values in terms.items()}


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in values))


def select(
    candidates: Sequence[Candidate],
    method: str,
    *,
    verifier_probs: Sequence[float] | np.ndarray | None = None,
    lm_prob: str = "sequence",
) -> int:
    """The index of the candidate that ``method`` picks (see the module docs).

    Args:
        candidates: One task's samples.
        method: One of :data:`METHODS`.
        verifier_probs: ``p_verifier(correct)`` per candidate (``Verifier.score``), for verifier and lever.
        lm_prob: For lever: ``"sequence"`` (LEVER's) or ``"mean"`` (see :data:`LM_PROBS`).

    Raises:
        ValueError: for no candidates, an unknown method or lm_prob, or missing verifier probabilities.
    """
    if not candidates:
        raise ValueError("select: no candidates")
    if method not in METHODS:
        raise ValueError(f"select: method must be one of {', '.join(METHODS)}, got {method!r}")
    if lm_prob not in LM_PROBS:
        raise ValueError(f"select: lm_prob must be one of {', '.join(LM_PROBS)}, got {lm_prob!r}")
    if method != "visible-tests":
        if verifier_probs is None or len(verifier_probs) != len(candidates):
            raise ValueError(f"select: method {method!r} needs one verifier probability per candidate")
    if method == "lever":
        assert verifier_probs is not None
        logprobs = [c.logprob if lm_prob == "sequence" else c.mean_logprob for c in candidates]
        signatures = [execution_signature(c) for c in candidates]
        return lever_select(logprobs, verifier_probs, signatures, [c.program for c in candidates])
    scores = (
        [c.visible_pass_rate for c in candidates]
        if method == "visible-tests"
        else [float(p) for p in verifier_probs]  # type: ignore[union-attr]
    )
    # Highest score, then highest mean token log-prob, then the earliest sample.
    return max(range(len(candidates)), key=lambda i: (scores[i], candidates[i].mean_logprob, -i))


# ---------------------------------------------------------------------------------------------------------
# Sampling and judging n programs per task


def _check_methods(methods: str | Sequence[str]) -> list[str]:
    items = [methods] if isinstance(methods, str) else list(methods)
    unknown = [m for m in items if m not in METHODS]
    if not items or unknown:
        raise ValueError(
            f"rerank: methods must be one or more of {', '.join(METHODS)}, got {unknown or items!r}"
        )
    return list(dict.fromkeys(items))


def _check_sampling(
    caller: str, n: int, temperature: float, top_p: float, seed: int, limit: int | None, batch_size: int
) -> None:
    for name, value, low in (("n", n, 1), ("seed", seed, 0), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{caller}: {name} must be an int >= {low}, got {value!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"{caller}: limit must be an int >= 1 or None, got {limit!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(f"{caller}: temperature must be a number >= 0, got {temperature!r}")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(
            f"{caller}: temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}"
        )
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise ValueError(f"{caller}: top_p must be in (0, 1], got {top_p!r}")


@dataclass
class _Sampled:
    """The candidates of every task, with the source and the timings."""

    tasks: list[Task]
    candidates: dict[str, list[Candidate]]
    source: Any
    policy: Any
    notes: list[str]
    sampling_s: float = 0.0
    sandbox_s: float = 0.0
    scoring_s: float = 0.0


def _sample(
    source: Any,
    tasks: Sequence[Task],
    *,
    n: int,
    batch_size: int,
    executor: Executor,
    progress: bool,
    desc: str,
) -> _Sampled:
    """Sample ``n`` programs per task as :func:`~codegym.agents.evaluation.evaluate` does, and judge them.

    The same model, split, seed and batch size give the same programs as ``evaluate``, so the plain pass@1
    of a rerank report is the pass@1 that ``evaluate`` reports for them.
    """
    policy = getattr(source, "policy", None)
    notes: list[str] = []
    too_long = [t for t in tasks if source.budget(t) == 0]
    if too_long:
        notes.append(
            f"{len(too_long)} task(s) not run: the prompt fills the context of "
            f"{getattr(policy, 'context_length', '?')} tokens (counted as failures by every method), "
            f"e.g. {too_long[0].task_id}"
        )
    sampled = _Sampled(list(tasks), {t.task_id: [] for t in tasks}, source, policy, notes)
    batches = ev._batches(tasks, source, max(1, batch_size // n))
    bar = ev._progress_bar(len(tasks), desc, progress)
    if bar is not None and too_long:
        bar.update(len(too_long))
    try:
        for batch_index, batch in enumerate(batches):
            start = time.perf_counter()
            programs = source.programs(batch, batch_index)
            sampled.sampling_s += time.perf_counter() - start
            start = time.perf_counter()
            judged = make_candidates(
                batch, [programs[i * n : (i + 1) * n] for i in range(len(batch))], executor=executor
            )
            sampled.sandbox_s += time.perf_counter() - start
            if policy is not None:
                start = time.perf_counter()
                _attach_features(policy, batch, judged, batch_size)
                sampled.scoring_s += time.perf_counter() - start
            for task, row in zip(batch, judged):
                sampled.candidates[task.task_id] = row
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    return sampled


def _prompt_key(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _policy_hidden_size(policy: Any) -> int:
    config = policy.model.config
    for name in ("hidden_size", "n_embd", "d_model"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"policy_features: cannot tell the hidden size of {type(policy.model).__name__}")


def _policy_fingerprint(policy: Any) -> str:
    """A cheap fingerprint of the policy's weights: names, shapes and the first values of every tensor."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in policy.model.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}".encode())
        head = tensor.detach().reshape(-1)[:4096].to("cpu", torch.float32)
        digest.update(head.numpy().tobytes())
    return digest.hexdigest()[:16]


def _mean_interval(per_task: np.ndarray) -> tuple[float, float, float]:
    """Mean over tasks and its 95% interval (:data:`~codegym.agents.evaluation.CI_METHOD`), unclipped."""
    mean = float(per_task.mean()) if len(per_task) else 0.0
    if len(per_task) < 2:
        return mean, -math.inf, math.inf
    half = ev._Z95 * float(per_task.std(ddof=1)) / math.sqrt(len(per_task))
    return mean, mean - half, mean + half


def _clipped(low: float, high: float) -> tuple[float, float]:
    return max(0.0, low), min(1.0, high)


# ---------------------------------------------------------------------------------------------------------
# The report of rerank_evaluate


@dataclass
class RerankRow:
    """One task's line of a :class:`RerankReport`.

    Attributes:
        task_id: The task's id.
        num_samples: Programs sampled (``n``; 0 when its prompt did not fit the context).
        num_correct: How many passed every hidden test.
        chosen: For each method, the index of the sample it picked (-1 when there was none).
        chosen_passed: For each method, whether that sample passed the hidden tests.
        chosen_program: For each method, the program it picked ("" when there was none).
    """

    task_id: str
    num_samples: int
    num_correct: int
    chosen: dict[str, int]
    chosen_passed: dict[str, bool]
    chosen_program: dict[str, str]


@dataclass
class RerankReport:
    """The outcome of :func:`rerank_evaluate`: plain pass@1, pass@1 after each reranker, and pass@n.

    Plain pass@1 is the unbiased estimate from the same ``n`` samples (mean of ``c / n``), pass@n the
    share of tasks with at least one passing sample: the ceiling of any reranker. Intervals are the normal
    approximation over tasks (:data:`~codegym.agents.evaluation.CI_METHOD`); ``gain_ci`` is that interval of
    the per-task difference (reranked minus plain pass@1), paired over the same samples.

    Attributes:
        model: The model's name.
        suite: The suite's name.
        split: The split.
        n: Samples per task.
        methods: The rerankers, in order.
        num_tasks: Tasks evaluated.
        pass_at_1: Plain pass@1.
        pass_at_1_ci: Its 95% interval.
        pass_at_n: pass@n.
        pass_at_n_ci: Its 95% interval.
        reranked: pass@1 after each method's choice.
        reranked_ci: Their 95% intervals.
        gain_ci: 95% interval of each method's gain over plain pass@1 (paired, in [-1, 1]).
        status_counts: Hidden-test verdicts of all samples (every status, zeros included).
        tasks: One :class:`RerankRow` per task.
        temperature: Sampling temperature.
        top_p: Nucleus mass.
        max_new_tokens: Token budget of a completion (None for the baselines).
        seed: The seed of the sampling.
        suite_kwargs: Arguments the suite was built with.
        verifier: Where the verifier came from (None without one).
        lm_prob: LEVER's ``p_LM`` (:data:`LM_PROBS`).
        notes: What a reader must know (prompts that did not fit, a verifier from another policy, ...).
        sampling_s: Seconds sampling.
        sandbox_s: Seconds running hidden and visible tests.
        scoring_s: Seconds of the policy's scoring forward (log-probs and hidden states).
        total_s: Wall-clock seconds (loading the suite and the model not included).
    """

    model: str
    suite: str
    split: str
    n: int
    methods: list[str]
    num_tasks: int
    pass_at_1: float
    pass_at_1_ci: tuple[float, float]
    pass_at_n: float
    pass_at_n_ci: tuple[float, float]
    reranked: dict[str, float]
    reranked_ci: dict[str, tuple[float, float]]
    gain_ci: dict[str, tuple[float, float]]
    status_counts: dict[str, int]
    tasks: list[RerankRow]
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int | None = None
    seed: int = 0
    suite_kwargs: dict[str, Any] = field(default_factory=dict)
    verifier: str | None = None
    lm_prob: str = "sequence"
    notes: list[str] = field(default_factory=list)
    sampling_s: float = field(default=0.0, compare=False)
    sandbox_s: float = field(default=0.0, compare=False)
    scoring_s: float = field(default=0.0, compare=False)
    total_s: float = field(default=0.0, compare=False)

    def gain(self, method: str) -> float:
        """Reranked minus plain pass@1 for ``method``."""
        return self.reranked[method] - self.pass_at_1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples as lists)."""
        out = dataclasses.asdict(self)
        out["gain"] = {m: self.gain(m) for m in self.methods}
        out["ci_method"] = ev.CI_METHOD
        return out

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def to_markdown(self) -> str:
        """A Markdown table: plain pass@1, each reranked pass@1 and pass@n side by side, then the gains."""

        def cell(value: float, interval: tuple[float, float]) -> str:
            return f"{100 * value:.1f}% ({100 * interval[0]:.1f}-{100 * interval[1]:.1f})"

        heads = ["pass@1", *(f"{m} pass@1" for m in self.methods), f"pass@{self.n}"]
        cells = [
            cell(self.pass_at_1, self.pass_at_1_ci),
            *(cell(self.reranked[m], self.reranked_ci[m]) for m in self.methods),
            cell(self.pass_at_n, self.pass_at_n_ci),
        ]
        lines = [
            "| model | suite | split | tasks | n | " + " | ".join(heads) + " |",
            "|---|---|---|---:|---:|" + "---:|" * len(heads),
            f"| {self.model} | {self.suite} | {self.split} | {self.num_tasks} | {self.n} | "
            + " | ".join(cells)
            + " |",
            "",
        ]
        for m in self.methods:
            low, high = self.gain_ci[m]
            lines.append(
                f"{m}: {100 * self.gain(m):+.1f} points over pass@1 ({100 * low:+.1f} to {100 * high:+.1f}, "
                f"paired over tasks); {100 * (self.pass_at_n - self.reranked[m]):.1f} points below "
                f"pass@{self.n}"
            )
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------
# rerank_evaluate


def rerank_evaluate(
    model: LMPolicy | str | Path,
    suite: str | TaskSuite,
    *,
    methods: str | Sequence[str] = ("visible-tests",),
    split: str | None = "test",
    n: int = 8,
    verifier: Verifier | str | Path | None = None,
    lm_prob: str = "sequence",
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
) -> RerankReport:
    """Sample ``n`` programs per task, pick one per task with each reranker, report pass@1 before and after.

    The samples are those :func:`~codegym.agents.evaluation.evaluate` draws with the same arguments, and
    every method picks from the same samples, so the methods compare paired.

    Args:
        model: An :class:`~codegym.agents.policy.LMPolicy`, ``"default"`` or a path; or ``"reference"`` /
            ``"random"`` for ``visible-tests`` alone (no log-probs: ties go to the earliest sample).
        suite: A suite name or a :class:`TaskSuite`.
        methods: One or more of :data:`METHODS`.
        split: ``"test"``, ``"train"``, or None/``"all"``.
        n: Samples per task.
        verifier: A :class:`Verifier` or the directory of a saved one (needed by verifier and lever).
        lm_prob: LEVER's ``p_LM``: ``"sequence"`` (LEVER's) or ``"mean"`` (see the module docs).
        temperature: Sampling temperature.
        top_p: Nucleus sampling mass.
        max_new_tokens: Token budget (default as in ``evaluate``).
        suite_kwargs: Arguments of the suite.
        executor: The sandbox (left open); default: one made and closed here.
        batch_size: Programs per sampling batch and per scoring forward.
        seed: Seeds the sampling.
        limit: Only the first ``limit`` tasks of the split.
        progress: Show a progress bar on stderr.
        device: Where a model loaded here runs.

    Returns:
        The :class:`RerankReport`.

    Raises:
        ValueError: for an unknown method or lm_prob, verifier/lever without a verifier, a verifier for
            another hidden size, a baseline model with verifier/lever, bad sampling arguments, or an empty
            split.
        FileNotFoundError: for a verifier directory without a saved verifier.
        KeyError: for an unknown suite.
    """
    chosen_methods = _check_methods(methods)
    if lm_prob not in LM_PROBS:
        raise ValueError(f"rerank_evaluate: lm_prob must be one of {', '.join(LM_PROBS)}, got {lm_prob!r}")
    _check_sampling("rerank_evaluate", n, temperature, top_p, seed, limit, batch_size)
    needs_verifier = [m for m in chosen_methods if m != "visible-tests"]
    if needs_verifier and verifier is None:
        raise ValueError(
            f"rerank_evaluate: method {needs_verifier[0]!r} needs a verifier (verifier=..., or --verifier "
            "DIR from `codegym train-verifier`)"
        )
    if needs_verifier and isinstance(model, str) and model in ev.BASELINES:
        raise ValueError(
            f"rerank_evaluate: method {needs_verifier[0]!r} reads the policy's hidden states; model "
            f"{model!r} has none (only visible-tests reranks a baseline)"
        )
    verifier_name: str | None = None
    if isinstance(verifier, (str, Path)):
        verifier_name, verifier = str(verifier), Verifier.load(verifier)
    elif verifier is not None:
        info = verifier.info
        verifier_name = f"a Verifier trained on {info.get('suite', '?')} samples of {info.get('policy', '?')}"
    suite_name, split_name, pool = ev._resolve_tasks(suite, split, suite_kwargs)
    if not pool:
        raise ValueError(f"rerank_evaluate: suite {suite_name!r} has no tasks in split {split_name!r}")
    tasks = pool[:limit] if limit is not None else pool

    source = ev._make_source(
        model, pool, n=n, seed=int(seed), max_new_tokens=max_new_tokens, temperature=float(temperature),
        top_p=float(top_p), device=device,
    )  # fmt: skip
    notes: list[str] = []
    if verifier is not None and needs_verifier:
        # Before sampling: a verifier of another policy's size fails at once.
        _check_verifier(verifier, source.policy)
        notes += _verifier_notes(verifier, source.policy, tasks)
    wall_start = time.perf_counter()  # after loading the model, as in evaluate
    own_executor = executor is None
    if executor is None:
        from codegym.execution.executor import Executor

        executor = Executor()
    try:
        sampled = _sample(
            source, tasks, n=n, batch_size=batch_size, executor=executor, progress=progress,
            desc=f"rerank {suite_name}:{split_name}",
        )  # fmt: skip
    finally:
        if own_executor:
            executor.close()
    notes = sampled.notes + notes

    rows: list[RerankRow] = []
    counts: Counter[str] = Counter({status: 0 for status in STATUSES})
    for task in tasks:
        candidates = sampled.candidates[task.task_id]
        counts.update(c.result.status for c in candidates if c.result is not None)
        probs = (
            verifier.score(candidates) if (verifier is not None and needs_verifier and candidates) else None
        )
        chosen: dict[str, int] = {}
        for method in chosen_methods:
            chosen[method] = (
                select(candidates, method, verifier_probs=probs, lm_prob=lm_prob) if candidates else -1
            )
        rows.append(
            RerankRow(
                task_id=task.task_id,
                num_samples=len(candidates),
                num_correct=sum(c.passed for c in candidates),
                chosen=chosen,
                chosen_passed={m: i >= 0 and candidates[i].passed for m, i in chosen.items()},
                chosen_program={m: candidates[i].program if i >= 0 else "" for m, i in chosen.items()},
            )
        )
    # A task whose prompt did not fit the context has no samples: a failure for every number.
    plain = np.array([r.num_correct / n for r in rows])
    ceiling = np.array([float(r.num_correct > 0) for r in rows])
    p1, p1_low, p1_high = _mean_interval(plain)
    pn, pn_low, pn_high = _mean_interval(ceiling)
    reranked, reranked_ci, gain_ci = {}, {}, {}
    for method in chosen_methods:
        picked = np.array([float(r.chosen_passed[method]) for r in rows])
        value, low, high = _mean_interval(picked)
        reranked[method], reranked_ci[method] = value, _clipped(low, high)
        _, g_low, g_high = _mean_interval(picked - plain)
        gain_ci[method] = (max(-1.0, g_low), min(1.0, g_high))
    return RerankReport(
        model=sampled.source.name,
        suite=suite_name,
        split=split_name,
        n=n,
        methods=chosen_methods,
        num_tasks=len(tasks),
        pass_at_1=p1,
        pass_at_1_ci=_clipped(p1_low, p1_high),
        pass_at_n=pn,
        pass_at_n_ci=_clipped(pn_low, pn_high),
        reranked=reranked,
        reranked_ci=reranked_ci,
        gain_ci=gain_ci,
        status_counts=dict(counts),
        tasks=rows,
        temperature=float(temperature),
        top_p=float(top_p),
        max_new_tokens=sampled.source.max_new_tokens,
        seed=int(seed),
        suite_kwargs=dict(suite_kwargs or {}),
        verifier=verifier_name if needs_verifier else None,
        lm_prob=lm_prob,
        notes=notes,
        sampling_s=sampled.sampling_s,
        sandbox_s=sampled.sandbox_s,
        scoring_s=sampled.scoring_s,
        total_s=time.perf_counter() - wall_start,
    )


def _check_verifier(verifier: Verifier, policy: Any) -> None:
    size = _policy_hidden_size(policy)
    if verifier.hidden_size != size:
        raise ValueError(
            f"rerank_evaluate: the verifier reads hidden states of size {verifier.hidden_size} (trained on "
            f"{verifier.info.get('policy', '?')}), but this policy's are of size {size}"
        )


def _verifier_notes(verifier: Verifier, policy: Any, tasks: Sequence[Task]) -> list[str]:
    notes = []
    trained_on = verifier.info.get("policy_fingerprint")
    if trained_on and trained_on != _policy_fingerprint(policy):
        notes.append(
            "the verifier was trained on the samples of another policy "
            f"({verifier.info.get('policy', '?')}); its features come from this one"
        )
    seen = set(verifier.info.get("training_prompts", ()))
    overlap = sum(_prompt_key(t.prompt) in seen for t in tasks)
    if overlap:
        notes.append(f"{overlap} of the {len(tasks)} tasks were in the verifier's training set")
    return notes


# ---------------------------------------------------------------------------------------------------------
# train_verifier


@dataclass
class VerifierTraining:
    """What :func:`train_verifier` did and how well the verifier separates passing from failing samples.

    Accuracy thresholds ``p(correct)`` at 0.5; AUC is :func:`roc_auc`. Validation tasks are train-split
    tasks held out from the fit (whole tasks, so no task's samples are on both sides).

    Attributes:
        num_tasks: Train-split tasks sampled.
        num_samples: Labelled samples.
        positive_share: Share of them that passed their hidden tests.
        train_tasks: Tasks fitted on.
        val_tasks: Tasks held out for validation.
        l2: The penalty chosen (the best validation AUC of the grid).
        train_accuracy: Accuracy on the fitted samples.
        train_auc: AUC on them.
        val_accuracy: Accuracy on the held-out tasks' samples.
        val_auc: AUC on them (NaN when they hold one class only).
        val_positive_share: Share of held-out samples that passed (the accuracy of always saying the
            majority is ``max(share, 1 - share)``).
        grid: ``{l2: validation AUC}`` of every penalty tried.
        sampling_s: Seconds sampling, judging and scoring.
        fit_s: Seconds fitting.
    """

    num_tasks: int
    num_samples: int
    positive_share: float
    train_tasks: int
    val_tasks: int
    l2: float
    train_accuracy: float
    train_auc: float
    val_accuracy: float
    val_auc: float
    val_positive_share: float
    grid: dict[str, float]
    sampling_s: float = 0.0
    fit_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


def _json_safe(value: Any) -> Any:
    """``value`` with NaN floats (an AUC of one class) as None, which JSON can hold."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return None if isinstance(value, float) and math.isnan(value) else value


def _accuracy(labels: np.ndarray, probs: np.ndarray) -> float:
    return float(((probs >= 0.5) == labels.astype(bool)).mean()) if len(labels) else float("nan")


def train_verifier(
    model: LMPolicy | str | Path,
    suite: str | TaskSuite,
    *,
    n: int = 8,
    suite_kwargs: Mapping[str, Any] | None = None,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int | None = None,
    val_fraction: float = 0.2,
    l2: float | Sequence[float] = _L2_GRID,
    executor: Executor | None = None,
    batch_size: int = 64,
    seed: int = 0,
    limit: int | None = None,
    progress: bool = True,
    device: str = "auto",
) -> tuple[Verifier, VerifierTraining]:
    """Train a :class:`Verifier` on the policy's own samples of the suite's *train* split.

    Samples ``n`` programs per train task, labels each by the hidden tests, computes its features
    (:func:`candidate_features`), holds out ``val_fraction`` of the tasks (chosen by ``seed``), fits one
    logistic regression per ``l2`` on the rest, and keeps the one with the best validation AUC. The test
    split is never sampled: the verifier can then rerank on it honestly.

    Args:
        model: An :class:`~codegym.agents.policy.LMPolicy`, ``"default"`` or a path.
        suite: A suite name or a :class:`TaskSuite` (its train split is taken).
        n: Samples per task.
        suite_kwargs: Arguments of the suite.
        temperature: Sampling temperature (the one the verifier will rerank at is the natural choice).
        top_p: Nucleus mass.
        max_new_tokens: Token budget (default as in ``evaluate``).
        val_fraction: Share of tasks held out for validation, in (0, 1).
        l2: One penalty, or several to choose from by validation AUC.
        executor: The sandbox (left open); default: one made and closed here.
        batch_size: Programs per sampling batch and per scoring forward.
        seed: Seeds the sampling and the validation split.
        limit: Only the first ``limit`` train tasks.
        progress: Show a progress bar.
        device: Where a model loaded here runs.

    Returns:
        The verifier (its ``info`` records the policy, the data and the metrics) and the
        :class:`VerifierTraining` summary.

    Raises:
        ValueError: for a baseline model, bad arguments, a suite without train tasks, too few tasks to
            hold some out, or samples of one class only.
    """
    if isinstance(model, str) and model in ev.BASELINES:
        raise ValueError(f"train_verifier: the verifier reads a policy's hidden states; {model!r} has none")
    _check_sampling("train_verifier", n, temperature, top_p, seed, limit, batch_size)
    if not (isinstance(val_fraction, (int, float)) and 0 < val_fraction < 1):
        raise ValueError(f"train_verifier: val_fraction must be in (0, 1), got {val_fraction!r}")
    grid = [float(l2)] if isinstance(l2, (int, float)) else [float(v) for v in l2]
    if not grid:
        raise ValueError("train_verifier: l2 must be a number or a non-empty list of them")
    suite_name, split_name, pool = ev._resolve_tasks(suite, "train", suite_kwargs)
    if not pool:
        raise ValueError(f"train_verifier: suite {suite_name!r} has no train tasks")
    tasks = pool[:limit] if limit is not None else pool
    if len(tasks) < 2:
        raise ValueError(f"train_verifier: {len(tasks)} train task(s); need at least 2 to hold some out")

    source = ev._make_source(
        model, pool, n=n, seed=int(seed), max_new_tokens=max_new_tokens, temperature=float(temperature),
        top_p=float(top_p), device=device,
    )  # fmt: skip
    own_executor = executor is None
    if executor is None:
        from codegym.execution.executor import Executor

        executor = Executor()
    try:
        start = time.perf_counter()
        sampled = _sample(
            source, tasks, n=n, batch_size=batch_size, executor=executor, progress=progress,
            desc=f"train-verifier {suite_name}:{split_name}",
        )  # fmt: skip
        sampling_s = time.perf_counter() - start
    finally:
        if own_executor:
            executor.close()

    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7]))
    order = rng.permutation(len(tasks))
    num_val = min(len(tasks) - 1, max(1, round(val_fraction * len(tasks))))
    val_ids = {tasks[i].task_id for i in order[:num_val]}

    def rows(selected: bool) -> tuple[np.ndarray, np.ndarray]:
        chosen = [
            c for t in tasks if (t.task_id in val_ids) == selected for c in sampled.candidates[t.task_id]
        ]
        return candidate_features(chosen), np.array([int(c.passed) for c in chosen], dtype=np.int64)

    x_train, y_train = rows(False)
    x_val, y_val = rows(True)
    start = time.perf_counter()
    fits: list[tuple[float, float, Verifier]] = []
    for penalty in grid:
        fitted = Verifier.fit(x_train, y_train, l2=penalty)
        fits.append((penalty, roc_auc(y_val, fitted.predict_proba(x_val)), fitted))
    # Best validation AUC; NaN (one class held out) ranks last; ties go to the stronger penalty.
    best_l2, best_auc, best = max(fits, key=lambda f: (-math.inf if math.isnan(f[1]) else f[1], f[0]))
    fit_s = time.perf_counter() - start
    labels = np.concatenate([y_train, y_val])
    summary = VerifierTraining(
        num_tasks=len(tasks),
        num_samples=len(labels),
        positive_share=float(labels.mean()) if len(labels) else 0.0,
        train_tasks=len(tasks) - num_val,
        val_tasks=num_val,
        l2=best_l2,
        train_accuracy=_accuracy(y_train, best.predict_proba(x_train)),
        train_auc=roc_auc(y_train, best.predict_proba(x_train)),
        val_accuracy=_accuracy(y_val, best.predict_proba(x_val)),
        val_auc=best_auc,
        val_positive_share=float(y_val.mean()) if len(y_val) else 0.0,
        grid={f"{penalty:g}": auc for penalty, auc, _ in fits},
        sampling_s=sampling_s,
        fit_s=fit_s,
    )
    best.info.update(
        {
            "policy": sampled.source.name,
            "policy_fingerprint": _policy_fingerprint(sampled.policy),
            "suite": suite_name,
            "split": split_name,
            "suite_kwargs": dict(suite_kwargs or {}),
            "n": n,
            "temperature": float(temperature),
            "top_p": float(top_p),
            "seed": int(seed),
            "metrics": _json_safe(
                {k: v for k, v in summary.to_dict().items() if k not in ("sampling_s", "fit_s")}
            ),
            "training_prompts": sorted({_prompt_key(t.prompt) for t in tasks}),
        }
    )
    return best, summary


# ---------------------------------------------------------------------------------------------------------
# codegym train-verifier, and codegym eval --rerank


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``train-verifier`` subcommand to the CLI."""
    p = sub.add_parser(
        "train-verifier",
        help="train a verifier (for eval --rerank verifier|lever) on a policy's own train-split samples",
        description=(
            "Sample n programs per task of the suite's TRAIN split, label them by the hidden tests, and fit "
            "a logistic regression on the policy's pooled hidden states and the visible-test result. "
            "Prints train/validation accuracy and AUC; the test split is never used."
        ),
    )
    p.add_argument("--model", default="default", help="default or a model directory (the policy)")
    p.add_argument("--suite", required=True, help="suite name (see `codegym suites`)")
    p.add_argument("--out", required=True, metavar="DIR", help="write the verifier here")
    p.add_argument("-n", type=int, default=8, help="programs sampled per task (default 8)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default 1)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="token budget (default: from the suite)")
    p.add_argument("--batch-size", type=int, default=64, help="programs per sampling batch (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling and the validation split")
    p.add_argument("--limit", type=int, default=None, help="only the first L train tasks")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of tasks held out (default 0.2)")
    p.add_argument(
        "--l2",
        default=",".join(f"{v:g}" for v in _L2_GRID),
        help="L2 penalty, or comma-separated values to choose from by validation AUC (default %(default)s)",
    )
    p.add_argument(
        "--suite-arg", action="append", default=[], metavar="KEY=VALUE",
        help="suite argument, repeatable: n=500, seed=1, difficulty=1,2,3",
    )  # fmt: skip
    p.add_argument("--device", default="auto", help="device of the policy (default auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train_verifier)


def _cmd_train_verifier(args: argparse.Namespace) -> int:
    try:
        grid = [float(v) for v in str(args.l2).split(",") if v.strip()]
    except ValueError:
        print(f"error: --l2 must be a number or comma-separated numbers, got {args.l2!r}", file=sys.stderr)
        return 2
    try:
        verifier, summary = train_verifier(
            args.model,
            args.suite,
            n=args.n,
            suite_kwargs=ev.parse_suite_args(args.suite_arg),
            temperature=args.temperature,
            top_p=args.top_p,
            max_new_tokens=args.max_new_tokens,
            val_fraction=args.val_fraction,
            l2=grid,
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
    out = verifier.save(args.out)
    s = summary
    print(
        f"{s.num_samples} samples of {s.num_tasks} train tasks ({100 * s.positive_share:.1f}% passing); "
        f"fit on {s.train_tasks} tasks, validated on {s.val_tasks}; l2={s.l2:g} "
        f"(validation AUC per l2: {', '.join(f'{k}: {v:.3f}' for k, v in s.grid.items())})"
    )
    print(f"train:      accuracy {100 * s.train_accuracy:.1f}%  AUC {s.train_auc:.3f}")
    print(
        f"validation: accuracy {100 * s.val_accuracy:.1f}%  AUC {s.val_auc:.3f}  "
        f"({100 * s.val_positive_share:.1f}% of its samples pass)"
    )
    print(f"saved to {out} ({s.sampling_s:.1f} s sampling and judging, {s.fit_s:.2f} s fitting)")
    return 0


def parse_methods(text: str) -> list[str]:
    """Parse ``--rerank``: ``none`` (an empty list) or comma-separated :data:`METHODS`.

    Raises:
        ValueError: naming the text and the choices.
    """
    items = [v.strip() for v in text.split(",") if v.strip()]
    if items == ["none"]:
        return []
    if not items or any(v not in METHODS for v in items):
        raise ValueError(
            f"--rerank must be none or one or more of {', '.join(METHODS)} (comma-separated), got {text!r}"
        )
    return list(dict.fromkeys(items))


def run_eval_command(args: argparse.Namespace, methods: Sequence[str]) -> int:
    """``codegym eval --rerank ...``: run :func:`rerank_evaluate` with the eval command's arguments."""
    if any(m != "visible-tests" for m in methods) and not args.verifier:
        print(
            f"error: --rerank {','.join(methods)} needs --verifier DIR (make one with "
            "`codegym train-verifier --suite ... --out DIR`)",
            file=sys.stderr,
        )
        return 2
    try:
        report = rerank_evaluate(
            args.model,
            args.suite,
            methods=methods,
            split=args.split,
            n=args.n,
            verifier=args.verifier if any(m != "visible-tests" for m in methods) else None,
            lm_prob=args.lm_prob,
            temperature=args.temperature,
            top_p=args.top_p,
            max_new_tokens=args.max_new_tokens,
            suite_kwargs=ev.parse_suite_args(args.suite_arg),
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
        f"{report.num_tasks * report.n} samples in {report.total_s:.1f} s (sampling "
        f"{report.sampling_s:.1f} s, sandbox {report.sandbox_s:.1f} s, scoring {report.scoring_s:.1f} s)"
    )
    if args.json:
        Path(args.json).write_text(report.to_json() + "\n")
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 0
