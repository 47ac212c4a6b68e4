"""Reward shaping: sparse vs dense vs potential-based rewards, same learner, env and seeds.

The learner is sb3-contrib's ``MaskablePPO`` (an MLP policy with the grammar mask, the set-up of
``examples/sb3_arith_token.py``); the env is ``codegym/Arith-Token-v0`` fixed to one task: write the body
of ``def f(x): return <body>`` one DSL token at a time, then end-of-sequence; the program runs in the
sandbox against the task's hidden tests. Only the *delivery* of the reward changes between the three
runs of a seed (the ``codegym.wrappers``):

* ``sparse``: ``SparseReward``: pass/fail (1 if every hidden test passes), at the episode's last step.
* ``dense``: ``DenseReward(line_scorer=None)``: pass/fail plus partial credit, the share of hidden tests
  passed (a DSL body is one line, so the per-line piece never fires here; only the per-test piece does).
* ``potential``: ``PotentialShaping(PrefixSyntaxMatch(), gamma=1)``: pass/fail plus
  ``F = Phi(s') - Phi(s)`` at every token, with ``Phi`` = syntax match (CodeBLEU's AST subtrees) of the
  program so far against the task's reference. Over an episode the terms sum to ``-Phi(s_0)``, a
  constant, so the best policy is unchanged (Ng et al. 1999); only the learning signal per token is new.

The comparison is the honest metric, **the share of training episodes whose program passes the hidden
tests**, not the shaped reward (which differs between the runs by construction). The left panel shows it
against environment steps (mean over seeds, band = min to max), the right panel the return the learner
actually optimized.

Checks (exit status 1 when one fails): every logged episode's shaped return equals what its wrapper
promises (sparse: pass/fail; dense: pass/fail + pass rate; potential: pass/fail - Phi(s_0) when the
episode terminated), each run has the same number of steps and finite curves, and the plot is written.
These hold in ``--quick`` too. Which delivery learns faster is printed, not asserted: read the numbers.

Run: ``python examples/reward_shaping.py`` (3 seeds x 3 rewards x 12,000 steps on 2 worker processes,
about 2 minutes on 2 CPU cores) or ``--quick`` (one seed, 1,024 steps each, about 20 s).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

import codegym  # noqa: F401  (registers the codegym/* ids)
from codegym.wrappers import DenseReward, PotentialShaping, PrefixSyntaxMatch, SparseReward

MODES = ("sparse", "dense", "potential")
TASK_ID = "arith/d1/s0/0"  # "Write f(x) that returns x + 5": found in minutes, not in seconds
MAX_NEW_TOKENS = 6
THRESHOLD = 0.5  # "learned": a bin of episodes with at least this pass rate
BIN = 512  # environment steps per point of the curves (one MaskablePPO rollout)


# ---- the environment: one task, three ways of delivering its reward ---------------------------------------


@dataclass
class Episode:
    """One finished episode as the learner saw it and as the hidden tests judged it."""

    end_step: int
    """Environment steps taken (in this run) when the episode ended."""
    shaped_return: float
    """Sum of the rewards the learner received."""
    passed: bool
    """The honest metric: the program passed every hidden test."""
    pass_rate: float
    """Share of hidden tests passed."""
    start_potential: float
    """Phi(s_0) of the potential-based run (0 elsewhere)."""
    terminated: bool
    """Ended with end-of-sequence (True) or at the token budget (False)."""
    program: str


class EpisodeLog(gym.Wrapper):
    """Record every episode's shaped return and the hidden tests' verdict (the outermost wrapper)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.episodes: list[Episode] = []
        self.steps = 0
        self._return = 0.0
        self._start_potential = 0.0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._return = 0.0
        self._start_potential = float(info.get("potential", 0.0))  # set by PotentialShaping
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        self._return += float(reward)
        if terminated or truncated:
            self.episodes.append(
                Episode(
                    end_step=self.steps,
                    shaped_return=self._return,
                    passed=bool(info["passed"]),
                    pass_rate=float(info["pass_rate"]),
                    start_potential=self._start_potential,
                    terminated=bool(terminated),
                    program=self.env.unwrapped.current_program,
                )
            )
        return obs, reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """The grammar mask, for MaskablePPO (wrappers do not forward it)."""
        return self.env.unwrapped.action_masks()


