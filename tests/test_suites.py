"""The suites other than ``basic``: loaders, generators, DSL grammars and the assert-to-test conversion."""

from __future__ import annotations

import ast
import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest

import codegym
from codegym.suites import apps, arith, humaneval, listops, mbpp
from codegym.suites.assert_parse import (
    NotLiteral,
    assert_to_call_test,
    literal_value,
    split_statements,
)
from codegym.suites.procedural import split_for
from codegym.tasks import AssertTest, CallTest, StdioTest, TaskError


def run_reference(task: codegym.Task) -> Any:
    """The reference's entry point, run in this process (only for our own generated programs)."""
    namespace: dict[str, Any] = {}
    exec(compile(task.reference, task.task_id, "exec"), namespace)
    return namespace[task.entry_point]


def stmt(source: str) -> ast.stmt:
    return ast.parse(source).body[0]


# ---------------------------------------------------------------------------------------------------------
# assert_parse


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("assert f(1, 'a') == [1, 2]", CallTest(args=(1, "a"), expected=[1, 2])),
        ("assert [1] == f(1)", CallTest(args=(1,), expected=[1])),
        ("assert f(2) is True", CallTest(args=(2,), expected=True)),
        ("assert f(2) is None", CallTest(args=(2,), expected=None)),
        ("assert f(3) == (3 + 5, 3 * 5), 'msg'", CallTest(args=(3,), expected=(8, 15))),
        ("assert f('ab' + 'c') == 2.0/4.0", CallTest(args=("abc",), expected=0.5)),
        ("assert f([1, 0 ** 0]) == set()", CallTest(args=([1, 1],), expected=set())),
        ("assert abs(f(1.33) - 0.33) < 1e-6", CallTest(args=(1.33,), expected=0.33, float_tol=1e-6)),
        ("assert abs(2 - f(1)) <= 0.5", CallTest(args=(1,), expected=2.0, float_tol=0.5)),
        ("assert math.fabs(f(1) - 2) < 0.1", CallTest(args=(1,), expected=2.0, float_tol=0.1)),
        (
            "assert math.isclose(f(2), 12.5, rel_tol=0.001)",
            CallTest(args=(2,), expected=12.5, float_tol=0.001),
        ),
    ],
)
def test_assert_forms_become_call_tests(source: str, expected: CallTest) -> None:
    assert assert_to_call_test(stmt(source), ["f"]) == expected


@pytest.mark.parametrize(
    "source",
    [
        "assert f(1)",  # any truthy value passes: not a strict comparison
        "assert not f(1)",
        "assert f(x) == 1",  # non-literal argument
        "assert f(1) == g(2)",  # non-literal expected value
        "assert sorted(f(1)) == [1]",  # the result is transformed first
        "assert g(1) == 1",  # another function
        "assert f(1) != 2",
        "assert f(k=1) == 2",
        "x = f(1)",
    ],
)
def test_other_statements_are_not_call_tests(source: str) -> None:
    assert assert_to_call_test(stmt(source), ["f"]) is None


def test_truthy_as_bool_converts_only_when_asked() -> None:
    assert assert_to_call_test(stmt("assert f(1)"), ["f"], truthy_as_bool=True) == CallTest((1,), True)
    assert assert_to_call_test(stmt("assert not f(1)"), ["f"], truthy_as_bool=True) == CallTest((1,), False)


def test_literal_value_refuses_code() -> None:
    for source in ("__import__('os')", "x", "10 ** 1000", "[1] * 3", "f(1)"):
        with pytest.raises(NotLiteral):
            literal_value(ast.parse(source, mode="eval").body)


def test_split_statements_groups_context_and_keeps_order() -> None:
    body = ast.parse(
        "import random\n"
        "assert f(1) == 2\n"
        "assert f(2)\n"
        "assert True\n"
        "for i in range(3):\n"
        "    assert f(i) == i + 1\n"
        "y = 4\n"
        "assert f(y) == 5\n"
    ).body
    parsed = split_statements(body, ["f"])
    kinds = [type(t).__name__ for t in parsed.tests]
    assert kinds == ["AssertTest", "CallTest", "AssertTest"]
    assert parsed.tests[1] == CallTest(args=(1,), expected=2)
    assert parsed.tests[2] == AssertTest(code="assert f(2)\n")
    group = parsed.tests[0]
    assert isinstance(group, AssertTest)
    assert "import random" in group.code and "y = 4" in group.code and "assert f(y) == 5" in group.code
    assert parsed.dropped == 1
    namespace: dict[str, Any] = {"f": lambda v: v + 1}
    exec(group.code, namespace)  # the group runs as written: passes for a correct f
    namespace["f"] = lambda v: v
    with pytest.raises(AssertionError):
        exec(group.code, namespace)


