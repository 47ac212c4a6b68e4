"""Expert iteration (generate, filter, fine-tune) for language-model policies on program-level envs.

ReST-EM (Singh et al. 2023) and expert iteration for code (Anthony et al. 2017; STaR, Zelikman et al.
2022) learn from execution without a policy gradient. Read top to bottom, one update (one *iteration*) is:

1. **Generate** (:func:`~codegym.agents.rollout.collect_programs`): ``rollouts_per_iteration`` rollouts of
   the vector env, each with ``num_envs / group_size`` tasks attempted ``group_size`` times.
2. **Filter** (:func:`select_passing`): keep the samples that passed the task's hidden tests
   (``info["passed"]``; for an env that does not report it, a reward of at least ``reward_threshold``),
   at most ``max_per_task`` distinct programs per task, so that easy tasks do not crowd out hard ones.
3. **Fine-tune**: ``sft_epochs`` passes of supervised learning (token-mean negative log-likelihood of
   the kept completions, EOS included, given their prompts) in minibatches of ``batch_size`` rows.

Each iteration continues from the current weights (expert iteration), rather than restarting from the
base model as ReST-EM does: on a tiny model and a minutes budget restarting throws away most of the
compute. The samples of one iteration come from one policy (the filter is the E-step, the fine-tuning
the M-step). Held-out checks between iterations are ``codegym train --eval-every``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from codegym.agents.policy import LMPolicy
from codegym.agents.rollout import ProgramRollout, collect_programs

__all__ = ["ExpertIteration", "ExpertIterationConfig", "KeptSample", "passed_mask", "select_passing"]


@dataclass
class ExpertIterationConfig:
    """Hyper-parameters of :class:`ExpertIteration` (``codegym train --algo expert-iteration``)."""

    group_size: int = 8
    """Programs sampled per task (consecutive sub-environments share a task)."""
    rollouts_per_iteration: int = 4
    """Rollouts of the vector env per iteration (tasks per iteration = this x num_envs / group_size)."""
    max_per_task: int = 4
    """Most distinct passing programs kept per task (duplicates are dropped first)."""
    reward_threshold: float = 1.0
    """Kept when the env does not report info['passed']: reward >= this."""
    learning_rate: float = 1e-4
    """Adam learning rate of the fine-tuning."""
    adam_eps: float = 1e-8
    """Adam epsilon."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm."""
    sft_epochs: int = 2
    """Passes over the kept samples per iteration."""
    batch_size: int = 32
    """Rows per fine-tuning minibatch."""
    max_new_tokens: int = 64
    """Token budget of one program."""
    temperature: float = 1.0
    """Sampling temperature."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    seed: int = 0
    """Seeds task choice, sampling, minibatch order and the run."""

    def __post_init__(self) -> None:
        for name in (
            "group_size",
            "rollouts_per_iteration",
            "max_per_task",
            "sft_epochs",
            "batch_size",
            "max_new_tokens",
        ):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"ExpertIterationConfig: {name} must be an int >= 1, got {value!r}")
        for name in ("learning_rate", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ExpertIterationConfig: {name} must be > 0, got {getattr(self, name)!r}")
        if not self.temperature >= 0:
            raise ValueError(f"ExpertIterationConfig: temperature must be >= 0, got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"ExpertIterationConfig: top_p must be in (0, 1], got {self.top_p!r}")

    def check_batch(self, num_envs: int) -> None:
        """Raise naming the numbers if ``num_envs`` does not split into groups."""
        if num_envs % self.group_size:
            raise ValueError(
                f"ExpertIterationConfig: num_envs={num_envs} is not a multiple of "
                f"group_size={self.group_size}"
            )


@dataclass
class KeptSample:
    """One sample that survived the filter: what the fine-tuning trains on.

    Attributes:
        prompt_ids: The prompt's token ids as the policy saw them.
        completion_ids: The sampled ids up to and including the last real token (EOS when sampled).
        text: The decoded program.
        group: The task's group (index of its prompt) in the iteration.
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    text: str
    group: int


