"""Does RL raise held-out pass@1 of the default model? PPO and REINFORCE (GRPO) at program level.

Each (suite, algorithm, seed) is one ``codegym train`` run in its own process (so its peak memory is its
own), from the embedded default model, for ``--minutes`` of training on the suite's train split
(``n=2000, seed=2``, depths 1-3). Held-out: the test split of ``load_suite(suite, n=600, seed=1,
difficulty=[1, 2, 3])`` (107 arith tasks, never in pretraining or training: the split is a property of
the program), ``--eval-samples`` samples per task at temperature 1, before and after.

The gain's 95% interval is a paired bootstrap over (task, seed) pairs of after - before per-task pass@1.
Targets (issue 15): +20 points on arith and +10 on listops within 10 minutes, under 4 GB peak memory.

    python bench/learning.py                                  # arith and listops, both algorithms, seed 0
    python bench/learning.py --suites arith --algos reinforce --minutes 4 --seeds 0 1

Writes bench/results/learning.json and bench/results/learning.png (training pass rate per update).
``--algos ppo-token`` runs PPO at token level (``codegym/<Suite>-Token-v0`` with the default model's
tokenizer: one action per token, 65 steps per sub-environment per rollout); target +10 on arith.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENVS = {"arith": "codegym/Arith-Program-v0", "listops": "codegym/ListOps-Program-v0"}
TOKEN_ENVS = {"arith": "codegym/Arith-Token-v0", "listops": "codegym/ListOps-Token-v0"}
TARGETS = {"arith": 0.20, "listops": 0.10}
TOKEN_TARGET = 0.10  # issue 15: PPO at token level on arith, +10 points


def run_job(suite: str, algo: str, seed: int, minutes: float, eval_samples: int, run_dir: str) -> dict:
    """One training run (in this process); returns its evaluation, history summary and peak memory."""
    from codegym.agents.policy import LMPolicy
    from codegym.agents.ppo import PPOConfig
    from codegym.agents.reinforce import REINFORCEConfig
    from codegym.agents.train import RunConfig, run_training

    token_level = algo == "ppo-token"
    run = RunConfig(
        env=(TOKEN_ENVS if token_level else ENVS)[suite],
        algo="ppo" if token_level else algo,
        num_envs=32,
        updates=1_000_000,
        minutes=minutes,
        eval_samples=eval_samples,
        seed=seed,
        run_dir=run_dir,
    )
    policy = LMPolicy.from_pretrained("default", value_head=algo != "reinforce")
    config = REINFORCEConfig(baseline="grpo", group_size=4) if algo == "reinforce" else PPOConfig()
    started = time.perf_counter()
    out, history = run_training(run, config, policy=policy, progress=True)
    before = json.loads((out.path / "eval_before.json").read_text())
    after = json.loads((out.path / "eval_after.json").read_text())
    return {
        "suite": suite,
        "algo": algo,
        "seed": seed,
        "run": str(out.path),
        "updates": len(history),
        "wall_s": time.perf_counter() - started,
        "before": before["pass_at_k"]["1"],
        "after": after["pass_at_k"]["1"],
        "before_tasks": {t["task_id"]: t["num_correct"] / t["num_samples"] for t in before["tasks"]},
        "after_tasks": {t["task_id"]: t["num_correct"] / t["num_samples"] for t in after["tasks"]},
        "num_tasks": before["num_tasks"],
        "curve": [m.get("rollout/pass_rate", m["rollout/reward"]) for m in history],
        "sandbox_share": float(np.mean([m["time/sandbox_share"] for m in history])),
        "completions_per_s": float(np.mean([m["charts/completions_per_s"] for m in history])),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def paired_gain_ci(jobs: list[dict], rounds: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """Mean gain in pass@1 and its 95% paired-bootstrap interval over (task, seed) pairs."""
    diffs = np.array([j["after_tasks"][t] - j["before_tasks"][t] for j in jobs for t in j["before_tasks"]])
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), size=(rounds, len(diffs)))].mean(axis=1)
    return float(diffs.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def plot(jobs: list[dict], path: Path) -> None:
    """Training pass rate per update (moving average over 20 updates) of every run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for j in jobs:
        y = np.asarray(j["curve"], dtype=float)
        w = min(20, len(y))
        smooth = np.convolve(y, np.ones(w) / w, mode="valid") if w else y
        ax.plot(np.arange(len(smooth)) + w, smooth, label=f"{j['suite']} {j['algo']} seed {j['seed']}")
    ax.set_xlabel("update (32 programs each)")
    ax.set_ylabel("training pass rate (moving average of 20)")
    ax.set_title("default model, program level, 2 CPU cores")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    """Run every job in its own process, then print and save the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suites", nargs="+", default=["arith", "listops"], choices=sorted(ENVS))
    p.add_argument(
        "--algos", nargs="+", default=["reinforce", "ppo"], choices=["reinforce", "ppo", "ppo-token"]
    )
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--minutes", type=float, default=10.0, help="training minutes per run (default 10)")
    p.add_argument("--eval-samples", type=int, default=4, help="samples per held-out task (default 4)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"), help="where the JSON and PNG go")
    p.add_argument("--job", help=argparse.SUPPRESS)  # internal: suite,algo,seed run in this process
    args = p.parse_args()
    out_dir = Path(args.out)
    run_dir = str(out_dir / "learning_runs")
    if args.job:
        suite, algo, seed = args.job.split(",")
        result = run_job(suite, algo, int(seed), args.minutes, args.eval_samples, run_dir)
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for suite in args.suites:
        for algo in args.algos:
            for seed in args.seeds:
                print(f"== {suite} {algo} seed {seed}: {args.minutes:g} min", flush=True)
                cmd = [sys.executable, __file__, "--job", f"{suite},{algo},{seed}", "--out", args.out]
                cmd += ["--minutes", str(args.minutes), "--eval-samples", str(args.eval_samples)]
                proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
                if proc.returncode != 0 or not lines:
                    print(f"   failed (exit {proc.returncode})", flush=True)
                    continue
                jobs.append(json.loads(lines[-1][len("RESULT ") :]))
                j = jobs[-1]
                print(
                    f"   held-out pass@1 {j['before']:.1%} -> {j['after']:.1%} ({j['updates']} updates, "
                    f"{j['completions_per_s']:.0f} programs/s, sandbox {j['sandbox_share']:.0%}, "
                    f"peak {j['peak_rss_gb']:.2f} GB)",
                    flush=True,
                )
    header = (
        "suite | algo | seeds | held-out tasks | pass@1 before | after | gain (95% CI) | target | peak GB"
    )
    print(f"\n| {header} |")
    print("|---|---|---|---|---|---|---|---|---|")
    for suite in args.suites:
        for algo in args.algos:
            group = [j for j in jobs if j["suite"] == suite and j["algo"] == algo]
            if not group:
                continue
            gain, low, high = paired_gain_ci(group)
            target = TOKEN_TARGET if algo == "ppo-token" else TARGETS[suite]
            met = "met" if gain >= target else "not met"
            print(
                f"| {suite} | {algo} | {len(group)} | {group[0]['num_tasks']} | "
                f"{np.mean([j['before'] for j in group]):.1%} | {np.mean([j['after'] for j in group]):.1%} | "
                f"{gain:+.1%} ({low:+.1%} to {high:+.1%}) | +{target:.0%}: {met} | "
                f"{max(j['peak_rss_gb'] for j in group):.2f} |"
            )
    # Runs of other (suite, algo, seed) triples measured earlier stay in the results file.
    results = out_dir / "learning.json"
    earlier = json.loads(results.read_text())["jobs"] if results.exists() else []
    ran = {(j["suite"], j["algo"], j["seed"]) for j in jobs}
    jobs = [j for j in earlier if (j["suite"], j["algo"], j["seed"]) not in ran] + jobs
    results.write_text(json.dumps({"args": vars(args), "jobs": jobs}, indent=1) + "\n")
    if jobs:
        plot(jobs, out_dir / "learning.png")
        print(f"\nsaved {out_dir / 'learning.json'} and {out_dir / 'learning.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
