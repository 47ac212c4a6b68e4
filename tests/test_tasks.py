"""The task model, the suite registry and the data-file reader: behaviour and error messages."""

from __future__ import annotations

import gzip
import json

import pytest

import codegym
from codegym.suites.jsonl import read_jsonl, require
from codegym.tasks import (
    AssertTest,
    CallTest,
    StdioTest,
    Task,
    TaskError,
    TaskSuite,
    is_plain_data,
    parse_literal,
)


def make_task(task_id: str = "t/0", split: str | None = None, **kw) -> Task:
    meta = {"split": split} if split else {}
    return Task(
        task_id=task_id,
        prompt="def add(a, b):\n",
        entry_point="add",
        reference="def add(a, b):\n    return a + b\n",
        tests=kw.pop("tests", (CallTest((1, 2), 3),)),
        metadata=meta,
        **kw,
    )


@pytest.mark.parametrize(
    "value, plain",
    [
        (None, True),
        ((1, 2.5, "x", b"y", True), True),
        ({"a": [1, {2, 3}], (1, 2): frozenset({4})}, True),
        (type("MyInt", (int,), {})(3), False),
        ([1, object()], False),
        ({"k": type("S", (str,), {})("v")}, False),
    ],
)
def test_plain_data_accepts_exact_builtin_types_only(value, plain):
    assert is_plain_data(value) is plain


def test_plain_data_rejects_pathological_nesting():
    deep: list = []
    for _ in range(150):
        deep = [deep]
    assert is_plain_data(deep) is False


def test_parse_literal_keeps_tuples_and_sets_and_names_the_place():
    assert parse_literal("((1, 2), {3})", where="f:1 field 'args'") == ((1, 2), {3})
    with pytest.raises(TaskError, match=r"f:7 field 'expected': not a Python literal"):
        parse_literal("__import__('os')", where="f:7 field 'expected'")


def test_call_test_validates_its_data():
    assert CallTest([1, 2], 3).args == (1, 2)
    with pytest.raises(TaskError, match="plain data"):
        CallTest((object(),), 1)
    with pytest.raises(TaskError, match="float_tol"):
        CallTest((1,), 1.0, float_tol=-1)
    with pytest.raises(TaskError, match="strings"):
        StdioTest(1, "x")  # type: ignore[arg-type]
    with pytest.raises(TaskError, match="non-empty"):
        AssertTest("   ")


def test_task_errors_name_the_task():
    with pytest.raises(TaskError, match="task t/9: has no tests"):
        make_task("t/9", tests=())
    with pytest.raises(TaskError, match="task_id"):
        make_task("")
    with pytest.raises(TaskError, match="t/3: call tests need an entry_point"):
        Task("t/3", "p", "", "ref", (CallTest((1,), 1),))


def test_suite_is_a_sequence_with_get_and_split():
    tasks = [make_task(f"t/{i}") for i in range(10)]
    suite = TaskSuite("demo", tasks)
    assert len(suite) == 10 and suite[3] is tasks[3] and list(suite) == tasks
    assert "t/4" in suite and tasks[4] in suite and "nope" not in suite
    assert suite.get("t/7") is tasks[7]
    assert isinstance(suite[2:5], TaskSuite) and suite[2:5].task_ids == ["t/2", "t/3", "t/4"]
    # No split in metadata: every fifth task is test, deterministically.
    assert suite.split("test").task_ids == ["t/4", "t/9"]
    assert len(suite.split("train")) == 8
    with pytest.raises(KeyError, match=r"no task 't/77'.*did you mean"):
        suite.get("t/77")
    with pytest.raises(ValueError, match="'valid'"):
        suite.split("valid")


def test_split_follows_metadata_when_present():
    suite = TaskSuite("s", [make_task("a", "test"), make_task("b", "train"), make_task("c", "test")])
    assert suite.split("test").task_ids == ["a", "c"]
    assert suite.split("train").task_ids == ["b"]


def test_suite_of_non_tasks_names_the_item():
    with pytest.raises(TypeError, match="suite s: item 0 must be a Task, got str"):
        TaskSuite("s", ["t/1"])


def test_duplicate_ids_are_an_error_naming_the_id():
    with pytest.raises(TaskError, match="duplicate task id 't/1'"):
        TaskSuite("s", [make_task("t/1"), make_task("t/1")])


def test_registry_lists_builtins_and_accepts_third_party_suites():
    names = codegym.list_suites()
    for name in ("arith", "basic", "humaneval", "listops", "mbpp", "apps"):
        assert name in names
    codegym.register_suite(
        "tiny_third_party", lambda n=2: TaskSuite("tiny", [make_task(f"x/{i}") for i in range(n)])
    )
    try:
        assert len(codegym.load_suite("tiny_third_party", n=3)) == 3
        with pytest.raises(ValueError, match="already registered"):
            codegym.register_suite("tiny_third_party", lambda: TaskSuite("x", []))
    finally:
        from codegym import suites

        suites._REGISTRY.pop("tiny_third_party")


def test_unknown_suite_lists_the_known_ones():
    with pytest.raises(KeyError, match=r"unknown suite 'nope'; known suites: .*basic.*humaneval"):
        codegym.load_suite("nope")


def test_read_jsonl_names_file_line_and_field(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"a": 1}\n\n[1, 2]\n')
    rows = read_jsonl(path)
    where, record = next(rows)
    assert where == f"{path}:1" and record == {"a": 1}
    with pytest.raises(TaskError, match=rf"{path}:3: expected a JSON object, got list"):
        next(rows)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(TaskError, match=rf"{bad}:2: invalid JSON"):
        list(read_jsonl(bad))
    with pytest.raises(TaskError, match="missing field 'b'"):
        require({"a": 1}, "b", str, "f:1")
    with pytest.raises(TaskError, match="f:1: field 'a' should be str, got int"):
        require({"a": 1}, "a", str, "f:1")
    with pytest.raises(TaskError, match="data file not found"):
        list(read_jsonl(tmp_path / "missing.jsonl"))


def test_read_jsonl_reads_gzip(tmp_path):
    path = tmp_path / "d.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(json.dumps({"x": [1, 2]}) + "\n")
    assert [r for _, r in read_jsonl(path)] == [{"x": [1, 2]}]
