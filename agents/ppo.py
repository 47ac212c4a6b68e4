"""PPO for language-model policies on Gymnasium envs, program level or token level (value head, GAE, KL).

Each token is one action. On a *program-level* env (``Text`` actions) the episode is one sampled
program; on a *token-level* env (``Discrete`` actions over the policy's vocabulary, e.g.
``codegym/Arith-Token-v0`` built with ``tokenizer=policy.tokenizer``) the env sees every token and may
reward any of them (``DenseReward``, ``PotentialShaping``). Read top to bottom, one update is:

1. **Rollout**. Program level (:func:`~codegym.agents.rollout.collect_programs`): one sampled program
   per sub-environment, judged by one ``envs.step``. Token level
   (:func:`~codegym.agents.rollout.collect_tokens`): ``num_steps`` batched ``envs.step`` calls, one
   token per sub-environment each, the KV cache carried across them; the rows are the episodes' runs
   of steps (segments). The old log-probs and values of every token are kept.
2. **Per-token rewards**: ``-beta * (log p - log p_ref)`` on every token (the k1 KL penalty of Ziegler
   et al. 2019 and of TRL's PPO), plus the environment's reward: at program level on the program's
   *last real token* (EOS when the model ended it), at token level on the action the env gave it for.
   An episode that *terminated* ends there: nothing is bootstrapped past it, and padding carries no
   reward and no value. One that was *truncated* (the token budget, a time limit) or cut by the end of
   the rollout is bootstrapped with the value of the state it stopped in, not treated as an end.
3. **GAE** (``codegym.rlmath.gae``) over the tokens with ``gamma`` and ``gae_lambda``; returns =
   advantages + values; advantages whitened over the batch's real tokens.
4. **Epochs of minibatches**: clipped policy loss, clipped value loss (as in CleanRL), entropy bonus;
   a pass stops early when the approximate KL between the new and the old policy exceeds ``target_kl``.
5. **Adaptive beta** (``kl_target > 0``): the KL controller sees the batch's mean sequence KL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from codegym.agents.policy import LMPolicy
from codegym.agents.rollout import check_token_envs, collect_programs, collect_tokens, token_sums
from gymnasium import spaces

from codegym import rlmath

__all__ = ["PPO", "PPOConfig"]


@dataclass
class PPOConfig:
    """Hyper-parameters of :class:`PPO` (``codegym train --algo ppo`` makes each a flag)."""

    learning_rate: float = 1e-4
    """Adam learning rate (policy and value head)."""
    adam_eps: float = 1e-8
    """Adam epsilon."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm."""
    max_new_tokens: int = 64
    """Program level: token budget of one program (at token level the env's own budget decides)."""
    num_steps: int = 65
    """Token level: actions per sub-environment per rollout (at least the env's budget + 1, so that
    every sub-environment finishes an episode)."""
    temperature: float = 1.0
    """Sampling temperature."""
    top_p: float = 1.0
    """Nucleus sampling mass (program level; token-level rollouts need 1.0)."""
    group_size: int = 1
    """Sub-environments per task (PPO needs no groups; > 1 samples a task several times per batch)."""
    gamma: float = 1.0
    """Discount over tokens (1: the program's reward counts fully at every token)."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    update_epochs: int = 2
    """Passes over each batch."""
    num_minibatches: int = 2
    """Minibatches per pass; must divide num_envs."""
    clip_range: float = 0.2
    """Policy ratio clipping epsilon."""
    clip_range_value: float = 0.2
    """Value clipping around the old values (0: no value clipping)."""
    value_coef: float = 0.5
    """Weight of the value loss."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus."""
    kl_coef: float = 0.02
    """Initial beta of the per-token KL penalty in the reward (0: no reference kept)."""
    kl_target: float = 0.0
    """Target sequence KL for an adaptive beta (0: fixed beta)."""
    kl_horizon: float = 10000.0
    """Samples for a full proportional correction of the adaptive beta."""
    target_kl: float = 0.0
    """Stop an update's epochs once approx KL(old || new) exceeds this (0: never)."""
    whiten_advantages: bool = True
    """Whiten advantages over the real tokens of the batch."""
    seed: int = 0
    """Seeds task choice, sampling and the run."""

    def __post_init__(self) -> None:
        for name in ("learning_rate", "max_grad_norm", "clip_range", "kl_horizon"):
            if not getattr(self, name) > 0:
                raise ValueError(f"PPOConfig: {name} must be > 0, got {getattr(self, name)!r}")
        for name in ("kl_coef", "kl_target", "target_kl", "entropy_coef", "value_coef", "clip_range_value"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"PPOConfig: {name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("gamma", "gae_lambda"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"PPOConfig: {name} must be in [0, 1], got {getattr(self, name)!r}")
        for name in ("update_epochs", "num_minibatches", "max_new_tokens", "group_size", "num_steps"):
            if type(getattr(self, name)) is not int or getattr(self, name) < 1:
                raise ValueError(f"PPOConfig: {name} must be an int >= 1, got {getattr(self, name)!r}")

    def check_batch(self, num_envs: int) -> None:
        """Raise naming the numbers if ``num_envs`` does not split into groups and minibatches."""
        if num_envs % self.group_size:
            raise ValueError(
                f"PPOConfig: num_envs={num_envs} is not a multiple of group_size={self.group_size}"
            )
        if num_envs % self.num_minibatches:
            raise ValueError(
                f"PPOConfig: num_envs={num_envs} does not divide into num_minibatches={self.num_minibatches}"
            )


@dataclass
class _Batch:
    """The rows one update learns from (programs, or segments of token-level episodes)."""

    prompt_ids: list[list[int]]
    completion_ids: torch.Tensor
    mask: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor


def token_rewards(
    env_rewards: torch.Tensor, mask: torch.Tensor, kl_per_token: torch.Tensor, beta: float
) -> torch.Tensor:
    """``[rows, T]`` rewards: ``-beta * kl`` on every real token and the env reward on the last one."""
    rewards = (-beta * kl_per_token).masked_fill(~mask, 0.0)
    last = mask.sum(-1) - 1
    rows = torch.arange(mask.shape[0], device=mask.device)
    has_tokens = last >= 0
    rewards[rows[has_tokens], last[has_tokens]] += env_rewards[has_tokens]
    return rewards


def episode_ends(mask: torch.Tensor) -> torch.Tensor:
    """``[rows, T]`` dones: 1 at each program's last real token and on the padding after it."""
    last = mask.sum(-1, keepdim=True) - 1
    positions = torch.arange(mask.shape[1], device=mask.device)[None]
    return (positions >= last).float()


class PPO:
    """PPO for an :class:`LMPolicy` with a value head on a program-level or token-level vector env.

    Args:
        policy: The policy (``LMPolicy.from_pretrained(..., value_head=True)``).
        envs: A Gymnasium ``VectorEnv``: observation = prompt text and action = program text (program
            level), or ``Discrete`` actions over the policy's vocabulary (token level).
        config: Hyper-parameters.

    Raises:
        ValueError: without a value head, if the batch does not split into minibatches, or for a token
            env that does not fit the policy (see :func:`~codegym.agents.rollout.check_token_envs`).
    """

    algo = "ppo"

    def __init__(self, policy: LMPolicy, envs: Any, config: PPOConfig | None = None) -> None:
        if policy.value_head is None:
            raise ValueError(
                "PPO needs a policy with a value head: LMPolicy.from_pretrained(..., value_head=True)"
            )
        self.policy = policy
        self.envs = envs
        self.config = config or PPOConfig()
        self.token_level = isinstance(envs.single_action_space, spaces.Discrete)
        if self.token_level:
            check_token_envs(policy, envs)
            if self.config.group_size != 1:
                raise ValueError("PPOConfig: group_size applies at program level only; use 1 at token level")
            if self.config.temperature <= 0 or self.config.top_p != 1.0:
                raise ValueError(
                    "PPOConfig: token-level rollouts sample the full tempered distribution: temperature "
                    f"must be > 0 and top_p 1.0, got {self.config.temperature} and {self.config.top_p}"
                )
        self.config.check_batch(int(envs.num_envs))
        c = self.config
        params = [p for p in policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=c.learning_rate, eps=c.adam_eps)
        self.kl_controller: rlmath.FixedKLController | rlmath.AdaptiveKLController = (
            rlmath.AdaptiveKLController(c.kl_coef, c.kl_target, c.kl_horizon)
            if c.kl_target > 0
            else rlmath.FixedKLController(c.kl_coef)
        )
        self.reference = policy.reference() if c.kl_coef > 0 else None
        self.update_count = 0

    def train_step(self) -> dict[str, float]:
        """Collect one rollout (program or token level) and run the PPO epochs; return the metrics."""
        started = time.perf_counter()
        self.policy.train()
        seed = self.config.seed * 1_000_003 + self.update_count * 7919
        if self.token_level:
            batch, metrics = self._token_batch(seed)
        else:
            batch, metrics = self._program_batch(seed)
        metrics.update(self._optimize(batch))
        if self.reference is not None:
            self.kl_controller.update(metrics["rollout/kl_ref"], len(batch.mask))
        self.update_count += 1
        total_s = time.perf_counter() - started
        metrics["update"] = float(self.update_count)
        metrics["charts/completions_per_s"] = metrics.pop("_episodes") / total_s
        metrics["time/sandbox_share"] = metrics["time/sandbox_s"] / total_s
        return dict(sorted(metrics.items(), key=lambda kv: kv[0] != "update"))

    def _program_batch(self, seed: int) -> tuple[_Batch, dict[str, float]]:
        """Program level: one sampled program per sub-environment, the env reward on its last token."""
        c = self.config
        rollout = collect_programs(
            self.policy,
            self.envs,
            group_size=c.group_size,
            seed=seed,
            max_new_tokens=c.max_new_tokens,
            temperature=c.temperature,
            top_p=c.top_p,
        )
        sample = rollout.sample
        mask = sample.mask
        env_rewards = torch.as_tensor(rollout.rewards, dtype=torch.float32, device=mask.device)
        beta = float(self.kl_controller.value)
        with torch.no_grad():
            old_values = self.policy.values(sample.prompt_ids, sample.completion_ids, mask)
            kl_per_token = torch.zeros_like(sample.logprobs)
            if self.reference is not None:
                ref_logprobs = self.reference.log_probs(
                    sample.prompt_ids, sample.completion_ids, mask, temperature=c.temperature
                )
                kl_per_token = (sample.logprobs - ref_logprobs).masked_fill(~mask, 0.0)
            rewards = token_rewards(env_rewards, mask, kl_per_token, beta)
        batch = self._with_advantages(
            sample.prompt_ids, sample.completion_ids, mask, sample.logprobs, old_values, rewards
        )
        metrics = {
            "rollout/reward": float(env_rewards.mean()),
            "rollout/completion_tokens": float(mask.sum(-1).float().mean()),
            "rollout/finished": float(np.mean(sample.finished)),
            "rollout/kl_ref": float(token_sums(kl_per_token, mask).mean()),
            "charts/beta": beta,
            "time/sample_s": rollout.sample_s,
            "time/sandbox_s": rollout.env_s,
            "_episodes": float(len(sample)),
        }
        if rollout.passed is not None:
            metrics["rollout/pass_rate"] = float(rollout.passed.mean())
        return batch, metrics

    def _token_batch(self, seed: int) -> tuple[_Batch, dict[str, float]]:
        """Token level: ``num_steps`` actions per sub-environment; the env's reward on every action."""
        c = self.config
        rollout = collect_tokens(
            self.policy,
            self.reference,
            self.envs,
            num_steps=c.num_steps,
            seed=seed,
            temperature=c.temperature,
        )
        mask = rollout.mask
        beta = float(self.kl_controller.value)
        rewards = (rollout.env_rewards - beta * rollout.kl).masked_fill(~mask, 0.0)
        # The state after a segment's last action is worth its bootstrap (0 after a termination);
        # folding gamma * bootstrap into that action's reward and ending the row there is GAE with
        # V(s_T) = bootstrap, row by row.
        last = mask.sum(-1) - 1
        rows = torch.arange(len(last), device=mask.device)
        rewards[rows, last] += c.gamma * rollout.bootstrap
        batch = self._with_advantages(
            rollout.prompt_ids, rollout.completion_ids, mask, rollout.logprobs, rollout.values, rewards
        )
        episodes = len(rollout.episode_returns)
        passed = [p for p in rollout.episode_passed if p is not None]
        nan = float("nan")
        metrics = {
            "rollout/reward": float(np.mean(rollout.episode_returns)) if episodes else nan,
            "rollout/episodes": float(episodes),
            "rollout/completion_tokens": float(np.mean(rollout.episode_lengths)) if episodes else nan,
            "rollout/finished": float(np.mean(rollout.episode_terminated)) if episodes else nan,
            "rollout/kl_ref": float(token_sums(rollout.kl, mask).mean()),
            "charts/beta": beta,
            "time/sample_s": rollout.sample_s,
            "time/sandbox_s": rollout.env_s,
            "_episodes": float(episodes),
        }
        if passed:
            metrics["rollout/pass_rate"] = float(np.mean(passed))
        return batch, metrics

    def _with_advantages(
        self,
        prompt_ids: list[list[int]],
        completion_ids: torch.Tensor,
        mask: torch.Tensor,
        logprobs: torch.Tensor,
        values: torch.Tensor,
        rewards: torch.Tensor,
    ) -> _Batch:
        """GAE over each row's tokens (the row's episode or segment ends at its last real token)."""
        c = self.config
        with torch.no_grad():
            values = values.masked_fill(~mask, 0.0)
            advantages, returns = rlmath.gae(rewards, values, episode_ends(mask), 0.0, c.gamma, c.gae_lambda)
            advantages = advantages.masked_fill(~mask, 0.0)
            if c.whiten_advantages and int(mask.sum()) > 1:
                advantages = rlmath.masked_whiten(advantages, mask).masked_fill(~mask, 0.0)
        return _Batch(prompt_ids, completion_ids, mask, logprobs, values, advantages, returns)

    def _optimize(self, batch: _Batch) -> dict[str, float]:
        """The PPO epochs over minibatches of rows; return the loss metrics."""
        c = self.config
        mask, old_logprobs, old_values = batch.mask, batch.logprobs, batch.values
        advantages, returns = batch.advantages, batch.returns
        rows = len(mask)
        generator = torch.Generator().manual_seed(c.seed + self.update_count)
        stats: dict[str, list[float]] = {
            k: [] for k in ("policy", "value", "entropy", "approx_kl", "clip_frac")
        }
        stopped_early = 0.0
        update_started = time.perf_counter()
        for _ in range(c.update_epochs):
            order = torch.randperm(rows, generator=generator)
            epoch_kl = []
            for chunk in torch.tensor_split(order, min(c.num_minibatches, rows)):
                idx = chunk.tolist()
                mb_mask = mask[idx]
                tokens = mb_mask.sum().clamp(min=1)
                out = self.policy.score(
                    [batch.prompt_ids[i] for i in idx],
                    batch.completion_ids[idx],
                    mb_mask,
                    temperature=c.temperature,
                    values=True,
                    entropy=True,
                )
                assert out.values is not None and out.entropy is not None
                log_ratio = (out.logprobs - old_logprobs[idx]).masked_fill(~mb_mask, 0.0)
                ratio = log_ratio.exp()
                adv = advantages[idx]
                pg_loss = -(torch.minimum(ratio * adv, ratio.clamp(1 - c.clip_range, 1 + c.clip_range) * adv))
                pg_loss = (pg_loss * mb_mask).sum() / tokens
                value_error = (out.values - returns[idx]) ** 2
                if c.clip_range_value > 0:
                    clipped_values = old_values[idx] + (out.values - old_values[idx]).clamp(
                        -c.clip_range_value, c.clip_range_value
                    )
                    value_error = torch.maximum(value_error, (clipped_values - returns[idx]) ** 2)
                value_loss = 0.5 * (value_error * mb_mask).sum() / tokens
                entropy = (out.entropy * mb_mask).sum() / tokens
                loss = pg_loss + c.value_coef * value_loss - c.entropy_coef * entropy
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"PPO: loss is {loss.item()} at update {self.update_count}")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(
                    [p for g in self.optimizer.param_groups for p in g["params"]], c.max_grad_norm
                )
                self.optimizer.step()
                with torch.no_grad():
                    approx_kl = float((((ratio - 1) - log_ratio) * mb_mask).sum() / tokens)
                    epoch_kl.append(approx_kl)
                    stats["policy"].append(float(pg_loss))
                    stats["value"].append(float(value_loss))
                    stats["entropy"].append(float(entropy))
                    stats["approx_kl"].append(approx_kl)
                    stats["clip_frac"].append(
                        float((((ratio - 1).abs() > c.clip_range) & mb_mask).sum() / tokens)
                    )
            if c.target_kl > 0 and float(np.mean(epoch_kl)) > c.target_kl:
                stopped_early = 1.0
                break
        real = mask.bool()
        return {
            "losses/policy": float(np.mean(stats["policy"])),
            "losses/value": float(np.mean(stats["value"])),
            "losses/entropy": float(np.mean(stats["entropy"])),
            "losses/approx_kl": float(np.mean(stats["approx_kl"])),
            "losses/clip_frac": float(np.mean(stats["clip_frac"])),
            "losses/explained_variance": rlmath.explained_variance(old_values[real], returns[real]),
            "losses/early_stop": stopped_early,
            "charts/learning_rate": float(self.optimizer.param_groups[0]["lr"]),
            "time/update_s": time.perf_counter() - update_started,
        }

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

    def state_dict(self) -> dict[str, Any]:
        """Everything besides the policy weights that a resumed run needs to go on exactly."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "kl_value": float(self.kl_controller.value),
            "update_count": self.update_count,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (after the policy weights were loaded)."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.kl_controller.value = float(state["kl_value"])
        self.update_count = int(state["update_count"])