# ---------------------------------------------------------------------------------------------------------
# arith


def test_arith_defaults_and_determinism() -> None:
    suite = codegym.load_suite("arith")
    assert len(suite) == 200
    assert suite.task_ids == arith.load().task_ids
    assert [t.reference for t in suite] == [t.reference for t in arith.load(seed=0)]
    assert [t.reference for t in arith.load(seed=1)] != [t.reference for t in suite]
    assert len(arith.load(n=1000, difficulty=3)) == 1000


def test_arith_tasks_are_consistent() -> None:
    for task in arith.load(n=120, seed=3, difficulty=[1, 2, 3, 4, 5]):
        meta = task.metadata
        assert meta["dsl"] == "arith" and meta["license"] == "MIT"
        assert (
            task.reference
            == meta["program_prefix"] + "".join(meta["reference_tokens"]) + meta["program_suffix"]
        )
        assert set(meta["reference_tokens"]) <= set(arith.VOCAB)
        assert len(task.visible_tests) >= 2 and len(task.tests) >= 5
        assert all(isinstance(t, CallTest) for t in (*task.tests, *task.visible_tests))
        fn = run_reference(task)
        for test in (*task.tests, *task.visible_tests):
            assert fn(*test.args) == test.expected and type(test.expected) is int
        assert f"f({task.visible_tests[0].args[0]}) == {task.visible_tests[0].expected}" in task.prompt
        assert meta["split"] == split_for("".join(meta["reference_tokens"]))
        # difficulty = depth of the tree: at least `difficulty` operators
        assert sum(t in arith.OPERATORS for t in meta["reference_tokens"]) >= task.difficulty


def test_arith_make_task_exact_values() -> None:
    tokens = ["(", "x", "+", "3", ")", "*", "2"]
    task = arith.make_task(tokens, task_id="t", rng=random.Random(0), difficulty=2)
    assert task.reference == "def f(x):\n    return (x+3)*2\n"
    assert "Write f(x) that returns (x + 3) * 2." in task.prompt
    assert all(t.expected == (t.args[0] + 3) * 2 for t in task.tests)
    with pytest.raises(ValueError, match="not a complete expression"):
        arith.make_task(["x", "+"], task_id="t", rng=random.Random(0), difficulty=1)


def test_arith_grammar() -> None:
    operand = {"x", *arith.DIGITS, "("}
    assert arith.valid_next_tokens([]) == operand
    assert arith.valid_next_tokens(["x"]) == {"+", "-", "*"}
    assert arith.valid_next_tokens(["(", "x"]) == {"+", "-", "*", ")"}
    assert arith.valid_next_tokens(["x", "+"]) == operand
    assert arith.can_end(["x", "+", "3"]) and not arith.can_end(["(", "x"]) and not arith.can_end([])
    # With a budget, only tokens that can still be completed in time: "(x" needs ")" next at max_len 3.
    assert arith.valid_next_tokens(["(", "x"], max_len=3) == {")"}
    assert arith.valid_next_tokens(["x"], max_len=1) == frozenset()
    assert "(" not in arith.valid_next_tokens(["x", "+"], max_len=3)
    for bad in (["x", "x"], ["3", "4"], [")"], ["+"], ["y"]):
        with pytest.raises(ValueError, match="arith: token"):
            arith.valid_next_tokens(bad)


def test_arith_masked_random_walks_compile_and_finish() -> None:
    rng = random.Random(0)
    for _ in range(300):
        budget, tokens = rng.randint(1, 10), []
        while not (arith.can_end(tokens) and rng.random() < 0.3):
            allowed = arith.valid_next_tokens(tokens, max_len=budget)
            if not allowed:
                break
            tokens.append(rng.choice(sorted(allowed)))
        assert arith.can_end(tokens) and len(tokens) <= budget
        namespace: dict[str, Any] = {}
        exec(arith.program_from_tokens(tokens), namespace)
        assert type(namespace["f"](2)) is int


