"""``apps``: stdin/stdout problems in the APPS or CodeContests JSONL format.

Two record shapes are accepted (one per line, mixed freely):

* **APPS**: ``problem_id`` (int or str), ``question`` (str), ``solutions`` (a JSON-encoded list of
  programs, or a list), ``input_output`` (a JSON-encoded object, or an object, with ``inputs`` and
  ``outputs`` lists of strings), optional ``difficulty`` (``"introductory"``, ``"interview"``,
  ``"competition"`` -> 1, 2, 3). Call-based problems (``input_output`` with ``fn_name``) are not
  stdin/stdout problems: they are skipped and counted in ``suite.skipped``.
* **CodeContests**: ``name`` (str), ``description`` (str), ``solutions`` (``{"language": [...],
  "solution": [...]}``; Python 3 is language 3) or a list, ``public_tests`` / ``private_tests`` /
  ``generated_tests`` (each ``{"input": [...], "output": [...]}``), optional ``difficulty`` (an int; 1-3
  are kept, others become 2).

Split: the record's ``split`` field (an extension) if present, else fixed by a hash of the task id
(one in five is ``"test"``, see :func:`codegym.suites.procedural.split_for`).
Hidden tests: every test of the record. Visible tests: the public tests (CodeContests) or the first two
tests (APPS, whose statements usually show them as examples). The reference is the first solution
(first Python 3 solution for CodeContests). Every test is a :class:`~codegym.tasks.StdioTest`; the
optional record field ``float_tol`` (an extension of this project) sets its float tolerance.
Without ``path`` the bundled sample (``data/apps_sample.jsonl``, problems written for this project in both
shapes) is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codegym.suites.jsonl import read_jsonl, require
from codegym.suites.procedural import split_for
from codegym.tasks import StdioTest, Task, TaskError, TaskSuite

SAMPLE_PATH = Path(__file__).parent / "data" / "apps_sample.jsonl"
APPS_DIFFICULTY = {"introductory": 1, "interview": 2, "competition": 3}
CODECONTESTS_PYTHON3 = 3
NUM_VISIBLE_APPS = 2


def _json_field(record: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    """A field that APPS stores JSON-encoded (a string) and other dumps store decoded."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    value = require(record, name, (str, *kinds), where)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise TaskError(
                f"{where}: field {name!r} is not valid JSON: {exc.msg} (column {exc.colno})"
            ) from None
    if not isinstance(value, kinds):
        expected = " or ".join(k.__name__ for k in kinds)
        raise TaskError(f"{where}: field {name!r} should hold a JSON {expected}, got {type(value).__name__}")
    return value


