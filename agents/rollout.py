"""Program-level rollouts through the Gymnasium vector API, shared by the trainers.

One rollout: reset the vector env so that each *group* of ``group_size`` consecutive sub-environments
attempts the same task, sample one program per sub-environment from the policy, and step the env with
the programs (one batched execution for a CodeGym vector env). The groups come from Gymnasium's own
API: every sub-environment of group ``g`` is reset with the same seed, so any env whose task choice
depends only on its ``np_random`` (every correctly seeded Gymnasium env) puts the same task in a group.
The rollout checks that the prompts of a group agree and raises naming the envs when they do not.
Each rollout starts with an explicit reset, so the vector env's autoreset mode never matters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from codegym.agents.policy import LMPolicy, SampleOutput

__all__ = ["ProgramRollout", "collect_programs"]


@dataclass
class ProgramRollout:
    """One batch of programs, their rewards, and what the update needs.

    Attributes:
        sample: The policy's sample (rows in sub-environment order, groups consecutive).
        rewards: ``[rows]`` float64 environment rewards.
        passed: ``[rows]`` bool from ``info["passed"]`` where the env reports it, else None.
        prompts: The prompt of each group.
        sample_s: Seconds spent sampling.
        env_s: Seconds spent in ``envs.step`` (for CodeGym envs: the sandbox).
    """

    sample: SampleOutput
    rewards: np.ndarray
    passed: np.ndarray | None
    prompts: list[str]
    sample_s: float
    env_s: float


def _prompt_of(obs: Any, i: int) -> str:
    if isinstance(obs, dict):
        if "prompt" not in obs:
            raise ValueError(
                f"program rollouts need text observations or a Dict with 'prompt', got {sorted(obs)}"
            )
        obs = obs["prompt"]
    value = obs[i]
    if not isinstance(value, str):
        raise TypeError(
            f"program rollouts need text observations (the prompt), env {i} gave {type(value).__name__}"
        )
    return value


def collect_programs(
    policy: LMPolicy,
    envs: Any,
    *,
    group_size: int,
    seed: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
) -> ProgramRollout:
    """Reset ``envs`` in groups, sample one program per sub-environment and step the env with them.

    Args:
        policy: The policy to sample from.
        envs: A Gymnasium ``VectorEnv`` whose observations are prompt text and actions program text;
            ``num_envs`` must be a multiple of ``group_size``.
        group_size: Sub-environments per task.
        seed: Seeds this rollout's task choice (group ``g`` gets ``seed + g``) and its sampling.
        max_new_tokens: Token budget per program.
        temperature: Sampling temperature.
        top_p: Nucleus mass.

    Raises:
        ValueError: if ``num_envs`` is not a multiple of ``group_size``, or a group's prompts differ.
    """
    num_envs = int(envs.num_envs)
    if num_envs % group_size:
        raise ValueError(f"num_envs={num_envs} is not a multiple of group_size={group_size}")
    groups = num_envs // group_size
    seeds = [seed + g for g in range(groups) for _ in range(group_size)]
    obs, _ = envs.reset(seed=seeds)
    prompts = []
    for g in range(groups):
        first = _prompt_of(obs, g * group_size)
        for j in range(1, group_size):
            if _prompt_of(obs, g * group_size + j) != first:
                raise ValueError(
                    f"envs {g * group_size} and {g * group_size + j} were reset with the same seed but show "
                    "different prompts: a group baseline needs an env whose task depends only on its seed"
                )
        prompts.append(first)
    start = time.perf_counter()
    sample = policy.sample(
        prompts, n=group_size, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed
    )
    sample_s = time.perf_counter() - start
    start = time.perf_counter()
    _, rewards, terminated, truncated, infos = envs.step(list(sample.texts))
    env_s = time.perf_counter() - start
    passed = None
    if isinstance(infos, dict) and "passed" in infos:
        passed = np.asarray(infos["passed"], dtype=bool)
    return ProgramRollout(
        sample=sample,
        rewards=np.asarray(rewards, dtype=np.float64),
        passed=passed,
        prompts=prompts,
        sample_s=sample_s,
        env_s=env_s,
    )


def token_sums(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[rows]`` sums of per-token ``values`` over the real tokens."""
    return (values * mask).sum(-1)
