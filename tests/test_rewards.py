"""Reward tables: (program, execution result) -> exact reward, for every reward function and every status.

Results are built directly for each status here: the rewards are pure functions of (task, program,
result). End-to-end checks through the real executor live in tests/test_rewards_e2e.py.
"""

from __future__ import annotations

import math

import pytest

import codegym.rewards as R
from codegym.execution.result import STATUSES, ExecutionResult
from codegym.execution.result import TestOutcome as Outcome
from codegym.rewards import (
    LengthPenalty,
    WeightedSum,
    build_program,
    coderl_graded,
    compiles,
    completion_text,
    dataflow_match,
    extract_code,
    format_checks,
    format_reward,
    pass_fail,
    pass_rate,
    ppocoder,
    ppocoder_reward,
    reward_breakdown,
    rltf_adaptive,
    syntax_match,
    weighted_sum,
)
from codegym.tasks import CallTest, StdioTest, Task

REFERENCE = "def add(a, b):\n    return a + b\n"
TASK = Task(
    task_id="t/add",
    prompt='def add(a, b):\n    """Return a + b."""\n',
    entry_point="add",
    reference=REFERENCE,
    tests=tuple(CallTest((i, i), 2 * i) for i in range(4)),
)

PASSED = "def add(a, b):\n    return a + b\n"
WRONG_HALF = "def add(a, b):\n    return a * 2 if a < 2 else 0\n"
SYNTAX = "def add(a, b)\n    return a + b\n"
RAISES = "def add(a, b):\n    raise ValueError('no')\n"
LOOPS = "def add(a, b):\n    while True:\n        pass\n"


def _result(status: str, passed: int = 0, total: int = 4) -> ExecutionResult:
    tests = tuple(
        Outcome(passed=i < passed, status="passed" if i < passed else status, duration_s=0.001)
        for i in range(total)
    )
    if status == "syntax_error":
        tests = ()
    return ExecutionResult(status=status, tests=tests, task_id=TASK.task_id)


# (status, program, passed tests, pass_fail, pass_rate, coderl, rltf, compiles)
TABLE = [
    ("passed", PASSED, 4, 1.0, 1.0, 1.0, 1.0, 1.0),
    ("failed", WRONG_HALF, 2, 0.0, 0.5, -0.3, -0.3 + 1.3 * 0.5, 1.0),
    ("failed", WRONG_HALF, 0, 0.0, 0.0, -0.3, -0.3, 1.0),
    ("failed", WRONG_HALF, 3, 0.0, 0.75, -0.3, -0.3 + 1.3 * 0.75, 1.0),
    ("syntax_error", SYNTAX, 0, 0.0, 0.0, -1.0, -1.0, -1.0),
    ("runtime_error", RAISES, 0, 0.0, 0.0, -0.6, -0.6, 1.0),
    ("runtime_error", RAISES, 1, 0.0, 0.25, -0.6, -0.6, 1.0),
    ("timeout", LOOPS, 0, 0.0, 0.0, -0.6, -0.6, 1.0),
    ("memory_limit", "def add(a, b):\n    return [0] * 10**12\n", 0, 0.0, 0.0, -0.6, -0.6, 1.0),
    ("output_limit", "def add(a, b):\n    print('x' * 10**9)\n", 0, 0.0, 0.0, -0.6, -0.6, 1.0),
    ("sandbox_error", PASSED, 0, 0.0, 0.0, -0.6, -0.6, 1.0),
]


def test_table_covers_every_status() -> None:
    assert {row[0] for row in TABLE} == set(STATUSES)


@pytest.mark.parametrize(("status", "program", "n_passed", "pf", "pr", "crl", "rltf", "comp"), TABLE)
def test_outcome_reward_table(
    status: str, program: str, n_passed: int, pf: float, pr: float, crl: float, rltf: float, comp: float
) -> None:
    result = _result(status, n_passed)
    assert pass_fail(TASK, program, result) == pf
    assert pass_rate(TASK, program, result) == pr
    assert coderl_graded(TASK, program, result) == crl
    assert rltf_adaptive(TASK, program, result) == pytest.approx(rltf, abs=1e-12)
    assert compiles(TASK, program, result) == comp