def _strings(value: Any, field: str, where: str) -> list[str]:
    if not isinstance(value, list):
        raise TaskError(f"{where}: field {field} should be a list, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise TaskError(f"{where}: field {field}[{i}] should be str, got {type(item).__name__}")
    return value


def _pairs(inputs: Any, outputs: Any, field: str, where: str, tol: float | None) -> list[StdioTest]:
    ins = _strings(inputs, f"{field} inputs", where)
    outs = _strings(outputs, f"{field} outputs", where)
    if len(ins) != len(outs):
        raise TaskError(f"{where}: field {field} has {len(ins)} inputs but {len(outs)} outputs")
    return [StdioTest(stdin=i, expected_stdout=o, float_tol=tol) for i, o in zip(ins, outs)]


def _apps_tests(
    record: dict[str, Any], where: str, tol: float | None
) -> tuple[list[StdioTest], list[StdioTest]]:
    io = _json_field(record, "input_output", dict, where)
    for key in ("inputs", "outputs"):
        if key not in io:
            raise TaskError(f"{where}: field 'input_output' has no {key!r} list")
    tests = _pairs(io["inputs"], io["outputs"], "'input_output'", where, tol)
    return tests, tests[:NUM_VISIBLE_APPS]


def _codecontests_tests(
    record: dict[str, Any], where: str, tol: float | None
) -> tuple[list[StdioTest], list[StdioTest]]:
    groups: dict[str, list[StdioTest]] = {}
    for name in ("public_tests", "private_tests", "generated_tests"):
        group = record.get(name) or {"input": [], "output": []}
        if not isinstance(group, dict):
            raise TaskError(f"{where}: field {name!r} should be an object, got {type(group).__name__}")
        groups[name] = _pairs(group.get("input", []), group.get("output", []), repr(name), where, tol)
    return groups["public_tests"] + groups["private_tests"] + groups["generated_tests"], groups[
        "public_tests"
    ]


def _reference(record: dict[str, Any], where: str) -> str:
    solutions = _json_field(record, "solutions", (list, dict), where)
    if isinstance(solutions, dict):
        languages = solutions.get("language", [])
        programs = _strings(solutions.get("solution"), "'solutions'.solution", where)
        if len(languages) != len(programs):
            raise TaskError(
                f"{where}: field 'solutions' has {len(languages)} languages for {len(programs)} programs"
            )
        programs = [p for lang, p in zip(languages, programs) if lang == CODECONTESTS_PYTHON3]
    else:
        programs = _strings(solutions, "'solutions'", where)
    if not programs:
        raise TaskError(f"{where}: field 'solutions' has no (Python 3) solution to use as the reference")
    program = programs[0].replace("\r\n", "\n")
    return program if program.endswith("\n") else program + "\n"


def _difficulty(record: dict[str, Any], where: str) -> int:
    value = record.get("difficulty")
    if value is None:
        return 1
    if isinstance(value, str):
        if value not in APPS_DIFFICULTY:
            raise TaskError(
                f"{where}: field 'difficulty' should be one of {sorted(APPS_DIFFICULTY)}, got {value!r}"
            )
        return APPS_DIFFICULTY[value]
    if type(value) is int:
        return value if 1 <= value <= 3 else 2
    raise TaskError(f"{where}: field 'difficulty' should be str or int, got {type(value).__name__}")


def convert_record(record: dict[str, Any], where: str) -> Task | None:
    """Build the :class:`Task` for one APPS or CodeContests record, or None for a call-based APPS problem.

    Raises:
        TaskError: naming ``where`` (file:line) and the field if the record is malformed.
    """
    tol = record.get("float_tol")
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float)) or tol < 0):
        raise TaskError(f"{where}: field 'float_tol' should be a number >= 0, got {tol!r}")
    tol = None if tol is None else float(tol)
    if "problem_id" in record:
        raw_id = require(record, "problem_id", (int, str), where)
        statement = require(record, "question", str, where)
        io = _json_field(record, "input_output", dict, where)
        if io.get("fn_name"):
            return None
        tests, visible = _apps_tests(record, where, tol)
        source = "apps"
    elif "name" in record:
        raw_id = require(record, "name", str, where)
        statement = require(record, "description", str, where)
        tests, visible = _codecontests_tests(record, where, tol)
        source = "codecontests"
    else:
        raise TaskError(f"{where}: missing field 'problem_id' (APPS) or 'name' (CodeContests)")
    task_id = f"apps/{raw_id}"
    if not tests:
        raise TaskError(f"{where}: task {task_id} has no tests")
    split = record.get("split", split_for(task_id))
    if split not in ("train", "test"):
        raise TaskError(f"{where}: field 'split' should be 'train' or 'test', got {split!r}")
    prompt = statement.rstrip() + "\n\nRead the input from standard input and print the answer.\n"
    return Task(
        task_id=task_id,
        prompt=prompt,
        entry_point="",
        reference=_reference(record, where),
        tests=tuple(tests),
        visible_tests=tuple(visible),
        metadata={
            "source": str(record.get("source", source)),
            "license": str(record.get("license", "MIT" if source == "apps" else "CC-BY-4.0")),
            "difficulty": _difficulty(record, where),
            "split": split,
        },
    )


def load(path: str | Path | None = None) -> TaskSuite:
    """Load stdin/stdout problems from an APPS or CodeContests JSONL file (default: the bundled sample).

    The returned suite has an attribute ``skipped``: how many call-based APPS records were left out.

    Raises:
        TaskError: for a missing or malformed file (naming file, line and field).
    """
    tasks, skipped = [], 0
    for where, record in read_jsonl(path if path is not None else SAMPLE_PATH):
        task = convert_record(record, where)
        if task is None:
            skipped += 1
        else:
            tasks.append(task)
    suite = TaskSuite("apps", tasks)
    suite.skipped = skipped  # type: ignore[attr-defined]
    if skipped:
        suite.note = f"{skipped} call-based problems skipped"  # type: ignore[attr-defined]
    return suite
