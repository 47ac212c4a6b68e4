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

__all__ = ["ProgramRollout", "TokenRollout", "check_token_envs", "collect_programs", "collect_tokens"]


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


# ---- token level ------------------------------------------------------------------------------------------


@dataclass
class TokenRollout:
    """``num_steps`` steps of a token-level vector env, cut into *segments* (the update's rows).

    A segment is one episode's run of steps inside the rollout: it starts at a reset and ends where the
    episode ended or where the rollout stopped. Row ``i`` holds its context (the prompt ids the episode
    started from), its actions (the token ids), and per action the log-prob, the value of the state the
    action was taken in, the environment's reward and the KL estimate to the reference.

    Attributes:
        prompt_ids: For each segment, the ids of the observation it started from (padding removed).
        completion_ids: ``[segments, T]`` the actions, right padded with the policy's pad id.
        mask: ``[segments, T]`` True on real actions.
        logprobs: ``[segments, T]`` log-prob of each action under the sampling policy (tempered).
        values: ``[segments, T]`` V(s) before each action.
        env_rewards: ``[segments, T]`` the environment's reward for each action (dense pieces included).
        kl: ``[segments, T]`` ``log p - log p_ref`` of each action (0 without a reference).
        bootstrap: ``[segments]`` V of the state after the segment's last action: 0 when the episode
            terminated, V(final observation) when it was truncated (a time limit is not an end of the
            task), V(next observation) when the rollout stopped mid-episode.
        terminated: ``[segments]`` True where the episode terminated.
        episode_returns: Summed environment reward of each episode that ended in this rollout.
        episode_lengths: Actions of each episode that ended.
        episode_passed: ``info["passed"]`` of each episode that ended (None where the env does not report
            it).
        episode_terminated: Whether each ended episode terminated (True) or was truncated (False).
        sample_s: Seconds in the policy's (and reference's) forwards and sampling.
        env_s: Seconds in ``envs.step`` (for CodeGym envs: the sandbox at the executing steps).
    """

    prompt_ids: list[list[int]]
    completion_ids: torch.Tensor
    mask: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    env_rewards: torch.Tensor
    kl: torch.Tensor
    bootstrap: torch.Tensor
    terminated: torch.Tensor
    episode_returns: list[float]
    episode_lengths: list[int]
    episode_passed: list[bool | None]
    episode_terminated: list[bool]
    sample_s: float
    env_s: float


@dataclass
class _Segment:
    context: list[int]
    actions: list[int]
    logprobs: list[float]
    values: list[float]
    rewards: list[float]
    kl: list[float]
    bootstrap: float = 0.0
    terminated: bool = False
    awaiting_final_value: bool = False
    env: int = -1


def _info_at(infos: Any, key: str, i: int) -> Any:
    """``infos[key][i]`` of a Gymnasium vector info dict where env ``i`` reported ``key``, else None."""
    if not isinstance(infos, dict) or key not in infos:
        return None
    present = infos.get(f"_{key}")
    if present is not None and not bool(present[i]):
        return None
    return infos[key][i]


def check_token_envs(policy: LMPolicy, envs: Any) -> None:
    """Raise naming the problem unless ``envs`` is a token-level vector env this policy can drive.

    It must have ``Discrete`` actions over exactly the policy's vocabulary (build it with the policy's
    tokenizer: ``gym.make_vec("codegym/Arith-Token-v0", tokenizer=policy.tokenizer, ...)``) and
    Gymnasium's default ``NEXT_STEP`` autoreset, whose step after an episode's end only resets.
    """
    from gymnasium import spaces
    from gymnasium.vector import AutoresetMode

    space = envs.single_action_space
    if not isinstance(space, spaces.Discrete):
        raise ValueError(f"token-level training needs Discrete actions, the env has {space}")
    if int(space.n) != policy.vocab_size:
        raise ValueError(
            f"the env's actions are Discrete({int(space.n)}) but the policy's vocabulary has "
            f"{policy.vocab_size} tokens: build the env with the policy's tokenizer "
            "(gym.make_vec(id, tokenizer=policy.tokenizer, ...))"
        )
    mode = (getattr(envs, "metadata", None) or {}).get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if AutoresetMode(mode) != AutoresetMode.NEXT_STEP:
        raise ValueError(
            f"token-level rollouts need the vector env's autoreset_mode NEXT_STEP (Gymnasium's default), "
            f"got {AutoresetMode(mode).value}"
        )


