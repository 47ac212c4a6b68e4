"""The bundled ``basic`` suite: counts, shape of every task, fixed split, and loader errors."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

import codegym
from codegym.suites import basic
from codegym.tasks import CallTest, TaskError

TOPICS = set(basic.TOPICS)


@pytest.fixture(scope="module")
def suite():
    return codegym.load_suite("basic")


def test_registered_and_loaded_through_registry(suite):
    assert "basic" in codegym.list_suites()
    assert suite.name == "basic"
    assert len(suite) == len(basic.load())


def test_at_least_100_tasks_with_unique_ids(suite):
    assert len(suite) >= 100
    assert len(set(suite.task_ids)) == len(suite)
    assert all(re.fullmatch(r"basic/[a-z][a-z0-9_]*", t) for t in suite.task_ids)


def test_every_task_has_enough_call_tests(suite):
    for task in suite:
        assert len(task.tests) >= 5, task.task_id
        assert len(task.visible_tests) >= 2, task.task_id
        assert all(isinstance(t, CallTest) for t in (*task.tests, *task.visible_tests)), task.task_id
        hidden_args = {repr(t.args) for t in task.tests}
        assert len(hidden_args) == len(task.tests), f"{task.task_id}: repeated hidden test"
        assert not hidden_args & {repr(t.args) for t in task.visible_tests}, task.task_id


def test_metadata(suite):
    for task in suite:
        meta = task.metadata
        assert meta["source"] == "codegym" and meta["license"] == "MIT", task.task_id
        assert meta["difficulty"] in (1, 2, 3) and task.difficulty == meta["difficulty"], task.task_id
        assert meta["split"] in ("train", "test") and task.split == meta["split"], task.task_id
        assert meta["topic"] in TOPICS, task.task_id


def test_topics_and_difficulties_are_spread(suite):
    topics = Counter(t.metadata["topic"] for t in suite)
    assert set(topics) == TOPICS
    difficulties = Counter(t.difficulty for t in suite)
    for level in (1, 2, 3):
        assert difficulties[level] >= len(suite) // 5, difficulties


def test_split_is_fixed_and_about_a_fifth(suite):
    test = suite.split("test")
    train = suite.split("train")
    assert len(test) + len(train) == len(suite)
    assert 0.15 <= len(test) / len(suite) <= 0.25
    assert {t.metadata["topic"] for t in test} == TOPICS
    assert {t.difficulty for t in test} == {1, 2, 3}
    # Loading twice gives the same split: it is stored in the data, not drawn at random.
    assert basic.load().split("test").task_ids == test.task_ids


def test_prompt_is_a_signature_with_docstring_and_examples(suite):
    for task in suite:
        entry = task.entry_point
        assert task.prompt.startswith(f"def {entry}("), task.task_id
        assert task.task_id == f"basic/{entry}"
        # The prompt is valid Python once a body is added, and its docstring shows the visible calls.
        tree = ast.parse(task.prompt + "    pass\n")
        func = tree.body[0]
        assert isinstance(func, ast.FunctionDef) and func.name == entry
        doc = ast.get_docstring(func)
        assert doc and "Args:" in doc and "Returns:" in doc, task.task_id
        for test in task.visible_tests:
            assert f">>> {test.describe_input(entry)}" in doc, task.task_id
            assert repr(test.expected) in doc, task.task_id


def test_reference_is_prompt_plus_completion(suite):
    for task in suite:
        assert task.reference.startswith(task.prompt), task.task_id
        compile(task.reference, task.task_id, "exec")


def test_filters(suite):
    train = codegym.load_suite("basic", split="train")
    assert train.task_ids == suite.split("train").task_ids
    easy = basic.load(difficulty=1)
    assert len(easy) > 0 and all(t.difficulty == 1 for t in easy)
    hard_graphs = basic.load(difficulty=[2, 3], topic="graphs", split="test")
    expected = [
        t.task_id
        for t in suite
        if t.difficulty in (2, 3) and t.metadata["topic"] == "graphs" and t.split == "test"
    ]
    assert hard_graphs.task_ids == expected and expected
    both = basic.load(topic=("dp", "stacks"))
    assert {t.metadata["topic"] for t in both} == {"dp", "stacks"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "validation"}, "split must be 'train' or 'test'"),
        ({"difficulty": 4}, "basic: unknown difficulty 4; known: 1, 2, 3"),
        ({"difficulty": True}, "unknown difficulty True"),
        ({"topic": ["dp", "trees"]}, "unknown topic trees"),
    ],
)
def test_bad_filters(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        basic.load(**kwargs)


# --- loader errors -------------------------------------------------------------------------------


def _good_record() -> dict:
    return json.loads(basic.DATA_PATH.read_text(encoding="utf-8").splitlines()[0])


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_loads_a_custom_file(tmp_path):
    record = _good_record()
    path = _write(tmp_path, [json.dumps(record)])
    loaded = basic.load(path)
    assert loaded.task_ids == [record["task_id"]]
    assert loaded[0].tests == basic.load()[0].tests


def test_bad_json_line_names_file_and_line(tmp_path):
    path = _write(tmp_path, [json.dumps(_good_record()), "{not json"])
    with pytest.raises(TaskError, match=rf"{re.escape(str(path))}:2: invalid JSON"):
        basic.load(path)


def test_missing_field_names_line_and_field(tmp_path):
    record = _good_record()
    del record["entry_point"]
    path = _write(tmp_path, ["", json.dumps(record)])
    with pytest.raises(TaskError, match=r"tasks\.jsonl:2 .*missing field 'entry_point'"):
        basic.load(path)


@pytest.mark.parametrize(
    ("kind", "index", "field", "text", "message"),
    [
        ("tests", 3, "args", "(open('x'),)", "args: not a Python literal"),
        ("tests", 0, "expected", "[1, 2", "expected: not a Python literal"),
        ("visible_tests", 0, "args", "[1, 2]", "args should be a tuple literal"),
        ("tests", 1, "args", "(1, 2", "args: not a Python literal"),
    ],
)
def test_bad_test_literals_name_the_test_and_field(tmp_path, kind, index, field, text, message):
    record = _good_record()
    record[kind][index][field] = text
    path = _write(tmp_path, [json.dumps(record)])
    with pytest.raises(TaskError, match=rf"tasks\.jsonl:1 .*field '{kind}'\[{index}\]\.{re.escape(message)}"):
        basic.load(path)


def test_bad_float_tol_is_named(tmp_path):
    record = _good_record()
    record["tests"][2]["float_tol"] = "0.1"
    path = _write(tmp_path, [json.dumps(record)])
    with pytest.raises(TaskError, match=r"field 'tests'\[2\]: field 'float_tol' should be a number or null"):
        basic.load(path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("difficulty", 4, "field 'difficulty' should be 1, 2 or 3"),
        ("difficulty", True, "field 'difficulty' should be 1, 2 or 3"),
        ("split", "valid", "field 'split' should be 'train' or 'test'"),
        ("tests", [], "field 'tests' is empty"),
        ("prompt", None, "field 'prompt' should be str"),
        ("entry_point", "not a name", "field 'entry_point' is not a Python identifier"),
    ],
)
def test_bad_field_values_are_named(tmp_path, field, value, message):
    record = _good_record()
    record[field] = value
    path = _write(tmp_path, [json.dumps(record)])
    with pytest.raises(
        TaskError, match=rf"tasks\.jsonl:1 \({re.escape(record['task_id'])}\): {re.escape(message)}"
    ):
        basic.load(path)


def test_duplicate_task_id_names_both_lines(tmp_path):
    line = json.dumps(_good_record())
    path = _write(tmp_path, [line, line])
    with pytest.raises(TaskError, match=r"tasks\.jsonl:2: duplicate task id .*first at .*tasks\.jsonl:1"):
        basic.load(path)


def test_path_of_the_wrong_type_is_named():
    with pytest.raises(TypeError, match="data file path must be a str or path, got int 123"):
        basic.load(123)


def test_missing_file(tmp_path):
    with pytest.raises(TaskError, match="data file not found"):
        basic.load(tmp_path / "nope.jsonl")


# --- the data file is generated from the readable sources -----------------------------------------


def test_data_file_matches_its_sources(monkeypatch):
    """The bundled JSONL must be regenerated after any edit of scripts/basic_tasks_src/*.txt."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "basic_tasks_src" / "build.py"
    if not script.is_file():
        pytest.skip("task sources are not part of this installation")
    spec = importlib.util.spec_from_file_location("basic_build", script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "basic_build", module)  # dataclasses look their module up here
    spec.loader.exec_module(module)
    records = module.build(verify=False)
    stored = [json.loads(line) for line in basic.DATA_PATH.read_text(encoding="utf-8").splitlines()]
    assert records == stored, "basic.jsonl is stale: run python scripts/basic_tasks_src/build.py"