def test_rltf_is_continuous_at_the_ends_and_unknown_status_is_named() -> None:
    failed = _result("failed", 0)
    assert rltf_adaptive(TASK, WRONG_HALF, failed) == coderl_graded(TASK, WRONG_HALF, failed)
    assert rltf_adaptive(TASK, WRONG_HALF, _result("failed", 4)) == pytest.approx(1.0)
    bogus = ExecutionResult(status="exploded", task_id="t/add")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="t/add.*'exploded'"):
        coderl_graded(TASK, PASSED, bogus)


def test_compiles_reads_the_program_not_the_status() -> None:
    ok = _result("passed", 4)
    assert compiles(TASK, 'print("hello world")', ok) == 1.0
    assert compiles(TASK, "x = (", ok) == -1.0
    assert compiles(TASK, "x = 1\0", ok) == -1.0  # null byte
    assert compiles(TASK, "(" * 500 + ")" * 500, ok) == -1.0  # parser recursion limit


# Syntax and data-flow match: values computed by codebleu 0.7.0's corpus functions for these pairs
# (tests/test_rewards_similarity.py checks the agreement on 60+ pairs).
SIMILARITY_TABLE = [
    (PASSED, 1.0, 1.0),
    ("def add(x, y):\n    return x + y\n", 1.0, 1.0),  # renaming changes neither
    ("def add(a, b):\n    # sum\n    return a + b\n", 1.0, 1.0),  # comments are removed
    ("def add(a, b):\n    s = a + b\n    return s\n", 1 / 3, 1.0),
    ('print("hello world")', 0.0, 0.0),
    (SYNTAX, 1 / 6, 1.0),  # tree-sitter recovers a partial tree
    ("", 0.0, 0.0),
]


@pytest.mark.parametrize(("program", "syn", "dfg"), SIMILARITY_TABLE)
def test_similarity_table(program: str, syn: float, dfg: float) -> None:
    result = _result("failed")
    assert syntax_match(TASK, program, result) == pytest.approx(syn, abs=1e-12)
    assert dataflow_match(TASK, program, result) == pytest.approx(dfg, abs=1e-12)


def test_ppocoder_is_the_weighted_sum_of_its_three_terms() -> None:
    result = _result("failed")
    program = "def add(a, b):\n    s = a + b\n    return s\n"
    total, parts = reward_breakdown(ppocoder, TASK, program, result)
    assert parts == pytest.approx({"compiles": 1.0, "syntax_match": 1 / 3, "dataflow_match": 1.0})
    assert total == pytest.approx(1.0 + 1 / 3 + 1.0)
    hello_total, _ = reward_breakdown(ppocoder, TASK, 'print("hello world")', result)
    assert hello_total == 1.0  # compiles, matches nothing
    assert ppocoder(TASK, SYNTAX, _result("syntax_error")) == pytest.approx(-1 + 1 / 6 + 1.0)
    graded = ppocoder_reward(0.5, 2.0, 0.0, execution=coderl_graded)
    total, parts = reward_breakdown(graded, TASK, program, result)
    assert parts == pytest.approx({"coderl_graded": -0.15, "syntax_match": 2 / 3, "dataflow_match": 0.0})
    assert total == pytest.approx(-0.15 + 2 / 3)


def test_syntax_match_needs_a_reference() -> None:
    no_ref = Task("t/noref", "p", "f", "  ", (CallTest((), 1),))
    with pytest.raises(ValueError, match="t/noref.*reference"):
        syntax_match(no_ref, PASSED, _result("passed", 4))


def test_format_reward_table() -> None:
    r = _result("passed", 4)
    assert format_reward(TASK, PASSED, r) == 1.0
    assert format_reward(TASK, "```python\n" + PASSED + "```\n", r) == 0.0
    assert format_reward(TASK, "Here is the code:\n" + PASSED, r) == 0.0
    assert format_reward(TASK, "def plus(a, b):\n    return a + b\n", r) == 0.0
    assert format_reward(TASK, "from operator import add\n", r) == 1.0
    assert format_reward(TASK, "add = lambda a, b: a + b\n", r) == 1.0
    assert format_checks(TASK, "def plus(a, b): ...") == {
        "parses": True,
        "no_fences": True,
        "defines_entry_point": False,
    }
    stdio = Task("t/io", "read n, print 2n", "", "print(2 * int(input()))", (StdioTest("2\n", "4\n"),))
    assert format_reward(stdio, "print(2 * int(input()))", r) == 1.0


