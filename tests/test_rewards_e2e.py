"""Rewards end to end through the real executor: reward tables on real runs, efficiency, the TRL adapter,
and reward hacking shown and countered."""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import codegym
from codegym.execution.result import ExecutionResult
from codegym.rewards import (
    Efficiency,
    coderl_graded,
    compiles,
    pass_fail,
    pass_rate,
    rltf_adaptive,
    run_time,
    trl_reward_func,
    weighted_sum,
)
from codegym.rewards.hacking import (
    DELETE_THE_TESTS,
    EXIT_EARLY,
    HELLO_WORLD,
    NaiveTestReward,
    make_hackable_env,
)
from codegym.tasks import CallTest, Task

ADD = Task(
    task_id="e2e/add",
    prompt="def add(a, b):\n",
    entry_point="add",
    reference="def add(a, b):\n    return a + b\n",
    tests=tuple(CallTest((i, 1), i + 1) for i in range(4)),
)

# program -> (status, pass_fail, pass_rate, coderl_graded, rltf_adaptive, compiles)
E2E_TABLE = [
    ("def add(a, b):\n    return a + b\n", "passed", 1.0, 1.0, 1.0, 1.0, 1.0),
    ("def add(a, b):\n    return 1 if a == 0 else 0\n", "failed", 0.0, 0.25, -0.3, -0.3 + 1.3 * 0.25, 1.0),
    ("def add(a, b)\n    return a + b\n", "syntax_error", 0.0, 0.0, -1.0, -1.0, -1.0),
    ("def add(a, b):\n    return a + b + undefined_name\n", "runtime_error", 0.0, 0.0, -0.6, -0.6, 1.0),
    ("def add(a, b):\n    while True:\n        pass\n", "timeout", 0.0, 0.0, -0.6, -0.6, 1.0),
]


@pytest.fixture(scope="module")
def executor() -> Iterator[Any]:
    with codegym.Executor(timeout_s=1.0) as ex:
        yield ex


@pytest.mark.parametrize(("program", "status", "pf", "pr", "crl", "rltf", "comp"), E2E_TABLE)
def test_reward_table_through_the_executor(
    executor: Any, program: str, status: str, pf: float, pr: float, crl: float, rltf: float, comp: float
) -> None:
    result = executor.run(ADD, program)
    assert result.status == status, result.feedback
    assert pass_fail(ADD, program, result) == pf
    assert pass_rate(ADD, program, result) == pr
    assert coderl_graded(ADD, program, result) == crl
    assert rltf_adaptive(ADD, program, result) == pytest.approx(rltf)
    assert compiles(ADD, program, result) == comp


