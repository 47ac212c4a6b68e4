"""Reward hacking by a real learner: the default LLM finds the hack of a compile-only reward by itself.

``examples/reward_hacking.py`` shows the hacks by hand (exact sums over three candidate programs). Here
nothing is hand-made: the embedded default model (a 0.92M GPT-2) is trained with REINFORCE (GRPO
baseline) on arith tasks, three times from the same weights, seed and budget:

1. ``hackable``: the reward is ``codegym.rewards.hacking.make_hackable_env("compile_only")``'s: +1 if the
   program compiles, -1 if not. Nothing asks for a correct program.
2. ``honest``: the same env with ``reward_fn=pass_fail``: 1 only if every hidden test passes in the
   sandbox (the expected values never enter it).
3. ``hackable + KL``: the compile-only reward minus ``beta * KL(policy || default model)`` (REINFORCE's
   ``kl_coef``, the k1 estimate per program, Ziegler et al. 2019).

Every run also records what the hidden tests say about each training program, which is how the hack
shows: under the compile-only reward the policy's reward climbs to its maximum while its hidden-test
pass rate falls to zero, and the programs it ends up writing are empty (an empty file compiles: the
model discovers "say nothing", this env's ``print("hello world")``). With the honest reward that pays
nothing; with the KL penalty the drift away from the default model costs more than it earns.

The plot has three panels: the compile-only reward of the training programs, their hidden-test pass
rate (both per update, smoothed), and held-out pass@1 / KL to the default model after each run.

Checks (exit status 1 when one fails): the compile-only reward equals +1/-1 by whether each recorded
program compiles, no program that fails to compile passes the hidden tests, the curves have one finite
point per update, and the plot is written. The full run also checks what it claims: the hackable run's
reward rose while its pass rate fell, the honest run's pass rate ended above the hackable run's, and
the KL run stayed closer to the default model and passed more held-out tests than the hackable run.

Run: ``python examples/llm_reward_hacking.py`` (3 runs x 120 updates of 32 programs, about 4 minutes on
2 CPU cores) or ``--quick`` (3 runs x 3 small updates, structure checks only, about 30 s).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from codegym.envs import ProgramEnv

import codegym
from codegym.rewards import pass_fail
from codegym.rewards.hacking import make_hackable_env
from codegym.rewards.outcome import program_compiles

SUITE_KWARGS = {"n": 2000, "seed": 2, "difficulty": [1, 2, 3]}  # the training tasks of `make demo`
HELDOUT_KWARGS = {"n": 600, "seed": 1, "difficulty": [1, 2, 3]}  # its held-out tasks (test split)


@dataclass
class RunSpec:
    """One training run: the reward it is trained on and the KL coefficient."""

    name: str
    reward: str
    """``compile_only`` (the hackable reward) or ``pass_fail`` (the honest one)."""
    kl_coef: float


# ---- recording what the hidden tests say about every training program ------------------------------------


@dataclass
class ProgramLog:
    """Per update: the programs a rollout submitted, the reward paid and the hidden tests' verdicts."""

    programs: list[list[str]] = field(default_factory=list)
    rewards: list[list[float]] = field(default_factory=list)
    passed: list[list[bool]] = field(default_factory=list)


class RecordPrograms(gym.vector.VectorWrapper):
    """Pass every step through unchanged and keep its programs, rewards and ``info["passed"]``."""

    def __init__(self, env: gym.vector.VectorEnv, log: ProgramLog) -> None:
        super().__init__(env)
        self.log = log

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        self.log.programs.append([str(a) for a in actions])
        self.log.rewards.append([float(r) for r in rewards])
        self.log.passed.append([bool(p) for p in infos["passed"]])
        return obs, rewards, terminated, truncated, infos


def make_envs(reward: str, num_envs: int, log: ProgramLog) -> gym.vector.VectorEnv:
    """A vector of arith program envs (train split) paying ``reward``, recorded into ``log``."""
    suite = codegym.load_suite("arith", **SUITE_KWARGS).split("train")

    def one() -> gym.Env:
        if reward == "compile_only":
            return make_hackable_env("compile_only", suite)  # reward_fn=compiles: +1 / -1
        return ProgramEnv(suite, reward_fn=pass_fail)

    return RecordPrograms(gym.vector.SyncVectorEnv([one] * num_envs), log)