def test_length_penalty_table() -> None:
    r = _result("passed", 4)
    hard = LengthPenalty(max_length=10)
    assert hard(TASK, "x" * 10, r) == 0.0
    assert hard(TASK, "x" * 11, r) == -1.0
    soft = LengthPenalty(max_length=20, cache_length=10)
    assert soft(TASK, "x" * 10, r) == 0.0
    assert soft(TASK, "x" * 15, r) == -0.5
    assert soft(TASK, "x" * 20, r) == -1.0
    assert soft(TASK, "x" * 21, r) == -1.0
    ref_len = len(REFERENCE)  # 32
    assert R.length_penalty(TASK, "x" * (2 * ref_len), r) == 0.0
    assert R.length_penalty(TASK, "x" * (3 * ref_len), r) == -0.5
    assert R.length_penalty(TASK, "x" * (5 * ref_len), r) == -1.0
    tokens = LengthPenalty(max_length=3, count=lambda s: len(s.split()))
    assert tokens(TASK, "a b c", r) == 0.0 and tokens(TASK, "a b c d", r) == -1.0
    with pytest.raises(ValueError, match="cache_length <= max_length"):
        LengthPenalty(max_length=5, cache_length=6)


def test_weighted_sum_components_add_up_and_nest() -> None:
    r = _result("failed", 2)
    reward = weighted_sum(pass_rate=1.0, compiles=0.1, fmt=(format_reward, 0.5))
    total, parts = reward_breakdown(reward, TASK, WRONG_HALF, r)
    assert parts == pytest.approx({"pass_rate": 0.5, "compiles": 0.1, "fmt": 0.5})
    assert total == pytest.approx(1.1)
    nested = WeightedSum([(reward, 2.0), (ppocoder, -1.0)], name="outer")
    total, parts = reward_breakdown(nested, TASK, WRONG_HALF, r)
    assert set(parts) == {
        "weighted_sum.pass_rate",
        "weighted_sum.compiles",
        "weighted_sum.fmt",
        "ppocoder.compiles",
        "ppocoder.syntax_match",
        "ppocoder.dataflow_match",
    }
    assert parts["weighted_sum.pass_rate"] == pytest.approx(1.0)
    assert parts["ppocoder.compiles"] == -1.0
    assert total == pytest.approx(sum(parts.values()))
    assert nested.__name__ == "outer" and reward.weights == {"pass_rate": 1.0, "compiles": 0.1, "fmt": 0.5}


def test_weighted_sum_rejects_bad_terms_with_names() -> None:
    with pytest.raises(ValueError, match="unknown reward 'pass_rat'.*pass_rate"):
        weighted_sum(pass_rat=1.0)
    with pytest.raises(ValueError, match="weight of 'pass_fail' must be a finite number, got nan"):
        WeightedSum([(pass_fail, math.nan)])
    with pytest.raises(ValueError, match="two terms are named 'pass_fail'"):
        weighted_sum((pass_fail, 1.0), (pass_fail, 2.0))
    with pytest.raises(ValueError, match="at least one"):
        WeightedSum([])


def test_registry_and_names() -> None:
    assert R.get_reward("rltf_adaptive") is rltf_adaptive
    with pytest.raises(KeyError, match="unknown reward 'nope'"):
        R.get_reward("nope")
    for name, fn in R.REWARDS.items():
        assert R.reward_name(fn) == name
        assert isinstance(fn, R.RewardFunction)


def test_extract_code_and_build_program() -> None:
    assert extract_code("```python\nx = 1\n```\ntext") == "x = 1\n"
    assert extract_code("intro\n```\ny = 2\n```") == "y = 2\n"
    assert extract_code("```js\nlet a\n```\n```py\nz = 3\n```") == "z = 3\n"
    assert extract_code("x = 1\n") == "x = 1\n"
    body = "    return a + b\n"
    assert build_program(TASK, body) == TASK.prompt + body
    assert build_program(TASK, PASSED) == PASSED
    assert build_program(TASK, "```python\n" + PASSED + "```") == PASSED
    assert build_program(TASK, PASSED, "prompt+completion") == TASK.prompt + PASSED
    assert completion_text([{"role": "assistant", "content": "abc"}]) == "abc"
    with pytest.raises(TypeError, match="completion must be"):
        completion_text(3)