@pytest.mark.parametrize("bad", [0, 6, "2", [], [1, 9], 2.5, None, True])
def test_arith_bad_difficulty(bad: Any) -> None:
    with pytest.raises(ValueError, match="arith: difficulty"):
        arith.load(difficulty=bad)


def test_arith_bad_n() -> None:
    with pytest.raises(ValueError, match="arith: n must be a positive int, got 0"):
        arith.load(n=0)


@pytest.mark.parametrize("module", [arith, listops], ids=["arith", "listops"])
@pytest.mark.parametrize("bad", [None, 1.5, "0", True])
def test_procedural_seed_must_be_an_int(module: Any, bad: Any) -> None:
    # seed=None would seed from the OS: a different suite on every load, under one id prefix.
    with pytest.raises(ValueError, match=r"seed must be an int \(suites are reproducible\), got"):
        module.load(seed=bad)


def test_splits_are_fixed_by_program_and_both_non_empty() -> None:
    for module in (arith, listops):
        suite = module.load(n=300, seed=5, difficulty=2)
        train, test = suite.split("train"), suite.split("test")
        assert len(train) + len(test) == 300 and len(test) > 0 and len(train) > len(test)
        train_bodies = {t.metadata["reference_tokens"] for t in train}
        assert not train_bodies & {t.metadata["reference_tokens"] for t in test}


# ---------------------------------------------------------------------------------------------------------
# listops


def test_listops_tasks_are_consistent() -> None:
    suite = listops.load(n=150, seed=2, difficulty=[1, 2, 3, 4, 5, 6])
    for task in suite:
        meta = task.metadata
        tokens = meta["reference_tokens"]
        assert len(tokens) == task.difficulty and set(tokens) <= set(listops.VOCAB)
        assert task.reference == meta["program_prefix"] + "".join(tokens) + meta["program_suffix"]
        assert len(task.visible_tests) >= 2 and len(task.tests) >= 5
        fn = run_reference(task)
        for test in (*task.tests, *task.visible_tests):
            assert fn(list(test.args[0])) == test.expected
        assert not any(t in listops.TERMINAL_TOKENS for t in tokens[:-1])
        outputs = {repr(t.expected) for t in task.tests}
        assert len(outputs) > 1  # never a constant function such as "even; then odd"
    assert len(listops.VOCAB) == 16 and len(set(listops.VOCAB)) == 16


def test_listops_exact_program_and_prompt() -> None:
    by_name = {name: token for token, name in listops.STEP_NAMES.items()}
    tokens = [by_name["sort"], by_name["add1"], by_name["even"]]
    task = listops.make_task(tokens, task_id="t", rng=random.Random(1), difficulty=3)
    assert task.reference == (
        "def f(xs):\n"
        "    xs = sorted(xs)\n"
        "    xs = [v + 1 for v in xs]\n"
        "    xs = [v for v in xs if v % 2 == 0]\n"
        "    return xs\n"
    )
    assert "sort it in increasing order; then add 1 to every element; then keep only the even" in task.prompt
    assert task.tests[0] == CallTest(args=([],), expected=[])
    for test in task.tests:
        assert test.expected == [v for v in sorted(v + 1 for v in test.args[0]) if v % 2 == 0]


def test_listops_grammar() -> None:
    sort, total = listops.VOCAB[0], next(iter(listops.TERMINAL_TOKENS))
    assert listops.valid_next_tokens([]) == set(listops.VOCAB)
    assert listops.valid_next_tokens([sort, total]) == frozenset()
    assert listops.valid_next_tokens([sort], max_len=1) == frozenset()
    assert not listops.can_end([]) and listops.can_end([total]) and listops.can_end([sort, sort])
    with pytest.raises(ValueError, match="may only be the last step"):
        listops.valid_next_tokens([total, sort])
    with pytest.raises(ValueError, match="not in VOCAB"):
        listops.can_end(["    xs = xs * 2\n"])


def test_listops_default_and_seed() -> None:
    suite = codegym.load_suite("listops")
    assert len(suite) == 200 and {t.difficulty for t in suite} == {1}
    assert [t.tests for t in suite] == [t.tests for t in listops.load()]
    with pytest.raises(ValueError, match="listops: difficulty"):
        listops.load(difficulty=7)


# ---------------------------------------------------------------------------------------------------------
# humaneval


@pytest.fixture(scope="module")
def he() -> codegym.TaskSuite:
    return codegym.load_suite("humaneval")


