"""A random agent on any CodeGym environment: the smallest complete Gymnasium loop.

Run: ``python examples/random_agent.py --env codegym/Arith-Token-v0 --episodes 20 --seed 0``.

On a token env the agent samples uniformly among the ids the action mask allows (``--no-mask`` for all
ids); on a program env it submits a fixed guess, since random text is never a program. It prints each
episode's task, program, verdict and reward, then the mean reward.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

import codegym  # noqa: F401  (registers the codegym/* ids)

GUESS = "def f(x):\n    return x\n"


def run(env_id: str, episodes: int, seed: int, use_mask: bool = True, verbose: bool = True) -> float:
    """Play ``episodes`` random episodes and return the mean episode reward."""
    env = gym.make(env_id, render_mode="ansi")
    rng = np.random.default_rng(seed)
    token_level = isinstance(env.action_space, gym.spaces.Discrete)
    total = 0.0
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        done, episode_reward, info = False, 0.0, {}
        while not done:
            if token_level:
                allowed = (
                    np.flatnonzero(env.unwrapped.action_masks())
                    if use_mask
                    else np.arange(env.action_space.n)
                )
                action = int(rng.choice(allowed))
            else:
                action = GUESS
            _, reward, terminated, truncated, info = env.step(action)
            episode_reward += float(reward)
            done = terminated or truncated
        total += episode_reward
        if verbose:
            print(env.render())
            ending = "truncated" if truncated else "terminated"
            print(f"episode {episode}: reward {episode_reward:.2f} ({ending})\n")
    env.close()
    return total / episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="codegym/Arith-Token-v0")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-mask", action="store_true", help="sample every token id, not only the masked ones"
    )
    args = parser.parse_args()
    mean = run(args.env, args.episodes, args.seed, use_mask=not args.no_mask)
    print(f"mean reward over {args.episodes} episodes: {mean:.3f}")


if __name__ == "__main__":
    main()
