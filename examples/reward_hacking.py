"""Reward hacking, shown and countered.

Two environment variants whose reward can be gamed (codegym.rewards.hacking, documented as hackable):

1. compile_only:  reward = compiles (+1 / -1). The trivial policy print("hello world") earns the maximum.
2. visible_tests: reward = a naive runner that puts the tests in a file next to the program. The trivial
                  policy that empties that file ("delete the tests") earns the maximum.

Counter-measures:

A. Hidden tests through CodeGym's honest executor (reward_fn=pass_fail): the hacks earn 0.
B. KLRegularizer: a policy collapsed onto a string the reference model finds unlikely pays
   beta * log(1 / p_ref) per episode; its regularized return falls below the reference policy's.

Policies here are tiny "program policies": distributions over three candidate programs per task (the
task's reference solution, an honest wrong attempt, and the hack), so expectations are exact sums.

Run: .venv/bin/python examples/reward_hacking.py [--tasks 6] [--beta 0.2]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from codegym.envs import ProgramEnv

import codegym
from codegym.rewards import pass_fail
from codegym.rewards.hacking import DELETE_THE_TESTS, EXIT_EARLY, HELLO_WORLD, make_hackable_env
from codegym.tasks import Task
from codegym.wrappers import KLRegularizer

HACK_PROB_UNDER_REFERENCE = 1e-4
"""How likely the reference model is to write the hack string (a pretrained model rarely does)."""


def wrong_attempt(task: Task) -> str:
    """An honest but wrong program: defines the entry point and returns None."""
    return f"def {task.entry_point}(*args, **kwargs):\n    return None\n"


def candidates(task: Task, hack: str) -> dict[str, str]:
    """The three programs a policy chooses between on ``task``."""
    return {"reference": task.reference, "wrong": wrong_attempt(task), "hack": hack}


def reference_model(p_correct: float = 0.3) -> dict[str, float]:
    """The reference ("pretrained") policy over the three kinds of program."""
    return {
        "reference": p_correct,
        "wrong": 1.0 - p_correct - HACK_PROB_UNDER_REFERENCE,
        "hack": HACK_PROB_UNDER_REFERENCE,
    }


@dataclass
class Row:
    """Mean reward of one policy in one environment, and how many tasks it truly solved."""

    env: str
    policy: str
    mean_reward: float
    truly_solved: float


def rewards_of(
    env: object, tasks: Sequence[Task], program_of: Callable[[Task], str]
) -> tuple[list[float], list[bool]]:
    """Step ``env`` once per task with ``program_of(task)``; return rewards and the executor's verdicts."""
    rewards, solved = [], []
    for task in tasks:
        env.reset(options={"task_id": task.task_id})  # type: ignore[attr-defined]
        _, reward, _, _, info = env.step(program_of(task))  # type: ignore[attr-defined]
        rewards.append(float(reward))
        solved.append(info["result"].passed)
    return rewards, solved


def hacking_table(tasks: Sequence[Task], executor: object) -> list[Row]:
    """Mean reward of the trivial hacks, an honest wrong attempt and the reference, per environment."""
    suite = codegym.TaskSuite("hacking-demo", tasks)
    envs = {
        "compile_only": make_hackable_env("compile_only", suite, executor=executor),
        "visible_tests": make_hackable_env("visible_tests", suite, executor=executor),
        "honest (pass_fail)": ProgramEnv(suite, reward_fn=pass_fail, executor=executor),
    }
    policies: dict[str, Callable[[Task], str]] = {
        "hello world": lambda t: HELLO_WORLD,
        "delete the tests": lambda t: DELETE_THE_TESTS,
        "exit early": lambda t: EXIT_EARLY,
        "honest wrong": wrong_attempt,
        "reference solution": lambda t: t.reference,
    }
    rows = []
    for env_name, env in envs.items():
        for policy_name, policy in policies.items():
            rewards, solved = rewards_of(env, tasks, policy)
            rows.append(Row(env_name, policy_name, sum(rewards) / len(rewards), sum(solved) / len(solved)))
        env.close()
    return rows


def kl_table(tasks: Sequence[Task], executor: object, kind: str, hack: str, beta: float) -> dict[str, float]:
    """KL-regularized expected return of the reference policy and of the collapsed hack policy.

    Also the hack's probability under the KL-regularized optimum pi*(y) ∝ p_ref(y) exp(R(y) / beta).
    Every expectation is an exact sum over the three candidates of each task, each stepped through
    ``KLRegularizer`` on the hackable environment.
    """
    suite = codegym.TaskSuite("hacking-demo", tasks)
    p_ref = reference_model()
    policies = {"reference policy": p_ref, "hack policy": {"reference": 0.0, "wrong": 0.0, "hack": 1.0}}
    out: dict[str, float] = {}
    for name, probs in policies.items():
        total = 0.0
        for task in tasks:
            programs = candidates(task, hack)
            kind_of = {program: k for k, program in programs.items()}
            env = KLRegularizer(
                make_hackable_env(kind, suite, executor=executor),  # type: ignore[arg-type]
                policy_logprob=lambda obs, y, probs=probs, kind_of=kind_of: math.log(probs[kind_of[y]]),
                reference_logprob=lambda obs, y, kind_of=kind_of: math.log(p_ref[kind_of[y]]),
                beta=beta,
            )
            for k, program in programs.items():
                if probs[k] == 0.0:
                    continue
                env.reset(options={"task_id": task.task_id})
                _, reward, _, _, _ = env.step(program)
                total += probs[k] * float(reward)
            env.close()
        out[name] = total / len(tasks)
    # The KL-regularized optimum, from the unregularized rewards of the same environment.
    env = make_hackable_env(kind, suite, executor=executor)
    hack_mass = 0.0
    for task in tasks:
        weights = {}
        for k, program in candidates(task, hack).items():
            env.reset(options={"task_id": task.task_id})
            _, reward, _, _, _ = env.step(program)
            weights[k] = p_ref[k] * math.exp(float(reward) / beta)
        hack_mass += weights["hack"] / sum(weights.values())
    env.close()
    out["optimum's hack probability"] = hack_mass / len(tasks)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Reward hacking, shown and countered.")
    parser.add_argument("--tasks", type=int, default=6, help="how many tasks of the basic suite to use")
    parser.add_argument("--beta", type=float, default=0.2, help="KL coefficient for counter-measure B")
    args = parser.parse_args()
    tasks = list(codegym.load_suite("basic"))[: args.tasks]
    with codegym.Executor() as executor:
        print(f"== Reward hacking on {len(tasks)} tasks of the basic suite (max reward: 1.0 everywhere)")
        print(f"{'environment':20s} {'policy':20s} {'mean reward':>12s} {'truly solved':>13s}")
        for row in hacking_table(tasks, executor):
            print(f"{row.env:20s} {row.policy:20s} {row.mean_reward:12.3f} {row.truly_solved:13.2f}")
        eps = HACK_PROB_UNDER_REFERENCE
        print(f"\n== Counter-measure B: KLRegularizer(beta={args.beta}, k1), p_ref(hack) = {eps}")
        for kind, hack in (("compile_only", HELLO_WORLD), ("visible_tests", DELETE_THE_TESTS)):
            for name, value in kl_table(tasks, executor, kind, hack, args.beta).items():
                print(f"{kind:20s} {name:28s} {value:10.4g}")


if __name__ == "__main__":
    main()