def make_env(mode: str, task_id: str = TASK_ID) -> EpisodeLog:
    """The fixed-task token env with the reward delivery ``mode``, inside an :class:`EpisodeLog`."""
    env: gym.Env = gym.make("codegym/Arith-Token-v0", task_id=task_id, max_new_tokens=MAX_NEW_TOKENS)
    if mode == "sparse":
        env = SparseReward(env)
    elif mode == "dense":
        env = DenseReward(env, line_scorer=None, test_scale=1.0)
    elif mode == "potential":
        env = PotentialShaping(env, PrefixSyntaxMatch(scale=1.0), gamma=1.0)  # gamma = the learner's
    else:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return EpisodeLog(env)


def promised_return(mode: str, ep: Episode) -> float | None:
    """What the wrapper promises the episode's shaped return is (None where it promises nothing)."""
    if mode == "sparse":
        return float(ep.passed)
    if mode == "dense":
        return float(ep.passed) + ep.pass_rate
    if ep.terminated:  # Phi(terminal) = 0: the shaping terms telescope to -Phi(s_0)
        return float(ep.passed) - ep.start_potential
    return None  # a truncated episode keeps Phi of its last state


# ---- one run: MaskablePPO, one seed, one reward delivery --------------------------------------------------


def train_one(mode: str, seed: int, timesteps: int, task_id: str = TASK_ID) -> dict[str, Any]:
    """Train MaskablePPO for ``timesteps`` steps with reward delivery ``mode``; return the episode log."""
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.utils import set_random_seed

    set_random_seed(seed)
    torch.set_num_threads(1)
    env = make_env(mode, task_id)
    env.reset(seed=seed)
    model = MaskablePPO(  # the hyper-parameters of examples/sb3_arith_token.py
        "MlpPolicy",
        env,
        n_steps=BIN,
        batch_size=128,
        n_epochs=8,
        learning_rate=1e-3,
        gamma=1.0,
        ent_coef=0.01,
        seed=seed,
        verbose=0,
    )
    started = time.perf_counter()
    model.learn(total_timesteps=timesteps)
    seconds = time.perf_counter() - started
    # The greedy policy's program after training, judged by the hidden tests.
    eval_env = make_env("sparse", task_id)
    obs, _ = eval_env.reset(seed=seed + 1)
    done = False
    while not done:
        action, _ = model.predict(obs, deterministic=True, action_masks=eval_env.action_masks())
        obs, _, terminated, truncated, _ = eval_env.step(int(action))
        done = terminated or truncated
    greedy = eval_env.episodes[-1]
    env.close()
    eval_env.close()
    return {
        "mode": mode,
        "seed": seed,
        "steps": env.steps,
        "seconds": seconds,
        "episodes": [asdict(e) for e in env.episodes],
        "greedy_passed": greedy.passed,
        "greedy_program": greedy.program,
    }


def _train_job(args: tuple[str, int, int, str]) -> dict[str, Any]:
    return train_one(*args)


# ---- curves, summary, plot --------------------------------------------------------------------------------


