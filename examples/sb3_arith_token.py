"""Stable-Baselines3 on a CodeGym token environment: learn to write one arith program token by token.

The environment is ``codegym/Arith-Token-v0`` fixed to one easy task (``--task-id``): the agent sees the
task statement as DSL tokens and emits the body of ``def f(x): return <body>`` one token at a time, then
end-of-sequence; the program runs in the sandbox and the reward is 1 if it passes every hidden test.

Two agents:

* ``--algo maskable`` (default): sb3-contrib's ``MaskablePPO`` with the grammar-aware action mask
  (``env.action_masks()``), so every program it writes is syntactically valid;
* ``--algo ppo``: plain SB3 ``PPO`` with ``MlpPolicy`` and no mask. With the sparse pass/fail reward it
  rarely sees a success among 17^k unmasked programs: in our runs it had not learned the task after 40,000
  steps (seed 0), where MaskablePPO reaches 100% greedy success after 12,000 (seeds 0-3).

Run: ``python examples/sb3_arith_token.py --timesteps 20000 --seed 0`` (about a minute on a laptop CPU).
It prints the greedy policy's success rate over ``--eval-episodes`` episodes and the program it writes.
"""

from __future__ import annotations

import argparse

from codegym.agents.sb3 import DEFAULT_TASK, TrainReport, evaluate, make_env, train

__all__ = ["DEFAULT_TASK", "TrainReport", "evaluate", "main", "make_env", "train"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", choices=("maskable", "ppo"), default="maskable")
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--task-id", default=DEFAULT_TASK)
    parser.add_argument("--max-new-tokens", type=int, default=6)
    parser.add_argument("--eval-episodes", type=int, default=20)
    args = parser.parse_args()
    report = train(
        algo=args.algo,
        timesteps=args.timesteps,
        seed=args.seed,
        task_id=args.task_id,
        max_new_tokens=args.max_new_tokens,
        eval_episodes=args.eval_episodes,
        verbose=1,
    )
    print(
        f"task {report.task_id}: greedy success rate {report.success_rate:.0%} after {report.timesteps} steps"
    )
    print(report.program)


if __name__ == "__main__":
    main()
