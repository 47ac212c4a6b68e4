"""Every built-in suite's references pass their own tests through the executor; bad input is an error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import codegym
from codegym.suites.validate import validate_suite
from codegym.tasks import CallTest, StdioTest, Task, TaskError, TaskSuite

SUITES = [
    ("basic", {}),
    ("arith", {"n": 150, "difficulty": [1, 2, 3, 4, 5]}),
    ("listops", {"n": 150, "difficulty": [1, 2, 3, 4, 5, 6]}),
    ("mbpp", {}),
    ("apps", {}),
]


@pytest.fixture(scope="module")
def executor() -> Iterator[codegym.Executor]:
    with codegym.Executor(backend="local") as ex:
        yield ex


@pytest.mark.parametrize(("name", "kwargs"), SUITES, ids=[name for name, _ in SUITES])
def test_references_pass(executor: codegym.Executor, name: str, kwargs: dict[str, object]) -> None:
    suite = codegym.load_suite(name, **kwargs)
    report = validate_suite(suite, executor)
    assert report.num_tasks == len(suite) > 0
    assert report.num_tests == sum(len(t.tests) for t in suite)


def test_humaneval_references_pass(executor: codegym.Executor) -> None:
    suite = codegym.load_suite("humaneval")
    report = validate_suite(suite, executor)
    assert report.num_tasks == 164 and report.num_tests == 1117 + 16 and report.num_visible == 380


def test_humaneval_and_mbpp_tests_reject_a_wrong_program(executor: codegym.Executor) -> None:
    """``return None`` passes no HumanEval task; assert tests (HumanEval/53's loop) fail in the sandbox."""
    he = codegym.load_suite("humaneval")
    results = executor.run_batch([(t, t.prompt + "    return None\n") for t in he])
    assert [t.task_id for t, r in zip(he, results) if r.passed] == []
    loop = he.get("HumanEval/53")
    result = executor.run(loop, loop.prompt + "    return x + y if x < 3 else x - y\n")
    assert [(o.passed, o.verified_in_parent) for o in result.tests] == [
        (False, False),
        (True, True),
        (True, True),
        (True, True),
        (False, True),
        (False, True),
    ]
    mbpp = codegym.load_suite("mbpp")
    wrong = [(t, f"{t.reference}\ndef {t.entry_point}(*args):\n    return None\n") for t in mbpp]
    assert not any(r.passed for r in executor.run_batch(wrong))


def test_procedural_tests_are_not_vacuous(executor: codegym.Executor) -> None:
    """Another task's reference fails: the hidden tests tell different programs apart."""
    for name in ("arith", "listops"):
        suite = codegym.load_suite(name, n=40, difficulty=2)
        pairs = [
            (a, b.reference)
            for a, b in zip(suite, suite[1:])
            if a.metadata["reference_tokens"] != b.metadata["reference_tokens"]
        ]
        results = executor.run_batch(pairs)
        assert not any(r.passed for r in results), name


def _task(task_id: str, reference: str, expected: int = 2) -> Task:
    return Task(
        task_id=task_id,
        prompt="double x",
        entry_point="f",
        reference=reference,
        tests=(CallTest(args=(1,), expected=expected),),
    )


def test_failing_reference_is_an_error_naming_the_task(executor: codegym.Executor) -> None:
    good = _task("t/good", "def f(x):\n    return 2 * x\n")
    wrong = _task("t/wrong", "def f(x):\n    return x\n")
    broken = _task("t/broken", "def f(x)\n    return x\n")
    stdio = Task("t/stdio", "echo", "", "print(input())\n", (StdioTest(stdin="a\n", expected_stdout="b\n"),))
    with pytest.raises(TaskError) as info:
        validate_suite(TaskSuite("s", [good, wrong, broken, stdio]), executor)
    message = str(info.value)
    assert "3 reference(s) fail their own tests" in message
    assert (
        "t/wrong: failed" in message and "t/broken: syntax_error" in message and "t/stdio: failed" in message
    )
    assert "t/good" not in message
    assert validate_suite(TaskSuite("s", [good]), executor).num_tests == 1


def test_failing_visible_example_is_an_error(executor: codegym.Executor) -> None:
    task = Task(
        task_id="t/visible",
        prompt="double x",
        entry_point="f",
        reference="def f(x):\n    return 2 * x\n",
        tests=(CallTest(args=(1,), expected=2),),
        visible_tests=(CallTest(args=(3,), expected=7),),
    )
    with pytest.raises(TaskError, match=r"t/visible: visible examples \[0\] fail for the reference"):
        validate_suite([task], executor)


def test_duplicate_ids_and_missing_tests_are_errors() -> None:
    task = _task("t/1", "def f(x):\n    return 2 * x\n")
    with pytest.raises(TaskError, match="suite s: duplicate task id 't/1'"):
        TaskSuite("s", [task, task])
    # validate_suite checks structure before running anything, so no executor is needed here
    with pytest.raises(TaskError, match=r"invalid suite:\n  t/1: duplicate task id"):
        validate_suite([task, task], executor=None)  # type: ignore[arg-type]
    with pytest.raises(TaskError, match="task t/2: has no tests"):
        Task(task_id="t/2", prompt="", entry_point="f", reference="", tests=())


def test_unknown_suite_lists_known_ones() -> None:
    with pytest.raises(KeyError) as info:
        codegym.load_suite("humaneva")
    message = info.value.args[0]
    assert "unknown suite 'humaneva'" in message
    for name in ("apps", "arith", "basic", "humaneval", "listops", "mbpp"):
        assert name in message
