"""Three ways to learn from execution, on one budget of executed programs: RL, best-of-n, expert iteration.

From the embedded default model, each method may execute ``--budget`` programs while it learns (the
programs it samples on the train split, ``load_suite(suite, n=2000, seed=2, difficulty=[1, 2, 3])``, and
runs against their hidden tests):

* ``reinforce`` (GRPO baseline, groups of 4) and ``ppo``: ``budget / 32`` updates of 32 programs;
* ``expert-iteration``: ``budget / 128`` iterations (4 rollouts of 8 tasks x 4 samples each);
* ``best-of-n``: a verifier (``codegym train-verifier``) fitted on 8 labelled samples of each of
  ``budget / 8`` train tasks; on the held-out tasks it picks 1 of 8 samples (``verifier``, and LEVER's
  aggregation ``lever``), next to the verifier-free ``visible-tests`` reranker.

Held-out: the test split of ``load_suite(suite, n=600, seed=1, difficulty=[1, 2, 3])`` (never in
pretraining or training). The learners are scored by pass@1 (4 samples per task, temperature 1) before
and after; best-of-n by the hidden-test verdict of the program it picks from 8 samples per task (so it
spends 8x the test-time samples and runs the prompt's visible examples; the table says so). Intervals:
a paired bootstrap over tasks of after - before (the same as bench/learning.py).

The ``-io`` suites are the examples-only variants (``examples_only=True``: the prompt shows only input/
output examples, programming by example).

    python bench/methods.py                                     # arith and listops, every method
    python bench/methods.py --suites arith arith-io --budget 8192

Writes bench/results/methods.json (merged with earlier jobs of other suite/method pairs), prints the
Markdown table, and saves bench/results/methods.png.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning import paired_gain_ci  # noqa: E402  (the same interval as the RL bench)

ROOT = Path(__file__).resolve().parents[1]
SUITES = {  # name -> (suite, examples_only, program env id)
    "arith": ("arith", False, "codegym/Arith-Program-v0"),
    "listops": ("listops", False, "codegym/ListOps-Program-v0"),
    "arith-io": ("arith", True, "codegym/ArithIO-Program-v0"),
    "listops-io": ("listops", True, "codegym/ListOpsIO-Program-v0"),
}
METHODS = ("reinforce", "ppo", "expert-iteration", "best-of-n")
TRAIN_KWARGS = {"n": 2000, "seed": 2, "difficulty": [1, 2, 3]}
HELDOUT_KWARGS = {"n": 600, "seed": 1, "difficulty": [1, 2, 3]}
NUM_ENVS = 32
EI_ROLLOUTS = 4
BEST_OF = 8


def run_learner(name: str, method: str, budget: int, eval_samples: int, seed: int, run_dir: str) -> dict:
    """PPO, REINFORCE or expert iteration for ``budget`` executed programs; held-out pass@1 before/after."""
    from codegym.agents.expert_iteration import ExpertIterationConfig
    from codegym.agents.policy import LMPolicy
    from codegym.agents.ppo import PPOConfig
    from codegym.agents.reinforce import REINFORCEConfig
    from codegym.agents.train import RunConfig, run_training

    _, _, env_id = SUITES[name]
    if method == "reinforce":
        config, per_update = REINFORCEConfig(baseline="grpo", group_size=4), NUM_ENVS
    elif method == "ppo":
        config, per_update = PPOConfig(), NUM_ENVS
    else:
        config = ExpertIterationConfig(group_size=4, rollouts_per_iteration=EI_ROLLOUTS)
        per_update = NUM_ENVS * EI_ROLLOUTS
    run = RunConfig(
        env=env_id,
        algo=method,
        num_envs=NUM_ENVS,
        updates=max(1, budget // per_update),
        eval_samples=eval_samples,
        seed=seed,
        run_dir=run_dir,
    )
    policy = LMPolicy.from_pretrained("default", value_head=method == "ppo")
    started = time.perf_counter()
    out, history = run_training(run, config, policy=policy, progress=True)
    wall_s = time.perf_counter() - started
    before = json.loads((out.path / "eval_before.json").read_text())
    after = json.loads((out.path / "eval_after.json").read_text())
    return {
        "executed": len(history) * per_update,
        "wall_s": wall_s,
        "test_samples": 1,
        "before": before["pass_at_k"]["1"],
        "after": after["pass_at_k"]["1"],
        "before_tasks": {t["task_id"]: t["num_correct"] / t["num_samples"] for t in before["tasks"]},
        "after_tasks": {t["task_id"]: t["num_correct"] / t["num_samples"] for t in after["tasks"]},
        "num_tasks": before["num_tasks"],
        "run": str(out.path),
    }


def run_best_of_n(name: str, budget: int, seed: int) -> dict:
    """Fit the verifier on ``budget`` labelled train samples, then rerank 8 samples per held-out task."""
    from codegym.agents.search import rerank_evaluate, train_verifier

    suite, examples_only, _ = SUITES[name]
    started = time.perf_counter()
    methods: tuple[str, ...] = ("visible-tests", "verifier", "lever")
    try:
        verifier, training = train_verifier(
            "default",
            suite,
            n=BEST_OF,
            suite_kwargs={**TRAIN_KWARGS, "examples_only": examples_only},
            limit=max(1, budget // BEST_OF),
            seed=seed,
            progress=True,
        )
        training_info = training.to_dict()
    except ValueError as exc:  # e.g. no passing sample at all: a verifier of one class cannot be fitted
        print(f"no verifier: {exc}", flush=True)
        verifier, methods = None, ("visible-tests",)
        training_info = {"error": str(exc), "num_samples": budget // BEST_OF * BEST_OF}
    fit_s = time.perf_counter() - started
    report = rerank_evaluate(
        "default",
        suite,
        methods=methods,
        n=BEST_OF,
        verifier=verifier,
        suite_kwargs={**HELDOUT_KWARGS, "examples_only": examples_only},
        seed=seed,
        progress=True,
    )
    data = report.to_dict()
    before = {row["task_id"]: row["num_correct"] / row["num_samples"] for row in data["tasks"]}
    chosen = {
        method: {row["task_id"]: float(row["chosen_passed"][method]) for row in data["tasks"]}
        for method in report.methods
    }
    return {
        "executed": int(training_info.get("num_samples", budget)),
        "wall_s": time.perf_counter() - started,
        "fit_s": fit_s,
        "test_samples": BEST_OF,
        "before": report.pass_at_1,
        "after": report.reranked[methods[-1]],
        "pass_at_n": report.pass_at_n,
        "reranked": dict(report.reranked),
        "before_tasks": before,
        "after_tasks": chosen[methods[-1]],
        "method_tasks": chosen,
        "num_tasks": report.num_tasks,
        "verifier": {k: v for k, v in training_info.items() if isinstance(v, (int, float, str))},
    }


def run_job(name: str, method: str, budget: int, eval_samples: int, seed: int, run_dir: str) -> dict:
    """One (suite, method) job in this process, with its peak memory."""
    if method == "best-of-n":
        result = run_best_of_n(name, budget, seed)
    else:
        result = run_learner(name, method, budget, eval_samples, seed, run_dir)
    suite, examples_only, _ = SUITES[name]
    result.update(
        suite=name,
        method=method,
        seed=seed,
        budget=budget,
        peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    )
    return result


def table(jobs: list[dict]) -> str:
    """The Markdown table of held-out pass@1 per (suite, method)."""
    lines = [
        "| suite | method | executed programs | held-out tasks | pass@1 before | after | gain (95% CI) | "
        "test-time samples | wall |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for job in jobs:
        rows = [(job["method"], job["after_tasks"])]
        if job["method"] == "best-of-n":
            rows = [(f"best-of-{BEST_OF} {m}", tasks) for m, tasks in job["method_tasks"].items()]
        for label, after_tasks in rows:
            gain, low, high = paired_gain_ci([{**job, "after_tasks": after_tasks}])
            after = float(np.mean(list(after_tasks.values())))
            lines.append(
                f"| {job['suite']} | {label} | {job['executed']:,} | {job['num_tasks']} | "
                f"{100 * job['before']:.1f}% | {100 * after:.1f}% | {100 * gain:+.1f} ({100 * low:+.1f} to "
                f"{100 * high:+.1f}) | {job['test_samples']} | {job['wall_s'] / 60:.1f} min |"
            )
        if job["method"] == "best-of-n":
            lines.append(
                f"| {job['suite']} | pass@{BEST_OF} (the ceiling of any reranker) | | {job['num_tasks']} | | "
                f"{100 * job['pass_at_n']:.1f}% | | {BEST_OF} | |"
            )
    return "\n".join(lines) + "\n"


def plot(jobs: list[dict], path: Path) -> None:
    """Held-out pass@1 before and after each method, one panel per suite."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = sorted({j["suite"] for j in jobs})
    fig, axes = plt.subplots(1, len(suites), figsize=(5 * len(suites), 3.8), dpi=120, squeeze=False)
    for ax, suite in zip(axes[0], suites):
        group = [j for j in jobs if j["suite"] == suite]
        labels = [j["method"] if j["method"] != "best-of-n" else "best-of-n (lever)" for j in group]
        x = np.arange(len(group))
        ax.bar(x - 0.2, [100 * j["before"] for j in group], 0.4, label="before (default model)")
        ax.bar(x + 0.2, [100 * j["after"] for j in group], 0.4, label="after")
        ax.set_xticks(x, labels, rotation=20, fontsize=8)
        ax.set_ylabel("held-out pass@1 (%)")
        ax.set_title(f"{suite}: {group[0]['budget']:,} executed programs each")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    """Run every (suite, method) job in its own process, then merge, tabulate and plot."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--suites", nargs="+", default=["arith", "listops"], choices=sorted(SUITES))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--budget", type=int, default=16384, help="executed programs per method (default 16384)")
    p.add_argument("--eval-samples", type=int, default=4, help="held-out samples per task for pass@1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "bench" / "results"), help="results directory")
    p.add_argument("--job", help=argparse.SUPPRESS)  # internal: suite,method run in this process
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_dir = str(out / "methods_runs")
    if args.job:
        name, method = args.job.split(",")
        result = run_job(name, method, args.budget, args.eval_samples, args.seed, run_dir)
        (out / f"methods_job_{name}_{method}.json").write_text(json.dumps(result) + "\n")
        return 0
    jobs = []
    for name in args.suites:
        for method in args.methods:
            print(f"== {name} {method}: {args.budget:,} executed programs", flush=True)
            cmd = [sys.executable, __file__, "--job", f"{name},{method}", "--budget", str(args.budget)]
            cmd += ["--eval-samples", str(args.eval_samples), "--seed", str(args.seed), "--out", args.out]
            subprocess.run(cmd, check=True, cwd=ROOT)
            job_path = out / f"methods_job_{name}_{method}.json"
            jobs.append(json.loads(job_path.read_text()))
            job_path.unlink()
    results = out / "methods.json"
    earlier = json.loads(results.read_text())["jobs"] if results.exists() else []
    ran = {(j["suite"], j["method"]) for j in jobs}
    jobs = [j for j in earlier if (j["suite"], j["method"]) not in ran] + jobs
    jobs.sort(key=lambda j: (list(SUITES).index(j["suite"]), METHODS.index(j["method"])))
    text = table(jobs)
    results.write_text(json.dumps({"jobs": jobs, "table": text}, indent=1) + "\n")
    plot(jobs, out / "methods.png")
    print(text)
    print(f"results: {results}\nplot: {out / 'methods.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