def test_humaneval_counts(he: codegym.TaskSuite) -> None:
    assert len(he) == 164
    calls = sum(isinstance(t, CallTest) for task in he for t in task.tests)
    asserts = sum(isinstance(t, AssertTest) for task in he for t in task.tests)
    visible = sum(len(task.visible_tests) for task in he)
    assert (calls, asserts, visible) == (1117, 16, 380)
    assert he.conversion_counts == {  # type: ignore[attr-defined]
        "call": 1117,
        "assert": 16,
        "visible": 380,
        "demoted": 0,
        "dropped_examples": 8,
    }
    assert he.note == "1117 call / 16 assert tests, 380 visible examples"  # type: ignore[attr-defined]
    assert sum(1 for task in he if task.visible_tests) == 133  # 31 prompts show no parsable example
    assert len(he.split("test")) == 32 and len(he.split("train")) == 132


def test_humaneval_conversions(he: codegym.TaskSuite) -> None:
    t0 = he.get("HumanEval/0")
    assert t0.entry_point == "has_close_elements" and t0.metadata["license"] == "MIT"
    assert t0.tests[0] == CallTest(args=([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3), expected=True)
    assert len(t0.tests) == 7 and all(isinstance(t, CallTest) for t in t0.tests)
    assert t0.visible_tests == (
        CallTest(args=([1.0, 2.0, 3.0], 0.5), expected=False),
        CallTest(args=([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3), expected=True),
    )
    assert he.get("HumanEval/2").tests[1] == CallTest(args=(1.33,), expected=0.33, float_tol=1e-6)
    assert he.get("HumanEval/8").tests[3] == CallTest(args=([3, 5, 7],), expected=(15, 105))
    assert he.get("HumanEval/52").tests[1] == CallTest(args=([1, 20, 4, 10], 5), expected=False)
    loop = he.get("HumanEval/53").tests[0]  # `import random` starts the context group
    assert isinstance(loop, AssertTest) and "for i in range(100)" in loop.code
    assert [type(t) for t in he.get("HumanEval/53").tests] == [AssertTest] + [CallTest] * 5
    tuple_form = he.get("HumanEval/33").tests[0]
    assert isinstance(tuple_form, AssertTest) and tuple_form.code.startswith("assert tuple(candidate(")
    # "median([-10, 4, 6, 1000, 10, 20]) -> 15.0" contradicts the canonical solution: dropped.
    assert he.get("HumanEval/47").visible_tests == (CallTest(args=([3, 1, 2, 4, 5],), expected=3),)
    # one-line example forms: "x_or_y(7, 34, 12) == 34", "fruit_distribution(...) -> 19 - 5 - 6 = 8"
    assert CallTest(args=(7, 34, 12), expected=34) in he.get("HumanEval/150").visible_tests
    assert CallTest(args=("5 apples and 6 oranges", 19), expected=8) in he.get("HumanEval/67").visible_tests
    assert CallTest(args=("1234",), expected="4321") in he.get("HumanEval/161").visible_tests


def test_humaneval_reference_and_difficulty(he: codegym.TaskSuite) -> None:
    records = [json.loads(line) for line in gzip.open(humaneval.default_path(), "rt")]
    for record, task in zip(records, he):
        assert task.reference == record["prompt"] + record["canonical_solution"]
        assert task.difficulty == humaneval.difficulty_of(record["canonical_solution"])
    assert humaneval.difficulty_of("    return x\n\n") == 1
    assert humaneval.difficulty_of("a\n" * 4) == 2 and humaneval.difficulty_of("a\n" * 11) == 3
    assert {t.difficulty for t in he} == {1, 2, 3}


def test_humaneval_strict_mismatch_table_is_current() -> None:
    records = [json.loads(line) for line in gzip.open(humaneval.default_path(), "rt")]
    saved = dict(humaneval.STRICT_MISMATCHES)
    humaneval.STRICT_MISMATCHES.clear()
    try:
        raw = humaneval.load()
    finally:
        humaneval.STRICT_MISMATCHES.update(saved)
    solutions = {r["task_id"]: r["canonical_solution"] for r in records}
    assert humaneval.strict_mismatches(raw, solutions) == saved


def test_humaneval_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "he.jsonl"
    good = {
        "task_id": "X/0",
        "prompt": "def f(x):\n",
        "canonical_solution": "    return x\n",
        "entry_point": "f",
    }
    path.write_text(
        json.dumps({**good, "test": "def check(candidate):\n    assert candidate(1) == 1\n"}) + "\n"
    )
    assert humaneval.load(path=path).get("X/0").tests == (CallTest(args=(1,), expected=1),)
    path.write_text("\n" + json.dumps({**good, "test": "def check(c):\n    assert c(1) = 1\n"}) + "\n")
    with pytest.raises(TaskError, match=r"he\.jsonl:2: field 'test' of X/0 is not valid Python"):
        humaneval.load(path=path)
    path.write_text(json.dumps({**good, "test": "assert True\n"}) + "\n")
    with pytest.raises(TaskError, match=r"he\.jsonl:1: field 'test' must define exactly one check"):
        humaneval.load(path=path)
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "entry_point"} | {"test": ""}) + "\n")
    with pytest.raises(TaskError, match=r"he\.jsonl:1: missing field 'entry_point'"):
        humaneval.load(path=path)