def passed_mask(rollout: ProgramRollout, reward_threshold: float = 1.0) -> np.ndarray:
    """``[rows]`` bool: ``info["passed"]`` where the env reports it, else ``reward >= reward_threshold``."""
    if rollout.passed is not None:
        return rollout.passed
    return rollout.rewards >= reward_threshold


def select_passing(
    rollout: ProgramRollout,
    group_size: int,
    *,
    max_per_task: int,
    reward_threshold: float = 1.0,
    group_offset: int = 0,
) -> list[KeptSample]:
    """The samples of ``rollout`` that passed, at most ``max_per_task`` distinct programs per task.

    A sample passed when the env reported ``info["passed"]`` True for it; an env that does not report it
    is judged by ``reward >= reward_threshold``. Within a group (one task) a program text already kept is
    skipped, and samples are taken in sampling order.

    Args:
        rollout: One program rollout (groups of ``group_size`` consecutive rows share a task).
        group_size: Rows per task.
        max_per_task: Most programs kept per task.
        reward_threshold: The pass criterion where the env reports no ``passed``.
        group_offset: Added to the group index stored in each kept sample (tasks of several rollouts).
    """
    passed = passed_mask(rollout, reward_threshold)
    sample = rollout.sample
    lengths = sample.mask.sum(-1).tolist()
    kept: list[KeptSample] = []
    for start in range(0, len(sample), group_size):
        seen: set[str] = set()
        for row in range(start, start + group_size):
            if not passed[row] or sample.texts[row] in seen or len(seen) >= max_per_task:
                continue
            seen.add(sample.texts[row])
            kept.append(
                KeptSample(
                    prompt_ids=list(sample.prompt_ids[row]),
                    completion_ids=sample.completion_ids[row, : int(lengths[row])].tolist(),
                    text=sample.texts[row],
                    group=group_offset + start // group_size,
                )
            )
    return kept


