"""PPO vs REINFORCE, and REINFORCE's baselines (none, moving average, RLOO, GRPO), on the default LLM.

Five learners start from the same embedded default model (a 0.92M GPT-2) with the same seed and the
same budget (updates of 32 arith programs each, judged by the sandbox's hidden tests, reward pass/fail):

* ``PPO`` with its defaults (value head, GAE over tokens, clipping, 2 epochs x 2 minibatches, KL 0.02);
* ``REINFORCE`` with each baseline, groups of 4 programs per task, one gradient step per update:
  ``none`` (A = r), ``moving_average`` (A = r - EMA of past batch means), ``rloo`` (A = r - mean of the
  group's other rewards) and ``grpo`` (A = (r - group mean) / group std).

Two things are measured:

1. **Learning speed**: the hidden-test pass rate of the training programs per update (and against wall
   time), and held-out pass@1 (arith test split, never trained on) before and after.
2. **Gradient variance of the REINFORCE estimator under each baseline**, measured at the default model
   (where all learners start), in two honest ways:

   * *across repeated batches*: the same ``K`` independent rollouts of 32 programs are drawn once
     (common random numbers) and, for each baseline, the batch gradient of REINFORCE's loss
     ``-sum(A * log p) / tokens`` (what one update follows, before clipping) is computed for every
     rollout; reported: ``tr Cov(g) = sum_k ||g_k - mean g||^2 / (K - 1)``, ``||mean g||^2`` and their
     ratio. ``none``, ``moving_average`` and ``rloo`` estimate the same expected gradient, so their
     variances compare directly; GRPO divides by each group's std, which rescales its gradient, so
     compare it by the relative variance ``tr Cov / ||mean g||^2``;
   * *per program*: ``||grad log p(y)||^2`` for every program of the first rollouts, split by passed
     and failed, and the constant baseline that minimizes the per-program variance,
     ``b* = E[r ||g||^2] / E[||g||^2]``, next to the mean reward (the value a moving average tracks).

   What this shows with the default model and a 0/1 reward is not the textbook picture, and the
   example says so: the model's passing programs are near-certain copies of the statement with tiny
   scores, its failing programs are unlikely samples with scores thousands of times larger. Without a
   baseline a failure has A = 0 and adds nothing; with a baseline near the mean reward every failure
   adds ``-b * grad log p``, so the batch gradient's variance goes *up*, and ``b*`` is far below the
   mean reward.

Checks (exit status 1 when one fails): every curve has one finite point per update, the variances are
finite and non-negative, and the plot is written; the full run also checks the two measured facts that
explain the variances (failed programs have the larger mean score norm; ``b*`` is below the mean
reward). Which learner is fastest is printed, not asserted.

Run: ``python examples/ppo_vs_reinforce.py`` (5 runs x 60 updates and 16 gradient rollouts on 2 worker
processes, about 4 minutes on 2 CPU cores) or ``--quick`` (3 small updates per run, about 30 s).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SUITE_KWARGS = {"n": 2000, "seed": 2, "difficulty": [1, 2, 3]}  # the training tasks of `make demo`
HELDOUT_KWARGS = {"n": 600, "seed": 1, "difficulty": [1, 2, 3]}  # its held-out tasks (test split)
BASELINES = ("none", "moving_average", "rloo", "grpo")
LEARNERS = ("PPO", *(f"REINFORCE {b}" for b in BASELINES))
GROUP_SIZE = 4


def make_envs(num_envs: int) -> Any:
    """The batched arith program vector env (train split): prompt text in, program text out."""
    import gymnasium as gym

    import codegym  # noqa: F401  (registers the ids)

    return gym.make_vec(
        "codegym/Arith-Program-v0", num_envs=num_envs, split="train", suite_kwargs=SUITE_KWARGS
    )


def heldout_pass_at_1(policy: Any, tasks: list[Any], samples: int, seed: int) -> float:
    """Share of ``samples`` programs per held-out task (temperature 1) that pass every hidden test."""
    import codegym

    out = policy.sample([t.prompt for t in tasks], n=samples, max_new_tokens=64, temperature=1.0, seed=seed)
    with codegym.Executor() as executor:
        results = executor.run_batch([(tasks[i // samples], text) for i, text in enumerate(out.texts)])
    return float(np.mean([r.passed for r in results]))


def _setup(seed: int) -> None:
    import torch

    torch.set_num_threads(1)  # a tiny model: one thread per process is fastest on a shared CPU
    torch.manual_seed(seed)


# ---- 1. learning speed: one learner, one run --------------------------------------------------------------


def train_learner(learner: str, updates: int, num_envs: int, seed: int, heldout: dict[str, Any]) -> dict:
    """Train ``learner`` for ``updates`` updates from the default model; return its curves and pass@1."""
    from codegym.agents import PPO, REINFORCE, LMPolicy, PPOConfig, REINFORCEConfig

    import codegym

    _setup(seed)
    tasks = list(codegym.load_suite("arith", **HELDOUT_KWARGS).split("test"))[: heldout["tasks"]]
    is_ppo = learner == "PPO"
    policy = LMPolicy.from_pretrained("default", device="cpu", value_head=is_ppo)
    envs = make_envs(num_envs)
    if is_ppo:
        trainer: Any = PPO(policy, envs, PPOConfig(seed=seed))
    else:
        baseline = learner.split()[1]
        trainer = REINFORCE(
            policy, envs, REINFORCEConfig(baseline=baseline, group_size=GROUP_SIZE, seed=seed)
        )
    started = time.perf_counter()
    elapsed: list[float] = []
    history = trainer.learn(updates, callback=lambda m: elapsed.append(time.perf_counter() - started))
    envs.close()
    return {
        "learner": learner,
        "pass_rate": [m["rollout/pass_rate"] for m in history],
        "seconds": elapsed,
        "heldout_after": heldout_pass_at_1(policy, tasks, heldout["samples"], seed + 1),
    }


# ---- 2. gradient variance of REINFORCE under each baseline ------------------------------------------------


def flat_grad(loss: Any, params: list[Any], retain_graph: bool = False) -> Any:
    """The gradient of ``loss`` with respect to ``params``, as one flat float64 vector."""
    import torch

    grads = torch.autograd.grad(loss, params, retain_graph=retain_graph, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)])


def gradient_variance(
    batches: int, warmup: int, per_sample_batches: int, num_envs: int, seed: int, heldout: dict[str, Any]
) -> dict:
    """Variance of REINFORCE's batch gradient at the default model, per baseline, on shared rollouts.

    ``warmup`` rollouts first feed the moving average (so that it starts from a typical value, not 0);
    then each of ``batches`` rollouts is scored once and differentiated under every baseline. The first
    ``per_sample_batches`` of them are also differentiated program by program: the squared norm of each
    program's score ``||grad log p(y)||^2``, which explains the variances. Also returns the default
    model's held-out pass@1 (the "before" of every learner).
    """
    import torch
    from codegym.agents import LMPolicy
    from codegym.agents.rollout import collect_programs

    import codegym
    from codegym import rlmath

    _setup(seed)
    policy = LMPolicy.from_pretrained("default", device="cpu")
    params = [p for p in policy.parameters() if p.requires_grad]
    envs = make_envs(num_envs)
    moving_average = rlmath.MovingAverageBaseline(decay=0.9)
    grads: dict[str, list[torch.Tensor]] = {b: [] for b in BASELINES}
    rewards_seen: list[float] = []
    score_sq: list[float] = []  # ||grad log p(y)||^2 per program
    score_reward: list[float] = []
    for k in range(warmup + batches):
        rollout = collect_programs(
            policy,
            envs,
            group_size=GROUP_SIZE,
            seed=10_000 * (seed + 1) + 7919 * k,
            max_new_tokens=64,
            temperature=1.0,
            top_p=1.0,
        )
        rewards = torch.as_tensor(rollout.rewards, dtype=torch.float32)
        advantages = {
            "none": rewards,
            "moving_average": moving_average.advantages(rewards),  # baseline from earlier batches only
            "rloo": rlmath.rloo_advantages(rewards, GROUP_SIZE),
            "grpo": rlmath.grpo_advantages(rewards, GROUP_SIZE),
        }
        if k < warmup:
            continue
        rewards_seen.extend(rollout.rewards.tolist())
        s = rollout.sample
        logprobs = policy.log_probs(s.prompt_ids, s.completion_ids, s.mask)
        tokens = s.mask.sum().clamp(min=1)
        for b in BASELINES:
            loss = -(advantages[b][:, None] * logprobs * s.mask).sum() / tokens  # REINFORCE's loss, ratio 1
            grads[b].append(flat_grad(loss, params, retain_graph=True).double())
        if k - warmup < per_sample_batches:
            for i in range(len(s)):
                one = policy.log_probs([s.prompt_ids[i]], s.completion_ids[i : i + 1], s.mask[i : i + 1])
                score_sq.append(float(flat_grad(one.sum(), params).double().pow(2).sum()))
                score_reward.append(float(rollout.rewards[i]))
    envs.close()
    stats = {}
    for b in BASELINES:
        g = torch.stack(grads[b])
        mean = g.mean(0)
        total_var = float(((g - mean) ** 2).sum() / (len(g) - 1))
        mean_sq = float(mean.pow(2).sum())
        stats[b] = {
            "total_variance": total_var,
            "mean_grad_sq_norm": mean_sq,
            "relative_variance": total_var / mean_sq if mean_sq > 0 else float("inf"),
        }
    norms, r = np.asarray(score_sq), np.asarray(score_reward)
    per_sample = {
        "programs": len(norms),
        "passed": int((r > 0).sum()),
        "score_sq_passed": norms[r > 0].tolist(),
        "score_sq_failed": norms[r <= 0].tolist(),
        # The constant b that minimizes E||(r - b) grad log p||^2: E[r ||g||^2] / E[||g||^2].
        "best_constant_baseline": float((r * norms).sum() / norms.sum()) if norms.sum() > 0 else 0.0,
        "mean_reward": float(r.mean()) if len(r) else float("nan"),
    }
    tasks = list(codegym.load_suite("arith", **HELDOUT_KWARGS).split("test"))[: heldout["tasks"]]
    before = heldout_pass_at_1(policy, tasks, heldout["samples"], seed + 1)
    return {
        "stats": stats,
        "batches": batches,
        "mean_reward": float(np.mean(rewards_seen)),
        "per_sample": per_sample,
        "before": before,
    }


def _job(job: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    kind, kwargs = job
    return gradient_variance(**kwargs) if kind == "variance" else train_learner(**kwargs)


# ---- plot, checks, main ------------------------------------------------------------------------------------


def smooth(y: list[float], window: int) -> np.ndarray:
    """Trailing moving average (shorter at the start), one point per update."""
    arr = np.asarray(y, dtype=float)
    return np.array([arr[max(0, i - window + 1) : i + 1].mean() for i in range(len(arr))])


def plot(runs: list[dict], variance: dict, path: Path, window: int) -> None:
    """Six panels: pass rate per update and per second, held-out pass@1; the gradient measurements."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = dict(zip(LEARNERS, ("black", "tab:gray", "tab:blue", "tab:orange", "tab:green")))
    fig, axes = plt.subplots(2, 3, figsize=(16, 8), dpi=110)
    (a, b, c), (d, e, f) = axes
    for r in runs:
        y = smooth(r["pass_rate"], window)
        a.plot(np.arange(1, len(y) + 1), y, color=colors[r["learner"]], label=r["learner"])
        b.plot(r["seconds"], y, color=colors[r["learner"]], label=r["learner"])
    a.set_xlabel("update (32 programs each)")
    b.set_xlabel("wall-clock seconds (2 runs at a time on 2 cores)")
    for ax in (a, b):
        ax.set_ylabel(f"training pass rate ({window}-update mean)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    a.set_title("learning speed per update")
    b.set_title("learning speed per second")
    names = [
        "default",
        *(r["learner"].replace("REINFORCE ", "R. ").replace("moving_average", "MA") for r in runs),
    ]
    values = [variance["before"], *(r["heldout_after"] for r in runs)]
    c.bar(names, values, color=["white", *(colors[r["learner"]] for r in runs)], edgecolor="black")
    c.set_title("held-out pass@1 (arith test split), before and after")
    c.tick_params(axis="x", labelsize=8)
    c.set_ylim(0, max(values) * 1.2 if max(values) > 0 else 1)
    c.grid(alpha=0.3, axis="y")
    stats = variance["stats"]
    d.bar(BASELINES, [stats[k]["total_variance"] for k in BASELINES], color="tab:purple")
    d.set_title(f"tr Cov of the batch gradient ({variance['batches']} shared rollouts)")
    d.set_ylabel("sum of per-parameter variances")
    d.grid(alpha=0.3, axis="y")
    e.bar(BASELINES, [stats[k]["relative_variance"] for k in BASELINES], color="tab:cyan")
    e.set_title("relative variance tr Cov / ||mean gradient||^2")
    e.grid(alpha=0.3, axis="y")
    ps = variance["per_sample"]
    bins = np.logspace(-4, 6, 41)
    f.hist(np.clip(ps["score_sq_passed"], 1e-4, 1e6), bins=bins, alpha=0.6, label="passed programs")
    f.hist(np.clip(ps["score_sq_failed"], 1e-4, 1e6), bins=bins, alpha=0.6, label="failed programs")
    f.set_xscale("log")
    f.set_xlabel("||grad log p(program)||^2")
    f.set_title("score norm of each program, by verdict")
    f.text(
        0.02,
        0.75,
        f"best constant baseline b* = {ps['best_constant_baseline']:.3f}\n"
        f"mean reward = {ps['mean_reward']:.3f}",
        transform=f.transAxes,
        fontsize=9,
    )
    f.legend(fontsize=8)
    fig.suptitle("PPO vs REINFORCE (none / moving average / RLOO / GRPO) from the default LLM on arith")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def failures_of(runs: list[dict], variance: dict, updates: int, out: Path, full: bool) -> list[str]:
    """The example's checks; returns the failures (empty when all pass)."""
    failures = []
    for r in runs:
        for key in ("pass_rate", "seconds"):
            if len(r[key]) != updates or not np.isfinite(r[key]).all():
                failures.append(f"{r['learner']}: {key} has {len(r[key])} points or a non-finite one")
        if not np.isfinite(r["heldout_after"]):
            failures.append(f"{r['learner']}: held-out pass@1 is not finite")
    for b in BASELINES:
        v = variance["stats"][b]["total_variance"]
        if not (np.isfinite(v) and v >= 0):
            failures.append(f"{b}: gradient variance {v} is not finite and >= 0")
    ps = variance["per_sample"]
    if full:  # the explanation of the variances, measured program by program
        passed, failed = (
            np.mean(ps["score_sq_passed"] or [np.nan]),
            np.mean(ps["score_sq_failed"] or [np.nan]),
        )
        if not passed < failed:
            failures.append(
                f"mean ||grad log p||^2 of passed programs {passed:.3g} not below failed {failed:.3g}"
            )
        if not ps["best_constant_baseline"] < ps["mean_reward"]:
            failures.append("the variance-minimizing constant baseline is not below the mean reward")
    if not out.exists() or out.stat().st_size == 0:
        failures.append(f"plot {out} was not written")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI mode: 3 updates of 8 programs per run")
    parser.add_argument("--updates", type=int, default=60, help="updates per learner (default 60)")
    parser.add_argument("--batches", type=int, default=16, help="rollouts for the gradient variance")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="parallel runs (default 2, one per core)")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/ppo_vs_reinforce.png"))
    args = parser.parse_args(argv)
    if args.quick:
        updates, num_envs, batches, heldout = 3, 8, 3, {"tasks": 12, "samples": 1}
    else:
        updates, num_envs, batches, heldout = args.updates, 32, args.batches, {"tasks": None, "samples": 2}
    started = time.perf_counter()
    print(
        f"{len(LEARNERS)} learners from the default model, {updates} updates x {num_envs} programs each, "
        f"seed {args.seed}; gradient variance over {batches} rollouts; {args.workers} worker processes"
    )
    variance_job = {
        "batches": batches,
        "warmup": 2,
        "per_sample_batches": min(4, batches),
        "num_envs": num_envs,
        "seed": args.seed,
        "heldout": heldout,
    }
    jobs: list[tuple[str, dict[str, Any]]] = [("variance", variance_job)]
    for learner in LEARNERS:
        job = {"learner": learner, "updates": updates, "num_envs": num_envs, "seed": args.seed}
        jobs.append(("train", {**job, "heldout": heldout}))
    if args.workers > 1:
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            results = pool.map(_job, jobs, chunksize=1)
    else:
        results = [_job(job) for job in jobs]
    variance, runs = results[0], results[1:]

    k = max(1, updates // 10)
    print(
        f"\n== learning speed (training pass rate, first -> last {k} updates; held-out pass@1 "
        f"before: {variance['before']:.1%})"
    )
    for r in runs:
        first, last, seconds = np.mean(r["pass_rate"][:k]), np.mean(r["pass_rate"][-k:]), r["seconds"][-1]
        print(
            f"  {r['learner']:26s} {first:.2f} -> {last:.2f}   held-out after {r['heldout_after']:.1%}   "
            f"{seconds:5.0f} s ({seconds / updates:.2f} s/update)"
        )
    print(
        f"\n== REINFORCE's batch gradient at the default model: {batches} shared rollouts of {num_envs} "
        f"programs (mean reward {variance['mean_reward']:.2f})"
    )
    print(f"  {'baseline':16s} {'tr Cov(g)':>11s} {'||mean g||^2':>13s} {'tr Cov / ||mean g||^2':>22s}")
    for b in BASELINES:
        st = variance["stats"][b]
        v, m, rel = st["total_variance"], st["mean_grad_sq_norm"], st["relative_variance"]
        print(f"  {b:16s} {v:11.3e} {m:13.3e} {rel:22.2f}")
    none = variance["stats"]["none"]["total_variance"]
    for b in BASELINES[1:]:
        v = variance["stats"][b]["total_variance"]
        print(f"  {b}: {v / none:.2f}x the variance of none" if none > 0 else f"  {b}: variance {v:.3g}")
    ps = variance["per_sample"]
    passed, failed = ps["score_sq_passed"], ps["score_sq_failed"]
    print(
        f"\n== per program ({ps['programs']}, {ps['passed']} passed): median ||grad log p||^2 "
        f"{np.median(passed) if passed else float('nan'):.3g} (passed) vs "
        f"{np.median(failed) if failed else float('nan'):.3g} (failed); the variance-minimizing constant "
        f"baseline E[r ||g||^2] / E[||g||^2] = {ps['best_constant_baseline']:.3f}, the mean reward "
        f"{ps['mean_reward']:.3f}"
    )

    window = max(1, updates // 10)
    plot(runs, variance, args.out, window)
    record = json.dumps({"variance": variance, "runs": runs}, indent=2)
    args.out.with_suffix(".json").write_text(record + "\n")
    print(f"\nplot: {args.out}  (data: {args.out.with_suffix('.json')})")
    failures = failures_of(runs, variance, updates, args.out, full=not args.quick)
    for failure in failures:
        print(f"check FAILED: {failure}")
    what = "curves complete, variances finite, plot written"
    if not args.quick:
        what += ", failed programs have the larger scores, best constant baseline below the mean reward"
    print(f"checks: {what}: {'OK' if not failures else 'FAILED'}  ({time.perf_counter() - started:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
