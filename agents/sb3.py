"""Stable-Baselines3 glue: train an SB3 agent on a CodeGym token environment and evaluate it greedily.

The environment is ``codegym/Arith-Token-v0`` fixed to one easy task: the agent sees the task statement as
DSL tokens and emits the body of ``def f(x): return <body>`` one token at a time, then end-of-sequence;
the program runs in the sandbox and the reward is 1 if it passes every hidden test. sb3-contrib's
``MaskablePPO`` uses the grammar-aware action mask (``env.action_masks()``); plain ``PPO`` has none.
Used by ``examples/sb3_arith_token.py`` and by ``codegym demo``. Needs the ``sb3`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym

import codegym  # noqa: F401  (registers the codegym/* ids)

DEFAULT_TASK = "arith/d1/s0/0"


@dataclass
class TrainReport:
    """What :func:`train` returns.

    Attributes:
        success_rate: Fraction of greedy evaluation episodes whose program passed.
        program: The program the greedy policy writes.
        timesteps: Environment steps trained.
        task_id: The task learned.
    """

    success_rate: float
    program: str
    timesteps: int
    task_id: str


def make_env(task_id: str, seed: int, max_new_tokens: int) -> gym.Env:
    """The fixed-task arith token environment, reset once with ``seed``.

    Args:
        task_id: The arith task every episode attempts.
        seed: Seeds the first reset.
        max_new_tokens: The token budget of an episode (end-of-sequence included).

    Returns:
        The environment, made with ``gym.make`` (so with Gymnasium's checker wrappers).
    """
    env = gym.make("codegym/Arith-Token-v0", task_id=task_id, max_new_tokens=max_new_tokens)
    env.reset(seed=seed)
    return env


def evaluate(model: Any, env: gym.Env, episodes: int, masked: bool) -> tuple[float, str]:
    """Greedy success rate over ``episodes`` and the last program written.

    Args:
        model: A trained SB3 model (``predict(obs, deterministic=True)``).
        env: The environment to evaluate on.
        episodes: How many episodes to run.
        masked: Pass the env's action masks to ``predict`` (MaskablePPO).

    Returns:
        ``(success_rate, program)``: the fraction of episodes whose program passed, and the last program.
    """
    successes, program = 0, ""
    for _ in range(episodes):
        obs, _ = env.reset()
        done = False
        info: dict[str, Any] = {}
        while not done:
            kwargs = {"action_masks": env.unwrapped.action_masks()} if masked else {}
            action, _ = model.predict(obs, deterministic=True, **kwargs)
            obs, _, terminated, truncated, info = env.step(int(action))
            done = terminated or truncated
        successes += bool(info.get("passed"))
        program = env.unwrapped.current_program
    return successes / episodes, program


def train(
    *,
    algo: str = "maskable",
    timesteps: int = 20_000,
    seed: int = 0,
    task_id: str = DEFAULT_TASK,
    max_new_tokens: int = 6,
    eval_episodes: int = 20,
    verbose: int = 0,
    callback: Any = None,
) -> TrainReport:
    """Train ``algo`` ("maskable" or "ppo") on the fixed task and evaluate the greedy policy.

    Args:
        algo: ``"maskable"`` (sb3-contrib's MaskablePPO with the grammar mask) or ``"ppo"`` (plain PPO).
        timesteps: Environment steps of training.
        seed: Seeds SB3, the training env and (``seed + 1``) the evaluation env.
        task_id: The arith task learned.
        max_new_tokens: The token budget of an episode.
        eval_episodes: Greedy episodes of the evaluation.
        verbose: SB3's verbosity.
        callback: An SB3 callback passed to ``model.learn`` (e.g. to record every episode's verdict).

    Returns:
        A :class:`TrainReport` with the greedy success rate and the program written.

    Raises:
        ValueError: for an unknown ``algo``.
    """
    if algo not in ("maskable", "ppo"):
        raise ValueError(f"algo must be 'maskable' or 'ppo', got {algo!r}")
    import torch
    from stable_baselines3.common.utils import set_random_seed

    set_random_seed(seed)
    torch.set_num_threads(1)
    env = make_env(task_id, seed, max_new_tokens)
    hyper: dict[str, Any] = dict(
        n_steps=512,
        batch_size=128,
        n_epochs=8,
        learning_rate=1e-3,
        gamma=1.0,
        ent_coef=0.01,
        seed=seed,
        verbose=verbose,
    )
    if algo == "maskable":
        from sb3_contrib import MaskablePPO

        model: Any = MaskablePPO("MlpPolicy", env, **hyper)
    else:
        from stable_baselines3 import PPO

        model = PPO("MlpPolicy", env, **hyper)
    model.learn(total_timesteps=timesteps, callback=callback)
    eval_env = make_env(task_id, seed + 1, max_new_tokens)
    rate, program = evaluate(model, eval_env, eval_episodes, masked=algo == "maskable")
    env.close()
    eval_env.close()
    return TrainReport(success_rate=rate, program=program, timesteps=timesteps, task_id=task_id)