def collect_tokens(
    policy: LMPolicy,
    reference: LMPolicy | None,
    envs: Any,
    *,
    num_steps: int,
    seed: int,
    temperature: float,
    group_size: int = 1,
    first_episode_only: bool = False,
) -> TokenRollout:
    """Reset ``envs`` and take ``num_steps`` token actions in each sub-environment.

    Each step is one batched forward of the policy (and of the reference) over every sub-environment's
    observation, the KV cache carried from the previous step (:meth:`LMPolicy.step`), so a step costs
    one token's forward per row. Under Gymnasium's ``NEXT_STEP`` autoreset the step after an episode's
    end only resets that sub-environment and ignores its action: it is not recorded, and the policy's
    value of the observation it was given (the episode's final one) is the bootstrap of a truncated
    episode. Every rollout starts with ``envs.reset(seed=[seed + i // group_size ...])``, so a rollout
    depends only on the policy and ``seed`` (a resumed run repeats it exactly), and the ``group_size``
    consecutive sub-environments of a group start from the same task.

    With ``first_episode_only`` (REINFORCE's Monte Carlo episodes) the rollout records one whole episode
    per sub-environment, rows in sub-environment order, and stops as soon as every sub-environment has
    ended its first episode; ``num_steps`` is then a cap, and an episode still open after it is an error.

    Args:
        policy: The policy (its value head, where it has one, gives the values and bootstraps; without
            one they are 0).
        reference: The frozen reference for the KL estimate, or None.
        envs: A token-level vector env (see :func:`check_token_envs`).
        num_steps: Steps per sub-environment (with ``first_episode_only``: at most).
        seed: Seeds the resets and the sampling.
        temperature: Sampling temperature (> 0).
        group_size: Consecutive sub-environments reset with the same seed.
        first_episode_only: Record exactly the first episode of every sub-environment (see above).

    Raises:
        ValueError: with ``first_episode_only``, if an episode has not ended after ``num_steps`` steps or
            the sub-environments of a group start from different observations.
    """
    num_envs = int(envs.num_envs)
    device = policy.device
    generator = torch.Generator(device=device).manual_seed(seed)
    obs, _ = envs.reset(seed=[seed + i // group_size for i in range(num_envs)])
    policy.reset_steps()
    if reference is not None:
        reference.reset_steps()
    open_segments: list[_Segment | None] = [None] * num_envs
    closed: list[_Segment] = []
    resetting = np.zeros(num_envs, dtype=bool)  # NEXT_STEP: this env's next step only resets it
    returns = np.zeros(num_envs)
    lengths = np.zeros(num_envs, dtype=np.int64)
    ep_returns: list[float] = []
    ep_lengths: list[int] = []
    ep_passed: list[bool | None] = []
    ep_terminated: list[bool] = []
    sample_s = env_s = 0.0
    last_closed: list[_Segment | None] = [None] * num_envs
    ended: set[int] = set()  # first_episode_only: envs whose first episode is recorded
    for step in range(num_steps + 1):
        start = time.perf_counter()
        out = policy.step(obs)
        values = out.values.float() if out.values is not None else torch.zeros(num_envs, device=device)
        for i in np.flatnonzero(resetting):  # the value of the episode's final observation
            seg = last_closed[i]
            if seg is not None and seg.awaiting_final_value:
                seg.bootstrap = float(values[i])
                seg.awaiting_final_value = False
        if step == num_steps and first_episode_only:
            open_envs = [i for i in range(num_envs) if i not in ended]
            raise ValueError(
                f"the episodes of envs {open_envs[:8]} did not end within num_steps={num_steps} steps: "
                "the env's token budget must be at most the trainer's max_new_tokens"
            )
        if step == num_steps:  # one more forward only for the bootstrap values
            for i, seg in enumerate(open_segments):
                if seg is not None:
                    seg.bootstrap = float(values[i])
                    closed.append(seg)
            sample_s += time.perf_counter() - start
            break
        log_dist = torch.log_softmax(out.logits.float() / temperature, -1)
        actions = torch.multinomial(log_dist.exp(), 1, generator=generator).squeeze(-1)
        logp = log_dist.gather(-1, actions[:, None]).squeeze(-1)
        kl = torch.zeros_like(logp)
        if reference is not None:
            ref = reference.step(obs)
            ref_logp = torch.log_softmax(ref.logits.float() / temperature, -1).gather(-1, actions[:, None])
            kl = logp - ref_logp.squeeze(-1)
        before = obs
        actions_np = actions.cpu().numpy().astype(np.int64)
        logp_l, values_l, kl_l = logp.tolist(), values.tolist(), kl.tolist()
        sample_s += time.perf_counter() - start
        start = time.perf_counter()
        obs, rewards, terminated, truncated, infos = envs.step(actions_np)
        env_s += time.perf_counter() - start
        for i in range(num_envs):
            if resetting[i]:  # this step only reset env i: its action was ignored
                resetting[i] = False
                continue
            if i in ended:  # first_episode_only: env i's episode is recorded, what follows is not
                continue
            seg = open_segments[i]
            if seg is None:
                seg = open_segments[i] = _Segment(
                    _context(before, i, policy.vocab_size), [], [], [], [], [], env=i
                )
            seg.actions.append(int(actions_np[i]))
            seg.logprobs.append(logp_l[i])
            seg.values.append(values_l[i])
            seg.rewards.append(float(rewards[i]))
            seg.kl.append(kl_l[i])
            returns[i] += float(rewards[i])
            lengths[i] += 1
            if terminated[i] or truncated[i]:
                seg.terminated = bool(terminated[i])
                seg.awaiting_final_value = not seg.terminated
                closed.append(seg)
                last_closed[i] = seg
                open_segments[i] = None
                resetting[i] = True
                passed = _info_at(infos, "passed", i)
                ep_returns.append(float(returns[i]))
                ep_lengths.append(int(lengths[i]))
                ep_passed.append(None if passed is None else bool(passed))
                ep_terminated.append(bool(terminated[i]))
                returns[i] = 0.0
                lengths[i] = 0
                if first_episode_only:
                    ended.add(i)
        if first_episode_only and len(ended) == num_envs:
            break
    if first_episode_only:  # rows (and the episode lists, in the same order) by sub-environment
        order = sorted(range(len(closed)), key=lambda r: closed[r].env)
        closed = [closed[r] for r in order]
        ep_returns, ep_lengths, ep_passed, ep_terminated = (
            [values_r[r] for r in order] for values_r in (ep_returns, ep_lengths, ep_passed, ep_terminated)
        )
        for g in range(0, num_envs, group_size):
            for j in range(g + 1, g + group_size):
                if closed[j].context != closed[g].context:
                    raise ValueError(
                        f"envs {g} and {j} were reset with the same seed but start from different "
                        "observations: a group baseline needs an env whose task depends only on its seed"
                    )
    width = max(len(s.actions) for s in closed)
    count = len(closed)

    def padded(name: str, fill: float, dtype: torch.dtype) -> torch.Tensor:
        data = torch.full((count, width), fill, dtype=dtype)
        for r, s in enumerate(closed):
            values_r = getattr(s, name)
            data[r, : len(values_r)] = torch.tensor(values_r, dtype=dtype)
        return data.to(device)

    mask = torch.zeros((count, width), dtype=torch.bool)
    for r, s in enumerate(closed):
        mask[r, : len(s.actions)] = True
    return TokenRollout(
        prompt_ids=[s.context for s in closed],
        completion_ids=padded("actions", policy.pad_token_id, torch.long),
        mask=mask.to(device),
        logprobs=padded("logprobs", 0.0, torch.float32),
        values=padded("values", 0.0, torch.float32),
        env_rewards=padded("rewards", 0.0, torch.float32),
        kl=padded("kl", 0.0, torch.float32),
        bootstrap=torch.tensor([s.bootstrap for s in closed], dtype=torch.float32, device=device),
        terminated=torch.tensor([s.terminated for s in closed], dtype=torch.bool, device=device),
        episode_returns=ep_returns,
        episode_lengths=ep_lengths,
        episode_passed=ep_passed,
        episode_terminated=ep_terminated,
        sample_s=sample_s,
        env_s=env_s,
    )


def _context(obs: Any, i: int, vocab_size: int) -> list[int]:
    """Row ``i``'s real token ids (the padding id of a TokenEnv is ``>= vocab_size``)."""
    row = np.asarray(obs["ids"] if isinstance(obs, dict) else obs)[i]
    return [int(t) for t in row[(row >= 0) & (row < vocab_size)]]
