"""The main job on the embedded default: agents through the standard Gymnasium API, scored honestly.

``codegym demo`` (and ``make demo``) runs, each through ``gym.make`` and nothing but ``reset``/``step``:

* the **reference agent** (submits each task's reference program) on ``codegym/Basic-Program-v0``'s
  test split: every episode must pass, which checks suites, executor and env end to end;
* the **junk agent** (submits ``pass``) on the same tasks: every episode must fail;
* a **random agent** (uniform over the grammar-aware action mask) on ``codegym/Arith-Token-v0``: the
  floor that a learning agent has to beat.

It prints one row per agent: episodes, mean reward, pass rate and episodes per second. The trainers of a
later release turn this into training; until then it is an evaluation, and it says so.
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


def _random_token_agent(env_id: str, episodes: int, seed: int) -> AgentReport:
    env = gym.make(env_id)
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
    return AgentReport(
        "random", env_id, episodes, float(np.mean(rewards)), float(np.mean(passes)), episodes / elapsed
    )


def run_demo(episodes: int | None = None, seed: int = 0) -> list[AgentReport]:
    """Run the three agents; ``episodes`` caps each evaluation (default: the whole test split, 200 random)."""
    import codegym  # noqa: F401  (registers the env ids)

    return [
        _program_agent("codegym/Basic-Program-v0", "reference", episodes, seed, junk=False),
        _program_agent("codegym/Basic-Program-v0", "junk", episodes, seed, junk=True),
        _random_token_agent("codegym/Arith-Token-v0", episodes or 200, seed),
    ]


def _cmd_demo(args: argparse.Namespace) -> int:
    print("CodeGym demo: agents through gym.make/reset/step; programs judged by the local sandbox.")
    reports = run_demo(args.episodes, args.seed)
    print(f"{'agent':<10} {'env':<26} {'episodes':>8} {'reward':>7} {'pass':>6} {'ep/s':>8}")
    for r in reports:
        print(
            f"{r.agent:<10} {r.env_id:<26} {r.episodes:>8} {r.mean_reward:>7.3f} "
            f"{r.pass_rate:>6.1%} {r.episodes_per_s:>8.1f}"
        )
    reference, junk = reports[0], reports[1]
    ok = reference.pass_rate == 1.0 and junk.pass_rate == 0.0
    print("check: references all pass, junk all fails:", "OK" if ok else "FAILED")
    return 0 if ok else 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand to the CLI."""
    p = sub.add_parser(
        "demo", help="the main job: reference, junk and random agents through the Gymnasium API"
    )
    p.add_argument("--episodes", type=int, default=None, help="cap on episodes per agent (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed for env resets and the random agent")
    p.set_defaults(func=_cmd_demo)
