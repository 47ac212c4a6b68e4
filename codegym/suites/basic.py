"""The ``basic`` suite: original function-writing tasks bundled with CodeGym.

More than a hundred small problems written for this project (strings, lists, dicts and sets, math,
recursion, sorting, searching, dynamic programming, graphs, stacks, intervals and matrices), each with a
reference solution, at least two visible examples (also shown in the prompt's docstring) and at least
five hidden call tests whose expected values were written by hand from the specification.

Every task's ``metadata`` holds ``source="codegym"``, ``license="MIT"``, ``difficulty`` (1-3),
``split`` (``"train"`` or ``"test"``, fixed in the data file) and ``topic``. The data file is generated
from readable sources by ``scripts/basic_tasks_src/build.py``; the split rule lives there: within each
topic, tasks ordered by (difficulty, name) at positions 2, 7, 12, ... are ``"test"`` (about 20%).

``load_suite("basic", split="train", difficulty=[1, 2], topic="strings")`` keeps a subset; every filter
is optional.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codegym.suites.jsonl import read_jsonl, require
from codegym.tasks import CallTest, Task, TaskError, TaskSuite, parse_literal

DATA_PATH = Path(__file__).resolve().parent / "data" / "basic.jsonl"
"""The bundled data file."""

SPLITS = ("train", "test")

TOPICS: tuple[str, ...] = (
    "strings",
    "lists",
    "dicts",
    "math",
    "recursion",
    "sorting",
    "searching",
    "dp",
    "graphs",
    "stacks",
    "intervals",
    "matrices",
)
"""The topics of the bundled tasks (``metadata["topic"]``)."""


def load(
    path: str | Path | None = None,
    *,
    split: str | None = None,
    difficulty: int | Sequence[int] | None = None,
    topic: str | Sequence[str] | None = None,
) -> TaskSuite:
    """Load the basic suite, optionally keeping only some of its tasks.

    Args:
        path: A JSONL file in the basic suite's format; the bundled file by default.
        split: Keep only the ``"train"`` or the ``"test"`` tasks.
        difficulty: Keep only tasks of this difficulty (1-3) or of these difficulties.
        topic: Keep only tasks of this topic or these topics (see :data:`TOPICS`).

    Returns:
        The tasks, in file order.

    Raises:
        TaskError: if the file is missing or malformed; the message names the file, line and field
            (and the task id where one is known), e.g. for a duplicate task id.
        ValueError: for an unknown split, difficulty or topic.
    """
    tasks: list[Task] = []
    first_seen: dict[str, str] = {}
    for where, record in read_jsonl(DATA_PATH if path is None else path):
        task = _task_from_record(record, where)
        if task.task_id in first_seen:
            raise TaskError(
                f"{where}: duplicate task id {task.task_id!r} (first at {first_seen[task.task_id]})"
            )
        first_seen[task.task_id] = where
        tasks.append(task)
    if split is not None:
        if split not in SPLITS:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        tasks = [t for t in tasks if t.split == split]
    if difficulty is not None:
        levels = _as_set(difficulty, "difficulty", (1, 2, 3))
        tasks = [t for t in tasks if t.difficulty in levels]
    if topic is not None:
        topics = _as_set(topic, "topic", TOPICS)
        tasks = [t for t in tasks if t.metadata["topic"] in topics]
    return TaskSuite("basic", tasks)


def _as_set(value: Any, name: str, known: Sequence[Any]) -> set[Any]:
    """Normalize a filter argument (one value or several) and check every value is known."""
    values = {value} if isinstance(value, (str, int)) else set(value)
    unknown = sorted(str(v) for v in values if v not in known or isinstance(v, bool))
    if unknown:
        raise ValueError(f"basic: unknown {name} {', '.join(unknown)}; known: {', '.join(map(str, known))}")
    return values


def _task_from_record(record: dict[str, Any], where: str) -> Task:
    """Build one task from a JSON record, naming ``where`` and the field in every error."""
    task_id = require(record, "task_id", str, where)
    where = f"{where} ({task_id})"
    prompt = require(record, "prompt", str, where)
    entry_point = require(record, "entry_point", str, where)
    reference = require(record, "reference", str, where)
    difficulty = require(record, "difficulty", int, where)
    if isinstance(difficulty, bool) or difficulty not in (1, 2, 3):
        raise TaskError(f"{where}: field 'difficulty' should be 1, 2 or 3, got {difficulty!r}")
    split = require(record, "split", str, where)
    if split not in SPLITS:
        raise TaskError(f"{where}: field 'split' should be 'train' or 'test', got {split!r}")
    topic = require(record, "topic", str, where)
    if not entry_point.isidentifier():
        raise TaskError(f"{where}: field 'entry_point' is not a Python identifier: {entry_point!r}")
    tests = _call_tests(record, "tests", where)
    if not tests:
        raise TaskError(f"{where}: field 'tests' is empty; a task needs hidden tests")
    visible = _call_tests(record, "visible_tests", where)
    metadata = {
        "source": "codegym",
        "license": "MIT",
        "difficulty": difficulty,
        "split": split,
        "topic": topic,
    }
    try:
        return Task(task_id, prompt, entry_point, reference, tests, visible, metadata)
    except TaskError as exc:
        raise TaskError(f"{where}: {exc}") from None


def _call_tests(record: dict[str, Any], name: str, where: str) -> list[CallTest]:
    """Parse the list of call tests stored under ``record[name]``."""
    items = require(record, name, list, where)
    tests = []
    for i, item in enumerate(items):
        here = f"{where}: field {name!r}[{i}]"
        if not isinstance(item, dict):
            raise TaskError(f"{here} should be an object, got {type(item).__name__}")
        args_text = require(item, "args", str, here)
        expected_text = require(item, "expected", str, here)
        tol = item.get("float_tol")
        if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float))):
            raise TaskError(f"{here}: field 'float_tol' should be a number or null, got {tol!r}")
        args = parse_literal(args_text, where=f"{here}.args")
        if type(args) is not tuple:
            raise TaskError(f"{here}.args should be a tuple literal, got {type(args).__name__}")
        expected = parse_literal(expected_text, where=f"{here}.expected")
        try:
            tests.append(CallTest(args, expected, None if tol is None else float(tol)))
        except TaskError as exc:
            raise TaskError(f"{here}: {exc}") from None
    return tests
