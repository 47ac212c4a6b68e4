"""A hand-written agent and a random agent on a CodeGym environment: the plain Gymnasium loop.

Run: ``python examples/random_agent.py --env codegym/Arith-Token-v0 --episodes 50 --seed 0``.

Nothing here knows CodeGym beyond ``gym.make``, ``reset``, ``step`` and the observation. Two agents:

* **random**: on a token env it samples uniformly among the ids the action mask allows (``--no-mask``
  for all ids; both are run); on a program env it submits a fixed guess, since random text is never a
  program.
* **hand-written** (``copy_statement``): an arith task says "Write f(x) that returns <expression>", and
  the token env shows that statement as DSL tokens, so the agent reads the prompt ids off its first
  observation and writes them back, then end-of-sequence. On a program env it reads the expression
  from the prompt text. A rule of two lines that a random agent would need luck to stumble on.

It prints the first ``--show`` episodes of each agent (task, program, verdict, reward), then the mean
reward, the hidden-test pass rate and the sandbox's verdicts of each, and saves a bar chart of the
verdicts. Check (exit status 1 when it fails): on an arith env the hand-written agent passes every
episode and beats the random agents; the plot is written. ``--quick`` plays 8 episodes per agent.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import codegym  # noqa: F401  (registers the codegym/* ids)

GUESS = "def f(x):\n    return x\n"


class Results:
    """Per-episode rewards, hidden-test verdicts and sandbox statuses of one agent."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.rewards: list[float] = []
        self.passed: list[bool] = []
        self.statuses: list[str] = []  # the sandbox's verdicts: passed, failed, syntax_error, ...

    @property
    def mean_reward(self) -> float:
        return float(np.mean(self.rewards))

    @property
    def pass_rate(self) -> float:
        return float(np.mean(self.passed))


def copy_statement(env: gym.Env, obs: Any) -> list[Any]:
    """The hand-written agent's whole episode, planned from the first observation.

    Token env: the prompt ids (every id below the padding id ``action_space.n`` in the first
    observation), then end-of-sequence. Program env: ``return <expression>`` read from the prompt.
    """
    if isinstance(env.action_space, gym.spaces.Discrete):
        ids = np.asarray(obs["ids"] if isinstance(obs, dict) else obs)
        prompt = [int(i) for i in ids if i < env.action_space.n]
        return [*prompt, env.unwrapped.eos_token_id]
    found = re.search(r"returns (.+?)\.\n", str(obs))
    return [f"def f(x):\n    return {found.group(1)}\n" if found else GUESS]


def play(env_id: str, agent: str, episodes: int, seed: int, use_mask: bool = True, show: int = 0) -> Results:
    """Play ``episodes`` episodes with ``agent`` ("random" or "hand-written") and collect the results."""
    env = gym.make(env_id, render_mode="ansi")
    rng = np.random.default_rng(seed)
    token_level = isinstance(env.action_space, gym.spaces.Discrete)
    out = Results(agent)
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        plan = copy_statement(env, obs) if agent == "hand-written" else []
        done, episode_reward, info, t = False, 0.0, {}, 0
        while not done:
            if agent == "hand-written":
                action = plan[min(t, len(plan) - 1)]
            elif token_level:
                allowed = (
                    np.flatnonzero(env.unwrapped.action_masks())
                    if use_mask
                    else np.arange(env.action_space.n)
                )
                action = int(rng.choice(allowed))
            else:
                action = GUESS
            obs, reward, terminated, truncated, info = env.step(action)
            episode_reward += float(reward)
            done = terminated or truncated
            t += 1
        out.rewards.append(episode_reward)
        out.passed.append(bool(info.get("passed")))
        out.statuses.append(str(info.get("status")))
        if episode < show:
            print(env.render())
            ending = "truncated" if truncated else "terminated"
            print(f"{agent} episode {episode}: reward {episode_reward:.2f} ({ending})\n")
    env.close()
    return out


def run(env_id: str, episodes: int, seed: int, use_mask: bool = True, verbose: bool = True) -> float:
    """Play ``episodes`` random episodes (printing each when ``verbose``); return the mean reward."""
    return play(env_id, "random", episodes, seed, use_mask, show=episodes if verbose else 0).mean_reward


def plot(results: list[Results], env_id: str, path: Path) -> None:
    """Stacked bars: the share of each agent's programs per sandbox verdict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    verdicts = sorted({v for r in results for v in r.statuses}, key=lambda v: (v != "passed", v))
    fig, ax = plt.subplots(figsize=(7.5, 3.8), dpi=120)
    bottom = np.zeros(len(results))
    for verdict in verdicts:
        share = np.array([np.mean([v == verdict for v in r.statuses]) for r in results])
        ax.bar([r.agent for r in results], share, bottom=bottom, label=verdict)
        bottom += share
    ax.set_ylabel("share of programs")
    ax.set_title(f"{env_id}: the sandbox's verdicts ({len(results[0].statuses)} episodes each)", fontsize=10)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="codegym/Arith-Token-v0")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=2, help="episodes printed per agent (default 2)")
    parser.add_argument("--no-mask", action="store_true", help="random agent: only the unmasked run")
    parser.add_argument("--quick", action="store_true", help="CI mode: 8 episodes per agent")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/random_agent.png"))
    args = parser.parse_args(argv)
    episodes = 8 if args.quick else args.episodes
    token_level = isinstance(gym.make(args.env).action_space, gym.spaces.Discrete)

    results = [play(args.env, "hand-written", episodes, args.seed, show=args.show)]
    if token_level and not args.no_mask:
        masked = play(args.env, "random", episodes, args.seed, use_mask=True, show=args.show)
        masked.agent = "random (masked)"
        results.append(masked)
    unmasked = play(args.env, "random", episodes, args.seed, use_mask=False, show=args.show)
    unmasked.agent = "random (no mask)" if token_level else "random (fixed guess)"
    results.append(unmasked)

    print(
        f"{'agent':20s} {'mean reward':>12s} {'pass rate':>10s}   verdicts "
        f"({episodes} episodes each, {args.env})"
    )
    for r in results:
        counts = ", ".join(f"{v} {r.statuses.count(v)}" for v in sorted(set(r.statuses)))
        print(f"{r.agent:20s} {r.mean_reward:12.3f} {r.pass_rate:10.0%}   {counts}")
    plot(results, args.env, args.out)
    print(f"plot: {args.out}")
    failures = []
    if "/Arith-" in args.env:
        hand, best_random = results[0], max(r.pass_rate for r in results[1:])
        if not (hand.pass_rate == 1.0 and hand.pass_rate > best_random):
            failures.append(f"hand-written pass rate {hand.pass_rate:.0%}, best random {best_random:.0%}")
    if not all(np.isfinite(r.mean_reward) for r in results):
        failures.append("a mean reward is not finite")
    if not args.out.exists():
        failures.append(f"plot {args.out} was not written")
    for failure in failures:
        print(f"check FAILED: {failure}")
    print(f"check: the hand-written agent solves arith, plot written: {'OK' if not failures else 'FAILED'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