# ---- held-out measurement ---------------------------------------------------------------------------------


def measure(policy: Any, reference: Any, tasks: list[Any], samples: int, seed: int) -> dict[str, float]:
    """Held-out pass@1, compile rate, share of empty programs and KL(policy || reference) in nats.

    The KL is the k1 estimate ``mean over samples of sum_t (log p - log p_ref)`` on samples from the
    policy at temperature 1 (unbiased; what REINFORCE's ``kl_coef`` penalizes).
    """
    import torch

    out = policy.sample([t.prompt for t in tasks], n=samples, max_new_tokens=64, temperature=1.0, seed=seed)
    with torch.no_grad():
        ref_logprobs = reference.log_probs(out.prompt_ids, out.completion_ids, out.mask)
    kl = float(((out.logprobs - ref_logprobs) * out.mask).sum(-1).mean())
    pairs = [(tasks[i // samples], text) for i, text in enumerate(out.texts)]
    with codegym.Executor() as executor:
        results = executor.run_batch(pairs)
    return {
        "pass_at_1": float(np.mean([r.passed for r in results])),
        "compiles": float(np.mean([program_compiles(text) for text in out.texts])),
        "empty": float(np.mean([not text.strip() for text in out.texts])),
        "kl": kl,
    }


# ---- one run ----------------------------------------------------------------------------------------------


def train_run(
    spec: RunSpec, *, updates: int, num_envs: int, lr: float, seed: int, heldout: list[Any], samples: int
) -> dict[str, Any]:
    """Train the default model for ``updates`` REINFORCE-GRPO updates under ``spec``; return its record."""
    import torch
    from codegym.agents import REINFORCE, LMPolicy, REINFORCEConfig

    torch.manual_seed(seed)
    policy = LMPolicy.from_pretrained("default", device="cpu")
    reference = LMPolicy.from_pretrained("default", device="cpu")  # the model every run starts from
    log = ProgramLog()
    envs = make_envs(spec.reward, num_envs, log)
    config = REINFORCEConfig(baseline="grpo", group_size=4, learning_rate=lr, kl_coef=spec.kl_coef, seed=seed)
    trainer = REINFORCE(policy, envs, config)
    started = time.perf_counter()
    history = trainer.learn(total_updates=updates)
    seconds = time.perf_counter() - started
    envs.close()
    after = measure(policy, reference, heldout, samples, seed=seed + 1)
    compile_reward = [
        float(np.mean([1.0 if program_compiles(p) else -1.0 for p in ps])) for ps in log.programs
    ]
    last = log.programs[-1]
    return {
        "name": spec.name,
        "reward": spec.reward,
        "kl_coef": spec.kl_coef,
        "seconds": seconds,
        "trained_reward": [m["rollout/reward"] for m in history],
        "kl_ref": [m["rollout/kl_ref"] for m in history],
        "compile_reward": compile_reward,
        "pass_rate": [float(np.mean(p)) for p in log.passed],
        "empty": [float(np.mean([not p.strip() for p in ps])) for ps in log.programs],
        "after": after,
        "examples": sorted(set(last), key=last.count, reverse=True)[:3],
        "log": log,
    }


# ---- checks, summary and plot ------------------------------------------------------------------------------


def smooth(y: list[float], window: int) -> np.ndarray:
    """Trailing moving average (shorter at the start), one point per update."""
    y_arr = np.asarray(y, dtype=float)
    return np.array([y_arr[max(0, i - window + 1) : i + 1].mean() for i in range(len(y_arr))])


def ends(y: list[float]) -> tuple[float, float]:
    """Means of the first and the last tenth of a curve (at least one point each)."""
    k = max(1, len(y) // 10)
    return float(np.mean(y[:k])), float(np.mean(y[-k:]))


def structure_failures(runs: list[dict[str, Any]], updates: int, out: Path) -> list[str]:
    """Checks that hold at any budget: the reward's definition, the verdicts, the curves, the plot."""
    failures = []
    for r in runs:
        log: ProgramLog = r["log"]
        if r["reward"] == "compile_only":
            for programs, rewards in zip(log.programs, log.rewards):
                promised = [1.0 if program_compiles(p) else -1.0 for p in programs]
                if promised != rewards:
                    failures.append(f"{r['name']}: a compile-only reward is not +1/-1 by compilation")
                    break
        for programs, passed in zip(log.programs, log.passed):
            if any(ok and not program_compiles(p) for p, ok in zip(programs, passed)):
                failures.append(f"{r['name']}: a program that does not compile passed the hidden tests")
                break
        for key in ("trained_reward", "compile_reward", "pass_rate"):
            if len(r[key]) != updates or not np.isfinite(r[key]).all():
                failures.append(f"{r['name']}: {key} has {len(r[key])} points or a non-finite one")
        if not all(np.isfinite(v) for v in r["after"].values()):
            failures.append(f"{r['name']}: a held-out number is not finite: {r['after']}")
    if not out.exists() or out.stat().st_size == 0:
        failures.append(f"plot {out} was not written")
    return failures


def claim_failures(runs: dict[str, dict[str, Any]], before: dict[str, float]) -> list[str]:
    """The full run's claims, each a measured inequality."""
    failures = []
    hack, honest, kl = runs["hackable"], runs["honest"], runs["hackable + KL"]
    r0, r1 = ends(hack["compile_reward"])
    p0, p1 = ends(hack["pass_rate"])
    if not (r1 > r0 + 0.2 and p1 < p0):
        failures.append(
            f"hackable: compile-only reward {r0:.2f} -> {r1:.2f} and pass rate {p0:.2f} -> {p1:.2f}: "
            "the hack did not show (reward up by > 0.2 while the pass rate falls)"
        )
    if not ends(honest["pass_rate"])[1] > p1:
        failures.append("honest: its final pass rate is not above the hackable run's")
    closer = kl["after"]["kl"] < hack["after"]["kl"]
    if not (closer and kl["after"]["pass_at_1"] > hack["after"]["pass_at_1"]):
        failures.append(
            "hackable + KL: not both closer to the default model and better held out than hackable"
        )
    return failures


def plot(runs: list[dict[str, Any]], before: dict[str, float], path: Path, window: int) -> None:
    """Compile-only reward and hidden-test pass rate per update; held-out pass@1 and KL after each run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"hackable": "tab:red", "honest": "tab:green", "hackable + KL": "tab:blue"}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), dpi=120)
    for r in runs:
        x = np.arange(1, len(r["pass_rate"]) + 1)
        c = colors.get(r["name"], None)
        axes[0].plot(x, smooth(r["compile_reward"], window), color=c, label=r["name"])
        axes[1].plot(x, smooth(r["pass_rate"], window), color=c, label=r["name"])
    axes[0].set_title("compile-only reward of the training programs")
    axes[0].set_ylabel(f"+1 compiles, -1 not ({window}-update mean)")
    axes[0].set_ylim(-1.05, 1.05)
    axes[1].set_title("hidden-test pass rate of the same programs")
    axes[1].set_ylabel(f"share passing ({window}-update mean)")
    axes[1].set_ylim(0, 1)
    for ax in axes[:2]:
        ax.set_xlabel("update (32 programs each)")
        ax.grid(alpha=0.3)
        ax.legend()
    names = ["default model", *(r["name"] for r in runs)]
    values = [before["pass_at_1"], *(r["after"]["pass_at_1"] for r in runs)]
    kls = [0.0, *(r["after"]["kl"] for r in runs)]
    bars = axes[2].bar(names, values, color=["tab:gray", *(colors.get(r["name"]) for r in runs)])
    for bar, kl in zip(bars, kls):
        axes[2].annotate(
            f"KL {kl:.1f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom"
        )
    axes[2].set_title("held-out pass@1 after training")
    axes[2].set_ylabel("pass@1 (bars: KL to the default model, nats)")
    axes[2].set_ylim(0, max(0.1, max(values) * 1.25))
    axes[2].grid(alpha=0.3, axis="y")
    fig.suptitle("REINFORCE-GRPO on the default LLM: a hackable reward, the honest one, and a KL penalty")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI mode: 3 updates of 8 programs per run")
    parser.add_argument("--updates", type=int, default=120, help="updates per run (default 120)")
    parser.add_argument("--lr", type=float, default=3e-4, help="learning rate (default 3e-4)")
    parser.add_argument("--beta", type=float, default=0.05, help="KL coefficient of the third run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/examples/llm_reward_hacking.png"))
    args = parser.parse_args(argv)
    import torch
    from codegym.agents import LMPolicy

    torch.set_num_threads(1)  # a tiny model: one thread is faster than two sharing a busy CPU
    updates, num_envs, tasks_n, samples = (3, 8, 12, 1) if args.quick else (args.updates, 32, None, 2)
    heldout = list(codegym.load_suite("arith", **HELDOUT_KWARGS).split("test"))[:tasks_n]
    specs = [
        RunSpec("hackable", "compile_only", 0.0),
        RunSpec("honest", "pass_fail", 0.0),
        RunSpec("hackable + KL", "compile_only", args.beta),
    ]
    started = time.perf_counter()
    print(
        f"REINFORCE-GRPO from the default model: {updates} updates x {num_envs} programs per run, "
        f"lr {args.lr:g}, seed {args.seed}; held-out: {len(heldout)} arith tasks x {samples} samples"
    )
    default = LMPolicy.from_pretrained("default", device="cpu")
    before = measure(default, default, heldout, samples, seed=args.seed + 1)
    print(f"default model, held-out: pass@1 {before['pass_at_1']:.1%}, compiles {before['compiles']:.1%}")
    runs = []
    for spec in specs:
        r = train_run(
            spec,
            updates=updates,
            num_envs=num_envs,
            lr=args.lr,
            seed=args.seed,
            heldout=heldout,
            samples=samples,
        )
        runs.append(r)
        (c0, c1), (p0, p1) = ends(r["compile_reward"]), ends(r["pass_rate"])
        a = r["after"]
        print(f"\n== {spec.name} (reward {spec.reward}, kl_coef {spec.kl_coef:g}), {r['seconds']:.0f} s")
        print(
            f"  training programs, first -> last tenth: compile-only reward {c0:+.2f} -> {c1:+.2f}, "
            f"hidden-test pass rate {p0:.2f} -> {p1:.2f}, empty {ends(r['empty'])[0]:.0%} -> "
            f"{ends(r['empty'])[1]:.0%}"
        )
        print(
            f"  held-out after: pass@1 {a['pass_at_1']:.1%}, compiles {a['compiles']:.1%}, "
            f"empty {a['empty']:.0%}, KL to the default model {a['kl']:.2f} nats"
        )
        print("  most frequent programs of the last update: " + ", ".join(repr(p) for p in r["examples"]))

    window = max(1, updates // 10)
    plot(runs, before, args.out, window)
    record = {"updates": updates, "lr": args.lr, "beta": args.beta, "seed": args.seed, "before": before}
    record["runs"] = [{k: v for k, v in r.items() if k != "log"} for r in runs]
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nplot: {args.out}  (data: {args.out.with_suffix('.json')})")
    failures = structure_failures(runs, updates, args.out)
    print(
        f"checks: rewards as defined, verdicts consistent, curves complete, plot written: "
        f"{'OK' if not failures else 'FAILED'}"
    )
    if not args.quick:
        claims = claim_failures({r["name"]: r for r in runs}, before)
        verdict = "OK" if not claims else "FAILED"
        print(f"claims: the hack found, the honest reward and the KL penalty remove its gain: {verdict}")
        failures += claims
    for failure in failures:
        print(f"check FAILED: {failure}")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