# ---------------------------------------------------------------------------------------------------------
# mbpp


def test_mbpp_sample() -> None:
    suite = codegym.load_suite("mbpp")
    assert len(suite) == 9 and suite.task_ids[0] == "mbpp/9001"
    vowels = suite.get("mbpp/9001")
    assert vowels.entry_point == "count_vowels" and vowels.reference.startswith("def count_vowels(s):\n")
    assert "\r" not in vowels.reference
    assert vowels.tests == (
        CallTest(args=("Reinforcement",), expected=5),
        CallTest(args=("rhythm",), expected=0),
        CallTest(args=("AEIOU xyz",), expected=5),
        CallTest(args=("",), expected=0),  # challenge_test_list
    )
    assert vowels.visible_tests == vowels.tests[:1]
    assert len(mbpp.load(include_challenge=False).get("mbpp/9001").tests) == 3
    assert "assert count_vowels('Reinforcement') == 5" in vowels.prompt
    square = suite.get("mbpp/9004")
    assert [t.kind for t in square.tests] == ["call", "assert", "assert"]
    assert square.tests[1] == AssertTest(
        code="is_perfect_square = candidate\nassert not is_perfect_square(15)\n"
    )
    area = suite.get("mbpp/9005")
    assert area.tests[0] == CallTest(args=(2,), expected=12.566370614359172, float_tol=1e-9)
    linked = suite.get("mbpp/9008")
    assert isinstance(linked.tests[0], AssertTest) and linked.tests[0].code.startswith("class Node:")
    assert [t.split for t in suite].count("test") == 2


def test_mbpp_split_rule_and_path(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    rows = [
        {"task_id": 11, "text": "t", "code": "def g(a):\n    return a", "test_list": ["assert g(1) == 1"]},
        {"task_id": 600, "text": "t", "code": "def g(a):\n    return a", "test_list": ["assert g(2) == 2"]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    suite = mbpp.load(path=path)
    assert [t.split for t in suite] == ["test", "train"] and suite[0].metadata["license"] == "CC-BY-4.0"


_MBPP = {"task_id": 1, "text": "t", "code": "", "test_list": ["assert g(1) == 1"]}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"task_id": None}, r"m\.jsonl:2: missing field 'task_id'"),
        ({"test_list": "assert g(1) == 1"}, "field 'test_list' should be list"),
        ({"test_list": []}, "task mbpp/1: field 'test_list' is empty"),
        ({"test_list": ["assert g(1) =="]}, r"m\.jsonl:2: field 'test_list'\[0\] is not valid"),
        ({"challenge_test_list": ["assert g(1) =="]}, r"field 'challenge_test_list'\[0\] is not valid"),
        ({"test_list": [1]}, r"field 'test_list'\[0\] should be str"),
        ({"test_list": ["assert 1"]}, "calls no function"),
        ({"text": 5}, "field 'text' should be str"),
        ({"split": "dev"}, "field 'split' should be 'train' or 'test', got 'dev'"),
    ],
)
def test_mbpp_malformed(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    record = {k: v for k, v in {**_MBPP, **changes}.items() if v is not None}
    path = tmp_path / "m.jsonl"
    path.write_text("\n" + json.dumps(record) + "\n")
    with pytest.raises(TaskError, match=message):
        mbpp.load(path=path)


def test_mbpp_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="source must be 'file' or 'hf', got 'web'"):
        mbpp.load(source="web")
    try:
        import datasets  # noqa: F401
    except ImportError:
        with pytest.raises(TaskError, match=r"needs the 'datasets' library \(pip install 'codegym\[hf\]'\)"):
            mbpp.load(source="hf")
    else:
        # Installed but unreachable (offline here and in CI): a clear error that says what to do instead.
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
        with pytest.raises(
            TaskError, match=r"mbpp: cannot load .* offline, pass path=\.\.\. to a local JSONL"
        ):
            mbpp.load(source="hf")
    with pytest.raises(TaskError, match="data file not found"):
        mbpp.load(path="/nonexistent/mbpp.jsonl")


