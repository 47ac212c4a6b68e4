"""RL vs best-of-n with a learned verifier vs expert iteration, on one budget of executed programs.

Three ways to learn from execution start from the same embedded default model, and each may run the
same number of programs against the hidden tests of arith *training* tasks while it learns:

* **REINFORCE** (GRPO baseline, groups of 4): ``budget / 32`` updates of 32 programs;
* **expert iteration**: ``budget / 128`` iterations of 128 programs (32 tasks x 4), keeping the ones that
  pass and fine-tuning on them;
* **best-of-8 with a verifier**: 8 labelled samples of each of ``budget / 8`` training tasks fit a
  verifier (a logistic regression on the policy's hidden states, its log-prob and the visible-test
  result); on a held-out task it picks 1 of 8 samples (LEVER's aggregation), next to the verifier-free
  choice by the prompt's visible examples.

All three are scored on the same held-out tasks (the arith test split, never trained on) by the hidden
tests: pass@1 of the trained model (4 samples per task), or the verdict of the one program best-of-8
picks. Best-of-n changes no weight: it spends its compute at test time (8 samples and a run of the
visible examples per task), and pass@8 is the ceiling of any reranker.

Checks (exit status 1 when one fails): every method executed exactly its budget, every pass@1 is in
[0, 1], no reranker beats pass@8, and the plot is written. Which method wins is printed, not asserted.

Run: ``python examples/rl_vs_search.py`` (budget 4096, about 5 minutes on 2 CPU cores) or ``--quick``
(budget 256 on a small held-out set, about a minute).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

TRAIN_KWARGS = {"n": 2000, "seed": 2, "difficulty": [1, 2, 3]}  # the training tasks of `make demo`
NUM_ENVS = 32
EI_ROLLOUTS = 4
BEST_OF = 8


def train_and_score(algo: str, budget: int, heldout: str, out: Path) -> dict:
    """REINFORCE or expert iteration for ``budget`` executed programs; held-out pass@1 before and after."""
    from codegym.agents.expert_iteration import ExpertIterationConfig
    from codegym.agents.reinforce import REINFORCEConfig
    from codegym.agents.train import RunConfig, run_training

    if algo == "reinforce":
        config, per_update = REINFORCEConfig(baseline="grpo", group_size=4), NUM_ENVS
    else:
        config, per_update = ExpertIterationConfig(group_size=4, rollouts_per_iteration=EI_ROLLOUTS), 128
    run = RunConfig(
        env="codegym/Arith-Program-v0",
        algo=algo,
        num_envs=NUM_ENVS,
        updates=max(1, budget // per_update),
        eval_suite_kwargs=heldout,
        eval_samples=4,
        run_dir=str(out / "runs"),
    )
    started = time.perf_counter()
    run_dir, history = run_training(run, config, progress=True)
    before = json.loads((run_dir.path / "eval_before.json").read_text())["pass_at_k"]["1"]
    after = json.loads((run_dir.path / "eval_after.json").read_text())["pass_at_k"]["1"]
    return {
        "executed": len(history) * per_update,
        "before": before,
        "after": after,
        "minutes": (time.perf_counter() - started) / 60,
    }


def best_of_n(budget: int, heldout: dict, out: Path) -> dict:
    """Fit a verifier on ``budget`` labelled training samples, then rerank 8 samples per held-out task."""
    from codegym.agents.search import rerank_evaluate, train_verifier

    started = time.perf_counter()
    verifier, training = train_verifier(
        "default", "arith", n=BEST_OF, suite_kwargs=TRAIN_KWARGS, limit=budget // BEST_OF, progress=True
    )
    print(f"verifier: {training.num_samples} labelled samples, validation AUC {training.val_auc:.3f}")
    report = rerank_evaluate(
        "default",
        "arith",
        methods=("visible-tests", "lever"),
        n=BEST_OF,
        verifier=verifier,
        suite_kwargs=heldout,
        progress=True,
    )
    (out / "rerank.md").write_text(report.to_markdown())
    return {
        "executed": training.num_samples,
        "before": report.pass_at_1,
        "visible-tests": report.reranked["visible-tests"],
        "lever": report.reranked["lever"],
        "pass_at_n": report.pass_at_n,
        "minutes": (time.perf_counter() - started) / 60,
    }


def plot(results: dict, path: Path, budget: int) -> None:
    """One bar per method: held-out pass@1 of the default model, and after each method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [
        ("default model", results["reinforce"]["before"]),
        ("REINFORCE-GRPO", results["reinforce"]["after"]),
        ("expert iteration", results["expert-iteration"]["after"]),
        ("best-of-8: visible tests", results["best-of-n"]["visible-tests"]),
        ("best-of-8: verifier (LEVER)", results["best-of-n"]["lever"]),
        ("pass@8 (ceiling)", results["best-of-n"]["pass_at_n"]),
    ]
    fig, ax = plt.subplots(figsize=(8, 3.8), dpi=120)
    colors = ["grey", "C0", "C1", "C2", "C2", "lightgrey"]
    ax.bar(range(len(bars)), [100 * v for _, v in bars], color=colors)
    ax.set_xticks(range(len(bars)), [name for name, _ in bars], rotation=15, fontsize=8)
    ax.set_ylabel("held-out pass@1 (%)")
    ax.set_title(f"arith: {budget:,} executed training programs per method")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    """Run the three methods, print the comparison, check it, save the plot."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="budget 256 on a small held-out set (CI)")
    p.add_argument("--budget", type=int, default=None, help="executed programs per method (default 4096)")
    p.add_argument(
        "--out", default="runs/examples/rl_vs_search.png", help="the plot (its numbers go beside it as JSON)"
    )
    args = p.parse_args()
    budget = args.budget or (256 if args.quick else 4096)
    heldout_n = 120 if args.quick else 600  # the test split of n=600 is 107 tasks; of n=120, about 20
    heldout = {"n": heldout_n, "seed": 1, "difficulty": [1, 2, 3]}
    plot_path = Path(args.out)
    out = plot_path.parent / f"{plot_path.stem}_runs"  # the training runs and the rerank table
    out.mkdir(parents=True, exist_ok=True)
    heldout_text = f"n={heldout_n},seed=1,difficulty=1;2;3"

    results = {
        "reinforce": train_and_score("reinforce", budget, heldout_text, out),
        "expert-iteration": train_and_score("expert-iteration", budget, heldout_text, out),
        "best-of-n": best_of_n(budget, heldout, out),
    }
    print(f"\nheld-out arith pass@1, {budget:,} executed training programs per method")
    print(f"  default model                 {100 * results['reinforce']['before']:5.1f}%")
    for name, key in (("REINFORCE-GRPO", "reinforce"), ("expert iteration", "expert-iteration")):
        r = results[key]
        print(f"  {name:<29} {100 * r['after']:5.1f}%  ({r['executed']:,} programs, {r['minutes']:.1f} min)")
    b = results["best-of-n"]
    print(f"  best-of-8, visible tests      {100 * b['visible-tests']:5.1f}%  (8 test-time samples per task)")
    print(f"  best-of-8, verifier (LEVER)   {100 * b['lever']:5.1f}%  ({b['executed']:,} labelled programs)")
    print(f"  pass@8 (ceiling of reranking) {100 * b['pass_at_n']:5.1f}%")
    plot_path.with_suffix(".json").write_text(json.dumps({"budget": budget, **results}, indent=2) + "\n")
    plot(results, plot_path, budget)

    failures = []
    for key in ("reinforce", "expert-iteration", "best-of-n"):
        executed = results[key]["executed"]
        expected = (budget // BEST_OF) * BEST_OF if key == "best-of-n" else budget
        if executed != expected:
            failures.append(f"{key} executed {executed} programs, budget {expected}")
    values = [results[k][f] for k in ("reinforce", "expert-iteration") for f in ("before", "after")]
    values += [b["before"], b["visible-tests"], b["lever"], b["pass_at_n"]]
    if not all(0.0 <= v <= 1.0 for v in values):
        failures.append(f"a pass@1 outside [0, 1]: {values}")
    if max(b["visible-tests"], b["lever"]) > b["pass_at_n"] + 1e-9:
        failures.append("a reranker beat pass@8, its ceiling")
    if not plot_path.exists():
        failures.append("the plot was not written")
    for failure in failures:
        print(f"CHECK FAILED: {failure}", file=sys.stderr)
    print(f"plot: {plot_path}")
    print(
        f"checks: budgets equal, pass rates in range, no reranker above pass@8, plot written: "
        f"{'FAILED' if failures else 'OK'}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
