"""REINFORCE for language-model policies on Gymnasium envs, with RLOO and GRPO baselines.

Read top to bottom, one update is:

1. **Rollout**: ``num_envs / group_size`` tasks, each attempted by ``group_size`` sub-environments
   (consecutive sub-environments are reset with the same seed). At program level
   (:func:`~codegym.agents.rollout.collect_programs`, Text actions) one program is sampled per
   sub-environment and one ``envs.step`` judges them all. At token level
   (:func:`~codegym.agents.rollout.collect_tokens` with ``first_episode_only``, ``Discrete`` actions over
   the policy's vocabulary) every sub-environment plays one whole episode, one token per step, and the
   episode's return is the sum of its per-token rewards (a ``DenseReward`` wrapper's pieces included).
   Either way the return belongs to the whole sequence: REINFORCE weights its summed log-prob (per-token
   credit assignment is what PPO's value head and GAE add).
2. **KL to the reference** (optional, ``kl_coef > 0``): ``k1`` subtracts ``beta * sum_t (log p - log
   p_ref)`` from each reward (Ziegler et al. 2019); ``k3`` adds ``beta * mean_t k3`` to the loss instead
   (GRPO, Shao et al. 2024). ``kl_target`` makes beta adaptive (:class:`codegym.rlmath.AdaptiveKLController`).
3. **Baseline** (:mod:`codegym.rlmath`): ``none`` (A = r), ``moving_average`` (A = r - EMA of r),
   ``rloo`` (A = r - mean of the group's other rewards) or ``grpo``
   (A = (r - group mean) / (group std + eps)).
4. **Loss**: ``-mean_tokens(min(rho * A, clip(rho, 1 - eps, 1 + eps) * A))`` with ``rho = p / p_old``, over
   ``update_epochs`` passes of ``num_minibatches`` minibatches. With one epoch and one minibatch
   ``rho = 1`` and its gradient is exactly REINFORCE's ``A * grad log p``; more epochs reuse the batch with
   PPO's clipping as the trust region. Tokens are averaged over the whole batch (each token counts the
   same; a long wrong program is not excused by its length).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from codegym.agents.policy import LMPolicy
from codegym.agents.rollout import check_token_envs, collect_programs, collect_tokens, token_sums

from codegym import rlmath

__all__ = ["REINFORCE", "REINFORCEConfig"]

BASELINES = ("none", "moving_average", "rloo", "grpo")


@dataclass
class REINFORCEConfig:
    """Hyper-parameters of :class:`REINFORCE` (``codegym train --algo reinforce`` makes each a flag)."""

    baseline: str = "grpo"
    """Advantage baseline: none, moving_average, rloo or grpo."""
    group_size: int = 4
    """Programs sampled per task (consecutive sub-environments share a task); rloo/grpo need >= 2."""
    learning_rate: float = 1e-4
    """Adam learning rate (RL on a tiny model is sensitive: 3e-5..1e-4 learned here, 3e-4 collapsed)."""
    adam_eps: float = 1e-8
    """Adam epsilon."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm."""
    max_new_tokens: int = 64
    """Token budget of one program."""
    temperature: float = 1.0
    """Sampling temperature (log-probs are of the tempered distribution)."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    update_epochs: int = 1
    """Passes over each batch (> 1 reuses samples under ratio clipping)."""
    num_minibatches: int = 1
    """Minibatches per pass; must divide num_envs."""
    clip_range: float = 0.2
    """Ratio clipping epsilon (inactive with one epoch and one minibatch, where the ratio is 1)."""
    kl_coef: float = 0.0
    """Initial beta of the KL penalty to the reference policy (0: no reference is kept)."""
    kl_estimator: str = "k1"
    """k1: per-sequence KL subtracted from the reward; k3: per-token KL added to the loss."""
    kl_target: float = 0.0
    """Target sequence KL for an adaptive beta (0: fixed beta)."""
    kl_horizon: float = 10000.0
    """Samples for a full proportional correction of the adaptive beta (Ziegler et al.)."""
    moving_average_decay: float = 0.9
    """Decay of the moving-average baseline."""
    whiten_advantages: bool = False
    """Whiten advantages over the batch (after the baseline)."""
    seed: int = 0
    """Seeds task choice, sampling and the run."""

    def __post_init__(self) -> None:
        if self.baseline not in BASELINES:
            raise ValueError(f"REINFORCEConfig: baseline must be one of {BASELINES}, got {self.baseline!r}")
        if type(self.group_size) is not int or self.group_size < 1:
            raise ValueError(f"REINFORCEConfig: group_size must be an int >= 1, got {self.group_size!r}")
        if self.baseline in ("rloo", "grpo") and self.group_size < 2:
            raise ValueError(
                f"REINFORCEConfig: baseline {self.baseline!r} needs group_size >= 2, got {self.group_size}"
            )
        if self.kl_estimator not in ("k1", "k3"):
            raise ValueError(f"REINFORCEConfig: kl_estimator must be 'k1' or 'k3', got {self.kl_estimator!r}")
        for name in ("learning_rate", "max_grad_norm", "clip_range", "kl_horizon"):
            if not getattr(self, name) > 0:
                raise ValueError(f"REINFORCEConfig: {name} must be > 0, got {getattr(self, name)!r}")
        for name in ("kl_coef", "kl_target", "temperature"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"REINFORCEConfig: {name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("update_epochs", "num_minibatches", "max_new_tokens"):
            if type(getattr(self, name)) is not int or getattr(self, name) < 1:
                raise ValueError(f"REINFORCEConfig: {name} must be an int >= 1, got {getattr(self, name)!r}")

    def check_batch(self, num_envs: int) -> None:
        """Raise naming the numbers if ``num_envs`` does not split into groups and minibatches."""
        if num_envs % self.group_size:
            raise ValueError(
                f"REINFORCEConfig: num_envs={num_envs} is not a multiple of group_size={self.group_size}"
            )
        if num_envs % self.num_minibatches:
            raise ValueError(
                f"REINFORCEConfig: num_envs={num_envs} does not divide into "
                f"num_minibatches={self.num_minibatches}"
            )


@dataclass
class _Batch:
    """One rollout in the shape the update needs, whichever the level (rows = sequences)."""

    prompt_ids: list[list[int]]
    completion_ids: torch.Tensor
    mask: torch.Tensor
    logprobs: torch.Tensor
    ref_logprobs: torch.Tensor | None
    rewards: np.ndarray
    passed: np.ndarray | None
    finished: np.ndarray
    sample_s: float
    env_s: float


class REINFORCE:
    """REINFORCE with a baseline for an :class:`LMPolicy` on a program-level or token-level vector env.

    Args:
        policy: The policy to train (its trainable parameters are optimised).
        envs: A Gymnasium ``VectorEnv``: observation = prompt text and action = program text (program
            level), or ``Discrete`` actions over the policy's vocabulary (token level; built with the
            policy's tokenizer, Gymnasium's default ``NEXT_STEP`` autoreset).
        config: Hyper-parameters.

    Raises:
        ValueError: if the batch does not split into groups and minibatches, or a token-level env does not
            fit the policy (:func:`~codegym.agents.rollout.check_token_envs`) or asks for top_p < 1.
    """

    algo = "reinforce"

    def __init__(self, policy: LMPolicy, envs: Any, config: REINFORCEConfig | None = None) -> None:
        self.policy = policy
        self.envs = envs
        self.config = config or REINFORCEConfig()
        self.config.check_batch(int(envs.num_envs))
        self.token_level = isinstance(getattr(envs, "single_action_space", None), gym.spaces.Discrete)
        if self.token_level:
            check_token_envs(policy, envs)
            if self.config.top_p < 1:
                raise ValueError(
                    f"REINFORCE at token level samples the full tempered distribution: top_p must be 1, "
                    f"got {self.config.top_p}"
                )
        params = [p for p in policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=self.config.learning_rate, eps=self.config.adam_eps)
        c = self.config
        self.kl_controller: rlmath.FixedKLController | rlmath.AdaptiveKLController = (
            rlmath.AdaptiveKLController(c.kl_coef, c.kl_target, c.kl_horizon)
            if c.kl_target > 0
            else rlmath.FixedKLController(c.kl_coef)
        )
        self.moving_average = rlmath.MovingAverageBaseline(c.moving_average_decay)
        self.reference = policy.reference() if c.kl_coef > 0 else None
        self.update_count = 0

    # ---- one update ------------------------------------------------------------------------------------

    def train_step(self) -> dict[str, float]:
        """Collect one rollout and update the policy; return the update's metrics."""
        c = self.config
        started = time.perf_counter()
        self.policy.train()
        batch = self._collect(seed=c.seed * 1_000_003 + self.update_count * 7919)
        mask = batch.mask
        old_logprobs = batch.logprobs
        ref_logprobs = batch.ref_logprobs
        beta = float(self.kl_controller.value)
        rewards = torch.as_tensor(batch.rewards, dtype=torch.float32, device=mask.device)
        seq_kl = torch.zeros_like(rewards)
        if ref_logprobs is not None:
            seq_kl = token_sums(old_logprobs - ref_logprobs, mask)
        shaped = rewards - beta * seq_kl if c.kl_estimator == "k1" else rewards

        # Baseline -> advantages (one per sequence).
        if c.baseline == "grpo":
            advantages = rlmath.grpo_advantages(shaped, c.group_size)
        elif c.baseline == "rloo":
            advantages = rlmath.rloo_advantages(shaped, c.group_size)
        elif c.baseline == "moving_average":
            advantages = self.moving_average.advantages(shaped)
        else:
            advantages = shaped.clone()
        if c.whiten_advantages:
            advantages = rlmath.whiten(advantages)

        # Policy-gradient epochs.
        rows = len(batch.prompt_ids)
        minibatch = rows // c.num_minibatches
        generator = torch.Generator().manual_seed(c.seed + self.update_count)
        stats: dict[str, list[float]] = {
            "policy": [],
            "kl": [],
            "approx_kl": [],
            "clip_frac": [],
            "grad_norm": [],
        }
        update_started = time.perf_counter()
        for _ in range(c.update_epochs):
            order = torch.randperm(rows, generator=generator) if c.num_minibatches > 1 else torch.arange(rows)
            for start in range(0, rows, minibatch):
                idx = order[start : start + minibatch].tolist()
                mb_mask = mask[idx]
                tokens = mb_mask.sum().clamp(min=1)
                logprobs = self.policy.log_probs(
                    [batch.prompt_ids[i] for i in idx],
                    batch.completion_ids[idx],
                    mb_mask,
                    temperature=c.temperature,
                )
                log_ratio = (logprobs - old_logprobs[idx]).masked_fill(~mb_mask, 0.0)
                ratio = log_ratio.exp()
                adv = advantages[idx][:, None]
                unclipped = ratio * adv
                clipped = ratio.clamp(1 - c.clip_range, 1 + c.clip_range) * adv
                policy_loss = -(torch.minimum(unclipped, clipped) * mb_mask).sum() / tokens
                loss = policy_loss
                kl_loss = torch.zeros(())
                if ref_logprobs is not None and c.kl_estimator == "k3":
                    kl_loss = (rlmath.kl_k3(logprobs, ref_logprobs[idx]) * mb_mask).sum() / tokens
                    loss = loss + beta * kl_loss
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"REINFORCE: loss is {loss.item()} at update {self.update_count}"
                    )
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(
                    [p for g in self.optimizer.param_groups for p in g["params"]], c.max_grad_norm
                )
                self.optimizer.step()
                with torch.no_grad():
                    stats["policy"].append(float(policy_loss))
                    stats["kl"].append(float(kl_loss))
                    stats["approx_kl"].append(float((((ratio - 1) - log_ratio) * mb_mask).sum() / tokens))
                    frac = ((ratio - 1).abs() > c.clip_range) & mb_mask
                    stats["clip_frac"].append(float(frac.sum() / tokens))
                    stats["grad_norm"].append(float(grad_norm))
        update_s = time.perf_counter() - update_started
        mean_kl = float(seq_kl.mean())
        if self.reference is not None:
            self.kl_controller.update(mean_kl, rows)
        self.update_count += 1
        total_s = time.perf_counter() - started
        metrics = {
            "update": float(self.update_count),
            "rollout/reward": float(rewards.mean()),
            "rollout/completion_tokens": float(mask.sum(-1).float().mean()),
            "rollout/finished": float(np.mean(batch.finished)),
            "rollout/kl_ref": mean_kl,
            "rollout/zero_signal_groups": _zero_signal_fraction(batch.rewards, c.group_size),
            "losses/policy": float(np.mean(stats["policy"])),
            "losses/kl": float(np.mean(stats["kl"])),
            "losses/approx_kl": float(np.mean(stats["approx_kl"])),
            "losses/clip_frac": float(np.mean(stats["clip_frac"])),
            "losses/grad_norm": float(np.mean(stats["grad_norm"])),
            "charts/beta": beta,
            "charts/learning_rate": float(self.optimizer.param_groups[0]["lr"]),
            "charts/completions_per_s": rows / total_s,
            "time/sample_s": batch.sample_s,
            "time/sandbox_s": batch.env_s,
            "time/update_s": update_s,
            "time/sandbox_share": batch.env_s / total_s,
        }
        if batch.passed is not None:
            metrics["rollout/pass_rate"] = float(batch.passed.mean())
        return metrics

    def _collect(self, seed: int) -> _Batch:
        """One rollout at the env's level, with the reference's log-probs where a KL term needs them."""
        c = self.config
        if self.token_level:
            rollout = collect_tokens(
                self.policy,
                self.reference,
                self.envs,
                num_steps=c.max_new_tokens,
                seed=seed,
                temperature=c.temperature,
                group_size=c.group_size,
                first_episode_only=True,
            )
            passed = rollout.episode_passed
            return _Batch(
                prompt_ids=rollout.prompt_ids,
                completion_ids=rollout.completion_ids,
                mask=rollout.mask,
                logprobs=rollout.logprobs,
                ref_logprobs=None if self.reference is None else rollout.logprobs - rollout.kl,
                rewards=np.asarray(rollout.episode_returns, dtype=np.float64),
                passed=None if any(p is None for p in passed) else np.asarray(passed, dtype=bool),
                finished=np.asarray(rollout.episode_terminated, dtype=bool),
                sample_s=rollout.sample_s,
                env_s=rollout.env_s,
            )
        programs = collect_programs(
            self.policy,
            self.envs,
            group_size=c.group_size,
            seed=seed,
            max_new_tokens=c.max_new_tokens,
            temperature=c.temperature,
            top_p=c.top_p,
        )
        sample = programs.sample
        ref_logprobs = None
        if self.reference is not None:
            ref_logprobs = self.reference.log_probs(
                sample.prompt_ids, sample.completion_ids, sample.mask, temperature=c.temperature
            )
        return _Batch(
            prompt_ids=sample.prompt_ids,
            completion_ids=sample.completion_ids,
            mask=sample.mask,
            logprobs=sample.logprobs,
            ref_logprobs=ref_logprobs,
            rewards=programs.rewards,
            passed=programs.passed,
            finished=np.asarray(sample.finished, dtype=bool),
            sample_s=programs.sample_s,
            env_s=programs.env_s,
        )

    def learn(
        self, total_updates: int, callback: Callable[[dict[str, float]], bool | None] | None = None
    ) -> list[dict[str, float]]:
        """Run ``total_updates`` updates; ``callback(metrics)`` after each may return False to stop."""
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
        return {
            "optimizer": self.optimizer.state_dict(),
            "kl_value": float(self.kl_controller.value),
            "moving_average": self.moving_average.value,
            "update_count": self.update_count,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (after the policy weights were loaded)."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.kl_controller.value = float(state["kl_value"])
        self.moving_average.value = state["moving_average"]
        self.update_count = int(state["update_count"])


def _zero_signal_fraction(rewards: np.ndarray, group_size: int) -> float:
    """Share of groups whose rewards are all equal (no signal for a group baseline)."""
    if group_size < 2:
        return math.nan
    grouped = rewards.reshape(-1, group_size)
    return float(np.mean(np.ptp(grouped, axis=1) == 0))