def test_efficiency_uses_the_same_executor_and_caches_the_reference(executor: Any) -> None:
    slow_ref = Task(
        task_id="e2e/sum_to",
        prompt="def sum_to(n):\n",
        entry_point="sum_to",
        reference=(
            "def sum_to(n):\n    total = 0\n    for i in range(n + 1):\n"
            "        total += i\n    return total\n"
        ),
        tests=(CallTest((300_000,), 300_000 * 300_001 // 2), CallTest((200_000,), 200_000 * 200_001 // 2)),
    )
    calls: list[str] = []

    class Counting:
        def run(self, task: Task, program: str, **kwargs: Any) -> ExecutionResult:
            calls.append(program)
            return executor.run(task, program)

    eff = Efficiency(Counting(), repeats=3)
    fast = "def sum_to(n):\n    return n * (n + 1) // 2\n"
    fast_result = executor.run(slow_ref, fast)
    assert fast_result.passed and run_time(fast_result) > 0
    speedup = eff(slow_ref, fast, fast_result)
    assert len(calls) == 3 and all(c.startswith(slow_ref.reference.rstrip()) for c in calls)
    assert len(set(calls)) == 3  # three distinct programs: the executor's cache cannot answer the repeats
    assert speedup == 2.0  # the closed form is far more than twice as fast: clipped
    eff(slow_ref, fast, fast_result)
    assert len(calls) == 3  # the reference timing is cached
    ref_result = executor.run(slow_ref, slow_ref.reference)
    assert 0.0 < eff(slow_ref, slow_ref.reference, ref_result) <= 2.0  # timing noise: no tighter bound
    wrong = executor.run(slow_ref, "def sum_to(n):\n    return 0\n")
    assert eff(slow_ref, "def sum_to(n):\n    return 0\n", wrong) == 0.0
    broken = Task("e2e/broken", "", "f", "def f():\n    return 2\n", (CallTest((), 1),))
    with pytest.raises(RuntimeError, match="e2e/broken.*reference program did not pass"):
        Efficiency(executor).reference_time(broken)


def test_trl_adapter_scores_a_batch_through_run_batch(executor: Any) -> None:
    calls: list[int] = []

    class Counting:
        def run_batch(self, jobs: list[tuple[Task, str]]) -> list[ExecutionResult]:
            calls.append(len(jobs))
            return executor.run_batch(jobs)

    fn = trl_reward_func([ADD], weighted_sum(pass_fail=1.0, compiles=0.5), executor=Counting())
    completions = [
        "    return a + b\n",  # body only: appended to the prompt
        "```python\ndef add(a, b):\n    return a + b\n```",  # fenced full program
        [{"role": "assistant", "content": "def add(a, b):\n    return a - b\n"}],  # chat format, wrong
        "def add(a, b)\n",  # syntax error
    ]
    rewards = fn(prompts=["p"] * 4, completions=completions, task_id=["e2e/add"] * 4, trainer_state=None)
    assert rewards == [1.5, 1.5, 0.5, -0.5]
    assert calls == [4]  # one batch
    assert fn.__name__ == "codegym_weighted_sum"
    assert fn.last_components[2] == {"pass_fail": 0.0, "compiles": 0.5}
    lenient = trl_reward_func([ADD], executor=executor, on_missing="none")
    assert lenient(
        prompts=["p", "p"], completions=["    return a + b\n"] * 2, task_id=["e2e/add", "x/y"]
    ) == [
        1.0,
        None,
    ]
    with pytest.raises(KeyError, match="unknown task id 'x/y'"):
        fn(prompts=["p"], completions=["x"], task_id=["x/y"])
    with pytest.raises(KeyError, match="no 'task_id' column"):
        fn(prompts=["p"], completions=["x"], problem=["e2e/add"])


# ---- reward hacking --------------------------------------------------------------------------------------


def _example() -> Any:
    path = Path(__file__).resolve().parents[1] / "examples" / "reward_hacking.py"
    spec = importlib.util.spec_from_file_location("reward_hacking_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the module runs
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hack_tasks() -> list[Task]:
    return list(codegym.load_suite("basic"))[:4]


def test_naive_reward_refuses_to_run_without_acknowledgement() -> None:
    with pytest.raises(ValueError, match="unsafe=True"):
        NaiveTestReward()


def test_trivial_policies_earn_the_maximum_on_hackable_envs_and_nothing_on_honest_ones(
    executor: Any, hack_tasks: list[Task]
) -> None:
    rows = {(r.env, r.policy): r for r in _example().hacking_table(hack_tasks, executor)}
    # compile-only reward: print("hello world") is optimal on every task (+1 is the maximum of compiles).
    assert rows["compile_only", "hello world"].mean_reward == 1.0
    assert rows["compile_only", "hello world"].truly_solved == 0.0
    # visible, rewritable tests: deleting them or exiting early earns the maximum, solving nothing.
    for hack in ("delete the tests", "exit early"):
        assert rows["visible_tests", hack].mean_reward == 1.0
        assert rows["visible_tests", hack].truly_solved == 0.0
    # The naive runner is not simply broken: honest wrong programs fail it, the reference passes it.
    assert rows["visible_tests", "honest wrong"].mean_reward == 0.0
    assert rows["visible_tests", "reference solution"].mean_reward == 1.0
    # Counter-measure A: hidden tests through the honest executor remove the gain of every hack.
    for hack in ("hello world", "delete the tests", "exit early"):
        assert rows["honest (pass_fail)", hack].mean_reward == 0.0
    assert rows["honest (pass_fail)", "reference solution"].mean_reward == 1.0


@pytest.mark.parametrize(
    ("kind", "hack"), [("compile_only", HELLO_WORLD), ("visible_tests", DELETE_THE_TESTS)]
)
def test_kl_regularizer_removes_the_gain_of_the_collapsed_hack_policy(
    executor: Any, hack_tasks: list[Task], kind: str, hack: str
) -> None:
    example = _example()
    beta = 0.2
    table = example.kl_table(hack_tasks[:2], executor, kind, hack, beta)
    eps = example.HACK_PROB_UNDER_REFERENCE
    # Unregularized, the hack earns the maximum (1.0) ...
    env = make_hackable_env(kind, codegym.TaskSuite("t", hack_tasks[:2]), executor=executor)
    env.reset(options={"task_id": hack_tasks[0].task_id})
    assert env.step(hack)[1] == 1.0
    env.close()
    # ... regularized, it pays beta * log(1 / p_ref(hack)) and falls below the reference policy.
    assert table["hack policy"] == pytest.approx(1.0 - beta * math.log(1 / eps))
    assert table["hack policy"] < table["reference policy"]
    assert table["optimum's hack probability"] < 0.01


def test_exit_early_is_a_failure_for_the_honest_executor(executor: Any) -> None:
    for program in (EXIT_EARLY, DELETE_THE_TESTS, HELLO_WORLD):
        result = executor.run(ADD, program)
        assert not result.passed and pass_fail(ADD, program, result) == 0.0
