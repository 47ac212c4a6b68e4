"""Environment speed, measured against peers in the same run (both sides through ``gym.make``).

1. Token-level stepping: non-terminal ``TokenEnv`` steps per second (``codegym/Arith-Token-v0``, the 17-id
   DSL vocabulary, one token per step, no execution) against ``CartPole-v1`` steps per second. Target: a
   ratio of at least 1.0. Resets are not timed on either side.
2. Program-level episodes: ``codegym/<Suite>-Program-v0`` with ``num_envs`` sub-environments, each step
   submitting every task's reference (cache off, so every program really runs), through our batched
   :class:`~codegym.envs.vector.CodeVectorEnv` (``gym.make_vec``'s vector entry point: one ``run_batch``
   per step) against Gymnasium's ``SyncVectorEnv`` of single environments (one ``run`` per env). Both
   autoreset on the same step, so every step is one episode per env.

Run: ``python bench/env_step.py`` (about half a minute). Options: ``--suite``, ``--num-envs``,
``--token-steps``, ``--program-steps``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import codegym  # noqa: F401  (registers the ids)


def time_steps(env: gym.Env, actions: list[int], episode_len: int, total: int) -> float:
    """Return ``env.step`` calls per second over ``total`` steps; resets (every ``episode_len``) untimed."""
    env.reset(seed=0)
    elapsed, counted, i = 0.0, 0, 0
    step = env.step
    while counted < total:
        n = min(episode_len, total - counted)
        start = time.perf_counter()
        taken = 0
        while taken < n:
            _, _, terminated, truncated, _ = step(actions[i])
            i = (i + 1) % len(actions)
            taken += 1
            if terminated or truncated:
                break
        elapsed += time.perf_counter() - start
        counted += taken
        env.reset()
    return counted / elapsed


def token_vs_cartpole(steps: int) -> tuple[float, float]:
    """Return (TokenEnv non-terminal steps/s, CartPole-v1 steps/s)."""
    token = gym.make("codegym/Arith-Token-v0", max_new_tokens=64)
    tokens = [i for i in range(token.action_space.n) if i != token.unwrapped.eos_token_id]
    rng = np.random.default_rng(0)
    token_actions = [int(a) for a in rng.choice(tokens, size=4096)]
    # 63 body tokens fit in the budget of 64 actions without reaching it: every timed step is non-terminal.
    token_rate = time_steps(token, token_actions, episode_len=63, total=steps)
    cartpole = gym.make("CartPole-v1")
    cart_actions = [int(a) for a in rng.integers(0, 2, size=4096)]
    cart_rate = time_steps(cartpole, cart_actions, episode_len=10**9, total=steps)
    token.close()
    cartpole.close()
    return token_rate, cart_rate


def episodes_per_second(make: Callable[[], gym.vector.VectorEnv], steps: int) -> tuple[float, float]:
    """Return (episodes/s, pass rate) of a vector of program envs that submit their tasks' references."""
    envs = make()
    envs.reset(seed=0)
    subenvs = envs.unwrapped.envs
    passed = episodes = 0
    start = time.perf_counter()
    for _ in range(steps):
        actions = tuple(env.unwrapped.task.reference for env in subenvs)
        _, rewards, terminations, truncations, _ = envs.step(actions)
        assert (terminations | truncations).all()
        passed += int(rewards.sum())
        episodes += len(subenvs)
    elapsed = time.perf_counter() - start
    envs.close()
    return episodes / elapsed, passed / episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token-steps", type=int, default=200_000)
    parser.add_argument("--program-steps", type=int, default=25)
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--suite", default="Basic", help="id part: Basic, HumanEval, Arith, ListOps")
    args = parser.parse_args()

    token_rate, cart_rate = token_vs_cartpole(args.token_steps)
    print(f"TokenEnv (Arith-Token-v0) non-terminal steps/s : {token_rate:12,.0f}")
    print(f"CartPole-v1 steps/s                            : {cart_rate:12,.0f}")
    print(
        f"ratio TokenEnv / CartPole                      : {token_rate / cart_rate:12.2f}   (target >= 1.0)"
    )

    env_id = f"codegym/{args.suite}-Program-v0"
    kwargs = {"executor_kwargs": {"cache": False}}
    warm = gym.make(env_id, **kwargs)  # start the shared executor's workers before timing either side
    warm.reset(seed=0)
    warm.step(warm.unwrapped.task.reference)

    def batched() -> gym.vector.VectorEnv:
        return gym.make_vec(
            env_id,
            num_envs=args.num_envs,
            vectorization_mode="vector_entry_point",
            autoreset_mode="SameStep",
            **kwargs,
        )

    def sync() -> gym.vector.VectorEnv:
        return gym.make_vec(
            env_id,
            num_envs=args.num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
            **kwargs,
        )

    ours, ours_pass = episodes_per_second(batched, args.program_steps)
    theirs, theirs_pass = episodes_per_second(sync, args.program_steps)
    warm.close()
    print(f"{env_id}, {args.num_envs} envs, references, cache off:")
    print(f"  CodeVectorEnv (one run_batch per step) episodes/s : {ours:10,.1f}   pass rate {ours_pass:.2f}")
    print(
        f"  SyncVectorEnv of single envs episodes/s           : {theirs:10,.1f}   pass rate {theirs_pass:.2f}"
    )
    print(f"  ratio batched / sync                              : {ours / theirs:10.2f}")


if __name__ == "__main__":
    main()