class ExpertIteration:
    """Expert iteration for an :class:`LMPolicy` on a program-level vector env (one update = one iteration).

    Args:
        policy: The policy to train (its trainable parameters are optimised).
        envs: A Gymnasium ``VectorEnv``: observation = prompt text, action = program text.
        config: Hyper-parameters.

    Raises:
        ValueError: for a token-level env, or if ``num_envs`` does not split into groups.
    """

    algo = "expert-iteration"
    reference = None  # no KL term: the filter, not a penalty, keeps the policy near what works

    def __init__(self, policy: LMPolicy, envs: Any, config: ExpertIterationConfig | None = None) -> None:
        if isinstance(getattr(envs, "single_action_space", None), gym.spaces.Discrete):
            raise ValueError(
                "ExpertIteration trains at program level (Text actions); this env takes one token per action"
            )
        self.policy = policy
        self.envs = envs
        self.config = config or ExpertIterationConfig()
        self.config.check_batch(int(envs.num_envs))
        params = [p for p in policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=self.config.learning_rate, eps=self.config.adam_eps)
        self.update_count = 0

    # ---- one iteration ---------------------------------------------------------------------------------

    def train_step(self) -> dict[str, float]:
        """Generate, filter and fine-tune once; return the iteration's metrics."""
        c = self.config
        started = time.perf_counter()
        groups_per_rollout = int(self.envs.num_envs) // c.group_size

        # 1-2. Generate and filter.
        self.policy.eval()
        kept: list[KeptSample] = []
        rewards, passed, tokens = [], [], []
        sample_s = env_s = 0.0
        for r in range(c.rollouts_per_iteration):
            rollout = collect_programs(
                self.policy,
                self.envs,
                group_size=c.group_size,
                seed=c.seed * 1_000_003 + (self.update_count * c.rollouts_per_iteration + r) * 7919,
                max_new_tokens=c.max_new_tokens,
                temperature=c.temperature,
                top_p=c.top_p,
            )
            kept += select_passing(
                rollout,
                c.group_size,
                max_per_task=c.max_per_task,
                reward_threshold=c.reward_threshold,
                group_offset=r * groups_per_rollout,
            )
            rewards.append(rollout.rewards)
            passed.append(passed_mask(rollout, c.reward_threshold))
            tokens.append(rollout.sample.mask.sum(-1).float().mean().item())
            sample_s += rollout.sample_s
            env_s += rollout.env_s
        all_passed = np.concatenate(passed)
        tasks = c.rollouts_per_iteration * groups_per_rollout

        # 3. Fine-tune on the kept samples.
        self.policy.train()
        update_started = time.perf_counter()
        generator = torch.Generator().manual_seed(c.seed * 1_000_003 + self.update_count)
        losses, grad_norms = [], []
        for _ in range(c.sft_epochs if kept else 0):
            order = torch.randperm(len(kept), generator=generator).tolist()
            for start in range(0, len(kept), c.batch_size):
                batch = [kept[i] for i in order[start : start + c.batch_size]]
                loss = self._nll(batch)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"ExpertIteration: loss is {loss.item()} at update {self.update_count}"
                    )
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(
                    [p for g in self.optimizer.param_groups for p in g["params"]], c.max_grad_norm
                )
                self.optimizer.step()
                losses.append(float(loss.detach()))
                grad_norms.append(float(grad_norm))
        update_s = time.perf_counter() - update_started
        self.update_count += 1
        total_s = time.perf_counter() - started
        rows = len(all_passed)
        return {
            "update": float(self.update_count),
            "rollout/reward": float(np.concatenate(rewards).mean()),
            "rollout/pass_rate": float(all_passed.mean()),
            "rollout/tasks_solved": float(all_passed.reshape(tasks, c.group_size).any(axis=1).mean()),
            "rollout/kept": float(len(kept)),
            "rollout/completion_tokens": float(np.mean(tokens)),
            "rollout/kl_ref": 0.0,
            "losses/sft": float(np.mean(losses)) if losses else float("nan"),
            "losses/grad_norm": float(np.mean(grad_norms)) if grad_norms else float("nan"),
            "charts/learning_rate": float(self.optimizer.param_groups[0]["lr"]),
            "charts/completions_per_s": rows / total_s,
            "time/sample_s": sample_s,
            "time/sandbox_s": env_s,
            "time/update_s": update_s,
            "time/sandbox_share": env_s / total_s,
        }

    def _nll(self, batch: list[KeptSample]) -> torch.Tensor:
        """Token-mean negative log-likelihood of the batch's completions given their prompts."""
        width = max(len(s.completion_ids) for s in batch)
        ids = torch.full((len(batch), width), self.policy.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.bool)
        for i, s in enumerate(batch):
            ids[i, : len(s.completion_ids)] = torch.tensor(s.completion_ids)
            mask[i, : len(s.completion_ids)] = True
        ids, mask = ids.to(self.policy.device), mask.to(self.policy.device)
        logprobs = self.policy.log_probs([s.prompt_ids for s in batch], ids, mask)
        return -(logprobs * mask).sum() / mask.sum().clamp(min=1)

    def learn(
        self, total_updates: int, callback: Callable[[dict[str, float]], bool | None] | None = None
    ) -> list[dict[str, float]]:
        """Run ``total_updates`` iterations; ``callback(metrics)`` after each may return False to stop."""
        history = []
        for _ in range(total_updates):
            metrics = self.train_step()
            history.append(metrics)
            if callback is not None and callback(metrics) is False:
                break
        return history

    # ---- checkpoints -----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything besides the policy weights that a resumed run needs to go on exactly."""
        return {"optimizer": self.optimizer.state_dict(), "update_count": self.update_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (after the policy weights were loaded)."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.update_count = int(state["update_count"])