def binned(episodes: list[dict[str, Any]], key: str, timesteps: int) -> np.ndarray:
    """Mean of ``key`` over the episodes that ended in each bin of ``BIN`` steps (NaN for an empty bin)."""
    bins = math.ceil(timesteps / BIN)
    sums, counts = np.zeros(bins), np.zeros(bins)
    for ep in episodes:
        b = min((ep["end_step"] - 1) // BIN, bins - 1)
        sums[b] += float(ep[key])
        counts[b] += 1
    with np.errstate(invalid="ignore"):
        return sums / counts


def steps_to_threshold(curve: np.ndarray) -> int | None:
    """Environment steps until the first bin whose pass rate reaches ``THRESHOLD`` (None: never)."""
    hits = np.flatnonzero(np.nan_to_num(curve) >= THRESHOLD)
    return int((hits[0] + 1) * BIN) if len(hits) else None


def plot(results: list[dict[str, Any]], timesteps: int, path: Path, task_id: str) -> None:
    """Two panels: honest pass rate and shaped return per bin of steps, one line per reward delivery."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = (np.arange(math.ceil(timesteps / BIN)) + 1) * BIN
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=120)
    for mode, color in zip(MODES, ("tab:gray", "tab:blue", "tab:orange")):
        runs = [r for r in results if r["mode"] == mode]
        for ax, key in zip(axes, ("passed", "shaped_return")):
            curves = np.array([binned(r["episodes"], key, timesteps) for r in runs])
            mean = np.nanmean(curves, axis=0)
            seeds = f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"
            ax.plot(x, mean, color=color, label=f"{mode} ({seeds})")
            if len(runs) > 1:
                ax.fill_between(x, np.nanmin(curves, 0), np.nanmax(curves, 0), color=color, alpha=0.15)
    axes[0].set_title(f"honest metric: hidden-test pass rate ({task_id})")
    axes[0].set_ylabel("share of episodes that pass")
    axes[0].set_ylim(-0.02, 1.02)
    axes[1].set_title("what the learner optimized: shaped episode return")
    axes[1].set_ylabel("mean episode return")
    for ax in axes:
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("MaskablePPO on codegym/Arith-Token-v0: sparse vs dense vs potential-based reward")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def check(results: list[dict[str, Any]], timesteps: int, out: Path) -> list[str]:
    """The example's checks; returns the failures (empty when all pass)."""
    failures = []
    for r in results:
        name = f"{r['mode']} seed {r['seed']}"
        if r["steps"] < timesteps:
            failures.append(f"{name}: {r['steps']} steps, expected at least {timesteps}")
        if not r["episodes"]:
            failures.append(f"{name}: no episode finished")
        for ep in r["episodes"]:
            promised = promised_return(r["mode"], Episode(**ep))
            if promised is not None and abs(ep["shaped_return"] - promised) > 1e-6:
                failures.append(
                    f"{name}: an episode's shaped return {ep['shaped_return']:.6f} != {promised:.6f} "
                    f"promised by the wrapper ({ep['program']!r})"
                )
                break
        pass_curve = binned(r["episodes"], "passed", timesteps)
        if not np.isfinite(pass_curve).all():
            failures.append(f"{name}: a bin of {BIN} steps without a finished episode")
    if not out.exists() or out.stat().st_size == 0:
        failures.append(f"plot {out} was not written")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI mode: one seed, 1,024 steps per run")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--timesteps", type=int, default=12_000, help="steps per run (default 12,000)")
    parser.add_argument("--task-id", default=TASK_ID, help=f"the arith task learned (default {TASK_ID})")
    parser.add_argument("--workers", type=int, default=2, help="parallel runs (default 2, one per core)")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/reward_shaping.png"))
    args = parser.parse_args(argv)
    seeds, timesteps = (1, 2 * BIN) if args.quick else (args.seeds, args.timesteps)

    started = time.perf_counter()
    print(f"MaskablePPO on codegym/Arith-Token-v0, task {args.task_id}, {timesteps} steps per run")
    print(f"rewards: {', '.join(MODES)}; seeds 0-{seeds - 1}; {args.workers} worker processes")
    jobs = [(mode, seed, timesteps, args.task_id) for seed in range(seeds) for mode in MODES]
    if args.workers > 1:
        with multiprocessing.get_context("spawn").Pool(min(args.workers, len(jobs))) as pool:
            results = pool.map(_train_job, jobs)
    else:
        results = [_train_job(job) for job in jobs]

    print(
        f"\n{'reward':10s} {'seed':>4s} {'pass rate, first 1/4':>21s} {'last 1/4':>9s} "
        f"{'steps to ' + format(THRESHOLD, '.0%'):>13s} {'greedy':>7s}"
    )
    for r in results:
        curve = binned(r["episodes"], "passed", timesteps)
        quarter = max(1, len(curve) // 4)
        reached = steps_to_threshold(curve)
        print(
            f"{r['mode']:10s} {r['seed']:4d} {np.nanmean(curve[:quarter]):21.2f} "
            f"{np.nanmean(curve[-quarter:]):9.2f} {reached if reached else 'never':>13} "
            f"{'pass' if r['greedy_passed'] else 'fail':>7s}"
        )
    print("\nmedian steps to a 50% pass rate (never = the run's length), and the greedy program:")
    summary: dict[str, Any] = {}
    for mode in MODES:
        runs = [r for r in results if r["mode"] == mode]
        reached = [steps_to_threshold(binned(r["episodes"], "passed", timesteps)) or timesteps for r in runs]
        summary[mode] = {"median_steps_to_threshold": float(np.median(reached)), "steps": reached}
        programs = sorted({r["greedy_program"].strip().splitlines()[-1].strip() for r in runs})
        print(f"  {mode:10s} {np.median(reached):8.0f}   greedy: {' | '.join(programs)}")

    plot(results, timesteps, args.out, args.task_id)
    data = {"timesteps": timesteps, "seeds": seeds, "task_id": args.task_id, "summary": summary}
    data["runs"] = [{k: v for k, v in r.items() if k != "episodes"} for r in results]
    args.out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"\nplot: {args.out}  (data: {args.out.with_suffix('.json')})")
    failures = check(results, timesteps, args.out)
    for failure in failures:
        print(f"check FAILED: {failure}")
    print(
        f"checks: shaped returns match each wrapper's promise, curves complete, plot written: "
        f"{'OK' if not failures else 'FAILED'}  ({time.perf_counter() - started:.0f} s)"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
