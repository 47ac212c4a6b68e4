"""The main job on the embedded default: agents through the standard Gymnasium API, scored honestly.

``codegym demo`` (and ``make demo``) runs, each through ``gym.make`` and nothing but ``reset``/``step``:

* the **reference agent** (submits each task's reference program) on ``codegym/Basic-Program-v0``'s
  test split: every episode must pass, which checks suites, executor and env end to end;
* the **junk agent** (submits ``pass``) on the same tasks: every episode must fail;
* a **random agent** (uniform over the grammar-aware action mask) on ``codegym/Arith-Token-v0``: the
  floor that a learning agent has to beat, on the whole suite and on one fixed easy task;
* **training**: Stable-Baselines3's ``MaskablePPO`` (sb3-contrib) learns that fixed task from the sparse
  pass/fail reward, and its greedy policy is evaluated (the ``sb3`` extra; skipped with ``--no-train``).

It prints one row per agent: episodes, mean reward, pass rate and episodes per second. CodeGym's own LLM
trainers (PPO, REINFORCE on a tiny language model) are not built yet; SB3 is the learner until then.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class AgentReport:
    """The outcome of one agent's evaluation."""

    agent: str
    env_id: str
    episodes: int
    mean_reward: float
    pass_rate: float
    episodes_per_s: float


def _program_agent(env_id: str, name: str, episodes: int | None, seed: int, junk: bool) -> AgentReport:
    env = gym.make(env_id, split="test")
    tasks = env.unwrapped.suite.task_ids
    if episodes is not None:
        tasks = tasks[:episodes]
    rewards, passes = [], []
    start = time.perf_counter()
    for i, task_id in enumerate(tasks):
        env.reset(seed=seed + i, options={"task_id": task_id})
        program = "pass\n" if junk else env.unwrapped.task.reference
        _, reward, terminated, truncated, info = env.step(program)
        assert terminated or truncated
        rewards.append(reward)
        passes.append(info["passed"])
    elapsed = time.perf_counter() - start
    env.close()
    return AgentReport(
        name, env_id, len(tasks), float(np.mean(rewards)), float(np.mean(passes)), len(tasks) / elapsed
    )


def _random_token_agent(env_id: str, episodes: int, seed: int, **env_kwargs: object) -> AgentReport:
    env = gym.make(env_id, **env_kwargs)
    rng = np.random.default_rng(seed)
    rewards, passes = [], []
    start = time.perf_counter()
    for i in range(episodes):
        env.reset(seed=seed + i)
        done = False
        reward, info = 0.0, {}
        while not done:
            legal = np.flatnonzero(env.unwrapped.action_masks())
            _, reward, terminated, truncated, info = env.step(int(rng.choice(legal)))
            done = terminated or truncated
        rewards.append(reward)
        passes.append(bool(info.get("passed", False)))
    elapsed = time.perf_counter() - start
    env.close()
    name = "random:1" if env_kwargs.get("task_id") else "random"
    return AgentReport(
        name, env_id, episodes, float(np.mean(rewards)), float(np.mean(passes)), episodes / elapsed
    )


def _trained_agent(timesteps: int, seed: int, eval_episodes: int) -> AgentReport:
    from codegym.agents.sb3 import train

    start = time.perf_counter()
    report = train(algo="maskable", timesteps=timesteps, seed=seed, eval_episodes=eval_episodes)
    elapsed = time.perf_counter() - start
    rate = report.success_rate
    return AgentReport("ppo:1", "codegym/Arith-Token-v0", eval_episodes, rate, rate, timesteps / elapsed)


def run_demo(episodes: int | None = None, seed: int = 0, train_timesteps: int = 12_000) -> list[AgentReport]:
    """Run the agents; ``episodes`` caps each evaluation (default: the whole test split, 200 random).

    ``train_timesteps=0`` skips the training row.
    """
    import codegym  # noqa: F401  (registers the env ids)

    reports = [
        _program_agent("codegym/Basic-Program-v0", "reference", episodes, seed, junk=False),
        _program_agent("codegym/Basic-Program-v0", "junk", episodes, seed, junk=True),
        _random_token_agent("codegym/Arith-Token-v0", episodes or 200, seed),
    ]
    if train_timesteps > 0:
        from codegym.agents.sb3 import DEFAULT_TASK

        reports.append(
            _random_token_agent("codegym/Arith-Token-v0", episodes or 200, seed, task_id=DEFAULT_TASK)
        )
        reports.append(_trained_agent(train_timesteps, seed, eval_episodes=min(episodes or 20, 20)))
    return reports


def _cmd_demo(args: argparse.Namespace) -> int:
    print("CodeGym demo: agents through gym.make/reset/step; programs judged by the local sandbox.")
    reports = run_demo(args.episodes, args.seed, 0 if args.no_train else args.timesteps)
    print(f"{'agent':<10} {'env':<26} {'episodes':>8} {'reward':>7} {'pass':>6} {'ep/s':>8}")
    for r in reports:
        print(
            f"{r.agent:<10} {r.env_id:<26} {r.episodes:>8} {r.mean_reward:>7.3f} "
            f"{r.pass_rate:>6.1%} {r.episodes_per_s:>8.1f}"
        )
    print("(random:1 and ppo:1 attempt the fixed task arith/d1/s0/0; ppo:1's ep/s counts training steps)")
    reference, junk = reports[0], reports[1]
    ok = reference.pass_rate == 1.0 and junk.pass_rate == 0.0
    print("check: references all pass, junk all fails:", "OK" if ok else "FAILED")
    if len(reports) == 5:
        learned = reports[4].pass_rate > reports[3].pass_rate
        print("check: the trained policy beats the random one on its task:", "OK" if learned else "FAILED")
        ok = ok and learned
    return 0 if ok else 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand to the CLI."""
    p = sub.add_parser(
        "demo", help="the main job: reference, junk and random agents through the Gymnasium API"
    )
    p.add_argument("--episodes", type=int, default=None, help="cap on episodes per agent (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed for env resets, the random agent and training")
    p.add_argument("--timesteps", type=int, default=12_000, help="MaskablePPO training steps (default 12000)")
    p.add_argument("--no-train", action="store_true", help="skip the training row (no sb3 extra needed)")
    p.set_defaults(func=_cmd_demo)
