"""The main job (``make demo``, ``codegym demo``): the embedded default model learns to write programs.

1. **Harness check**: the reference programs of the held-out tasks all pass and a junk program fails
   everywhere (the sandbox and the envs work end to end).
2. **Before**: held-out pass@1 of the default model, with a 95% interval over the tasks; the programs it
   writes (greedy) for three held-out prompts.
3. **Training**: REINFORCE with the GRPO baseline (or PPO) on the train split of ``codegym/Arith-Program-v0``
   (depth 1-3 expressions), through the Gymnasium vector API only, for a few minutes; a run directory with
   metrics, TensorBoard events, checkpoints and the learning-curve PNG.
4. **After**: the same held-out pass@1 and the programs for the same prompts.

Held-out tasks are the test split of ``load_suite("arith", n=600, seed=1, difficulty=[1, 2, 3])``: no
pretraining or training example has their programs (the split is a property of the program).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser", "run_demo"]

EXAMPLE_TASKS = 3


def _greedy_programs(policy: Any, tasks: list[Any], max_new_tokens: int) -> list[str]:
    out = policy.sample([t.prompt for t in tasks], max_new_tokens=max_new_tokens, temperature=0)
    return list(out.texts)


def _harness_check(tasks: list[Any]) -> bool:
    import codegym

    with codegym.Executor() as ex:
        refs = ex.run_batch([(t, t.reference) for t in tasks])
        junk = ex.run_batch([(t, "def f(x):\n    return None\n") for t in tasks])
    ok = all(r.passed for r in refs) and not any(r.passed for r in junk)
    print(
        f"harness: {sum(r.passed for r in refs)}/{len(tasks)} references pass, "
        f"{sum(r.passed for r in junk)}/{len(tasks)} junk programs pass: {'OK' if ok else 'FAILED'}"
    )
    return ok


def _interval(report: dict[str, Any]) -> str:
    low, high = report["pass_at_k_ci"]["1"]
    return f"{report['pass_at_k']['1']:.1%} (95% CI {low:.1%}-{high:.1%})"


def run_demo(
    *,
    algo: str = "reinforce",
    minutes: float = 4.0,
    seed: int = 0,
    eval_samples: int = 4,
    progress: bool = True,
) -> int:
    """Run the main job; return 0 when the harness check passes and the model improved on held-out tasks."""
    from codegym.agents.policy import LMPolicy
    from codegym.agents.ppo import PPOConfig
    from codegym.agents.reinforce import REINFORCEConfig
    from codegym.agents.train import RunConfig, heldout_tasks, run_training

    run = RunConfig(
        env="codegym/Arith-Program-v0",
        algo=algo,
        num_envs=32,
        updates=10_000,
        minutes=minutes,
        eval_samples=eval_samples,
        seed=seed,
    )
    tasks = heldout_tasks(run)
    print(
        f"CodeGym demo: the default model trains with {algo} on {run.env} (train split) for {minutes:g} min"
    )
    print(
        f"held-out: {len(tasks)} tasks, the test split of arith(n=600, seed=1, depths 1-3), "
        f"{eval_samples} samples each"
    )
    ok = _harness_check(tasks)
    policy = LMPolicy.from_pretrained("default", value_head=algo == "ppo")
    examples = tasks[:: max(1, len(tasks) // EXAMPLE_TASKS)][:EXAMPLE_TASKS]
    before_programs = _greedy_programs(policy, examples, 48)
    algo_config = REINFORCEConfig(baseline="grpo", group_size=4) if algo == "reinforce" else PPOConfig()
    out, history = run_training(run, algo_config, policy=policy, progress=progress)
    before = json.loads((out.path / "eval_before.json").read_text())
    after = json.loads((out.path / "eval_after.json").read_text())
    after_programs = _greedy_programs(policy, examples, 48)
    print(f"\nheld-out pass@1 before: {_interval(before)}")
    print(f"held-out pass@1 after:  {_interval(after)}  ({len(history)} updates)")
    for task, old, new in zip(examples, before_programs, after_programs):
        print(f"\n--- {task.task_id}: {task.prompt.splitlines()[0]}")
        print("before (greedy):\n" + _indent(old))
        print("after (greedy):\n" + _indent(new))
    print(f"\nlearning curve: {out.path / 'curve.png'}")
    print(f"run directory:  {out.path} (metrics.jsonl, tb/, checkpoint/, eval_before/after.json)")
    improved = after["pass_at_k"]["1"] > before["pass_at_k"]["1"]
    print("check: held-out pass@1 rose:", "OK" if improved else "NO")
    return 0 if ok and improved else 1


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in (text.rstrip("\n") or "<empty>").splitlines())


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    p = sub.add_parser("demo", help="the main job: the default model learns arith programs (held-out pass@1)")
    p.add_argument(
        "--algo", choices=["reinforce", "ppo"], default="reinforce", help="trainer (default reinforce)"
    )
    p.add_argument("--minutes", type=float, default=4.0, help="training time in minutes (default 4)")
    p.add_argument("--seed", type=int, default=0, help="one seed for everything (default 0)")
    p.add_argument("--eval-samples", type=int, default=4, help="samples per held-out task (default 4)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(
        func=lambda a: run_demo(
            algo=a.algo, minutes=a.minutes, seed=a.seed, eval_samples=a.eval_samples, progress=not a.quiet
        )
    )