class _TimedExecutor:
    """Returns a passing result whose tests took ``per_test`` seconds each (the reference timing)."""

    def __init__(self, per_test: float) -> None:
        self.per_test = per_test
        self.programs: list[str] = []

    def run(self, task: Task, program: str) -> ExecutionResult:
        self.programs.append(program)
        tests = tuple(Outcome(True, "passed", duration_s=self.per_test) for _ in task.tests)
        return ExecutionResult("passed", tests=tests, task_id=task.task_id)


def _timed(status: str, per_test: float) -> ExecutionResult:
    passed = status == "passed"
    tests = tuple(Outcome(passed, status, duration_s=per_test) for _ in TASK.tests)
    return ExecutionResult(status=status, tests=tests, task_id=TASK.task_id)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "per_test", "expected"),
    [
        ("passed", 0.010, 1.0),  # as fast as the reference
        ("passed", 0.020, 0.5),  # twice as slow
        ("passed", 0.004, 2.0),  # 2.5x faster: clipped at max_speedup
        ("passed", 0.0, 2.0),  # below min_time: floored, then clipped
        *[(s, 0.001, 0.0) for s in STATUSES if s != "passed"],  # only passing programs earn it
    ],
)
def test_efficiency_table(status: str, per_test: float, expected: float) -> None:
    executor = _TimedExecutor(per_test=0.010)
    eff = R.Efficiency(executor, repeats=3)
    assert eff(TASK, PASSED, _timed(status, per_test)) == pytest.approx(expected)


def test_efficiency_times_the_reference_once_with_distinct_programs() -> None:
    executor = _TimedExecutor(per_test=0.010)
    eff = R.Efficiency(executor, repeats=3)
    assert eff.reference_time(TASK) == pytest.approx(0.040)  # 4 tests x 10 ms
    eff(TASK, PASSED, _timed("passed", 0.010))
    assert len(executor.programs) == 3 and len(set(executor.programs)) == 3
    assert all(p.startswith(REFERENCE.rstrip()) for p in executor.programs)
    assert R.run_time(ExecutionResult("passed", duration_s=0.5)) == 0.5  # no per-test times: whole run
    with pytest.raises(ValueError, match="max_speedup must be a finite number > 0, got 0"):
        R.Efficiency(executor, max_speedup=0)
    with pytest.raises(ValueError, match="needs an executor with run"):
        R.Efficiency(object())


@pytest.mark.parametrize(
    ("fn", "args", "message"),
    [
        (pass_fail, (TASK, PASSED, None), "pass_fail: result must be an ExecutionResult .* got NoneType"),
        (pass_rate, (TASK, PASSED, {"status": "passed"}), "pass_rate: result must be an ExecutionResult"),
        (coderl_graded, (TASK, PASSED, "passed"), "coderl_graded: result must be an ExecutionResult"),
        (rltf_adaptive, (TASK, PASSED, None), "rltf_adaptive: result must be"),
        (compiles, (TASK, b"x = 1", None), r"compiles: program must be the program text \(str\), got bytes"),
        (format_reward, ("t/1", PASSED, None), "format_reward: task must be a codegym Task, got str 't/1'"),
        (R.length_penalty, (TASK, None, None), "length_penalty: program must be the program text"),
    ],
)
def test_wrong_argument_types_name_the_reward_and_argument(fn, args, message):
    with pytest.raises(TypeError, match=message):
        fn(*args)


def test_malformed_weighted_sum_terms_are_named():
    with pytest.raises(ValueError, match=r"weighted_sum: term 0 must be a \(reward_fn, weight\) pair"):
        weighted_sum((pass_fail,))
    with pytest.raises(ValueError, match=r"term 'x' must be a \(reward_fn, weight\) pair"):
        weighted_sum(x=(pass_fail, 1.0, 2.0))


def test_trl_adapter_rejects_a_non_callable_reward_and_non_task_input():
    with pytest.raises(TypeError, match="trl_reward_func: reward must be callable"):
        R.trl_reward_func([TASK], reward=3)
    with pytest.raises(TypeError, match="trl_reward_func needs Tasks, a TaskSuite or a suite name, got 3"):
        R.trl_reward_func(3)