# ---------------------------------------------------------------------------------------------------------
# apps


def test_apps_sample() -> None:
    suite = codegym.load_suite("apps")
    assert len(suite) == 6 and suite.skipped == 0  # type: ignore[attr-defined]
    first = suite.get("apps/9101")
    assert first.entry_point == "" and first.metadata["difficulty"] == 1
    assert first.tests[0] == StdioTest(stdin="2 3\n", expected_stdout="5\n")
    assert first.visible_tests == first.tests[:2] and len(first.tests) == 5
    assert all(t.float_tol == 1e-6 for t in suite.get("apps/9104").tests)
    stairs = suite.get("apps/9105_staircase")  # CodeContests shape: public tests are the visible ones
    assert len(stairs.visible_tests) == 2 and len(stairs.tests) == 6 and stairs.difficulty == 2
    assert stairs.reference.startswith("n = int(input())")
    assert {t.split for t in suite} == {"train", "test"}


def test_apps_call_based_skipped_and_lists(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    rows = [
        {"problem_id": 1, "question": "q", "solutions": ["print(1)"], "split": "test",
         "input_output": {"inputs": ["\n"], "outputs": ["1\n"]}},
        {"problem_id": 2, "question": "q", "solutions": "[]",
         "input_output": json.dumps({"fn_name": "f", "inputs": [[1]], "outputs": [[1]]})},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    suite = apps.load(path=path)
    assert suite.task_ids == ["apps/1"] and suite.skipped == 1  # type: ignore[attr-defined]
    assert suite[0].split == "test" and suite[0].reference == "print(1)\n"


_APPS = {
    "problem_id": 1,
    "question": "q",
    "solutions": ["x"],
    "input_output": {"inputs": ["1"], "outputs": ["1"]},
}
_CC = {"name": "n", "description": "d", "solutions": {"language": [2], "solution": ["x"]}}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"question": "q"}, r"a\.jsonl:1: missing field 'problem_id' \(APPS\) or 'name'"),
        ({**_APPS, "input_output": "{bad"}, "field 'input_output' is not valid JSON"),
        ({**_APPS, "input_output": "[]"}, "field 'input_output' should hold a JSON dict, got list"),
        ({**_APPS, "input_output": {"inputs": ["1"], "outputs": []}}, "has 1 inputs but 0 outputs"),
        ({**_APPS, "input_output": {"inputs": ["1"]}}, "field 'input_output' has no 'outputs' list"),
        ({**_APPS, "solutions": []}, r"field 'solutions' has no \(Python 3\) solution"),
        ({**_APPS, "input_output": {"inputs": [], "outputs": []}}, "task apps/1 has no tests"),
        ({**_CC, "public_tests": {"input": ["1"], "output": ["1"]}}, r"no \(Python 3\) solution"),
        ({**_CC, "public_tests": [1]}, "field 'public_tests' should be an object, got list"),
        ({**_APPS, "difficulty": "hard"}, "field 'difficulty' should be one of"),
        ({**_APPS, "float_tol": -1}, "field 'float_tol' should be a number >= 0, got -1"),
    ],
)
def test_apps_malformed(tmp_path: Path, record: dict[str, Any], message: str) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(TaskError, match=message):
        apps.load(path=path)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("arith", {"foo": 1}, r"load_suite\('arith'\): unknown argument\(s\) 'foo'; suite 'arith' takes: n"),
        ("basic", {"n": 3}, r"load_suite\('basic'\): unknown argument\(s\) 'n'; suite 'basic' takes: path"),
        ("humaneval", {"difficulty": 2}, "suite 'humaneval' takes: path"),
    ],
)
def test_unknown_suite_arguments_are_named_with_the_accepted_ones(
    name: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        codegym.load_suite(name, **kwargs)
