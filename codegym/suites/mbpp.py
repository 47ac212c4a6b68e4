"""``mbpp``: a loader for the MBPP format (Austin et al. 2021), from a local JSONL file or Hugging Face.

Record fields: ``task_id`` (int or str), ``text`` (the problem in words), ``code`` (the reference),
``test_list`` (assert lines), ``test_setup_code`` (str, may be empty) and optionally
``challenge_test_list`` (more assert lines), ``split`` (``"train"``/``"test"``) and ``license``
(default ``CC-BY-4.0``, MBPP's license); the last two are extensions of this project.

* The function under test (``entry_point``) is the first user function called in ``test_list[0]``.
* Every assert line goes through :mod:`codegym.suites.assert_parse`: ``assert f(<literals>) == <literal>``
  (and the ``is``, tolerance and ``math.isclose`` forms) become call tests compared in the parent; other
  lines stay assert tests, run after ``test_setup_code`` in the sandbox.
* Hidden tests: ``test_list`` plus ``challenge_test_list`` (``include_challenge=False`` leaves those out).
  Visible test: the first line of ``test_list``, which the prompt shows (as in MBPP's own prompt, which
  shows the test lines so that the function's name and signature are known).
* Split: the record's ``split`` field if present, else MBPP's published ranges: ids 11-510 are
  ``"test"``, everything else ``"train"``.
* Without ``path`` the bundled sample (``data/mbpp_sample.jsonl``, 8 tasks written for this project in
  the MBPP format) is loaded. ``source="hf"`` loads ``google-research-datasets/mbpp`` through the
  ``datasets`` library (``pip install codegym[hf]``; needs the network or a local HF cache).
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from codegym.suites.assert_parse import split_statements
from codegym.suites.jsonl import read_jsonl, require
from codegym.tasks import Task, TaskError, TaskSuite

SAMPLE_PATH = Path(__file__).parent / "data" / "mbpp_sample.jsonl"
HF_DATASET = "google-research-datasets/mbpp"
TEST_ID_RANGE = range(11, 511)
"""MBPP's published test split (task ids 11-510)."""

_NOT_ENTRY = frozenset(dir(builtins)) | {"math", "re", "set", "sorted"}


def _entry_point(first_test: str, where: str) -> str:
    try:
        tree = ast.parse(first_test)
    except SyntaxError as exc:
        raise TaskError(f"{where}: field 'test_list'[0] is not valid Python: {exc.msg}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in _NOT_ENTRY:
            return node.func.id
    raise TaskError(f"{where}: field 'test_list'[0] calls no function: {first_test[:80]!r}")


def _string_list(record: dict[str, Any], name: str, where: str, *, optional: bool = False) -> list[str]:
    if optional and record.get(name) is None:
        return []
    value = require(record, name, list, where)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise TaskError(f"{where}: field {name!r}[{i}] should be str, got {type(item).__name__}")
    return value


def _parse_lines(lines: list[str], fields: list[str], where: str) -> list[ast.stmt]:
    body: list[ast.stmt] = []
    for line, field in zip(lines, fields):
        try:
            body += ast.parse(line).body
        except SyntaxError as exc:
            raise TaskError(f"{where}: field {field} is not valid Python: {exc.msg}: {line[:80]!r}") from None
    return body


def convert_record(record: dict[str, Any], where: str, *, include_challenge: bool = True) -> Task:
    """Build the :class:`Task` for one MBPP record.

    Raises:
        TaskError: naming ``where`` (file:line or dataset row) and the field if the record is malformed.
    """
    raw_id = require(record, "task_id", (int, str), where)
    text = require(record, "text", str, where)
    code = require(record, "code", str, where).replace("\r\n", "\n")
    setup = (record.get("test_setup_code") or "").replace("\r\n", "\n")
    if not isinstance(setup, str):
        raise TaskError(f"{where}: field 'test_setup_code' should be str, got {type(setup).__name__}")
    test_list = _string_list(record, "test_list", where)
    if not test_list:
        raise TaskError(f"{where}: task mbpp/{raw_id}: field 'test_list' is empty (a task needs tests)")
    challenge = _string_list(record, "challenge_test_list", where, optional=True) if include_challenge else []
    entry_point = _entry_point(test_list[0], where)
    # The alias makes assert lines work whether the sandbox binds only ``candidate`` or runs them in the
    # program's namespace.
    preamble = (setup.rstrip() + "\n" if setup.strip() else "") + f"{entry_point} = candidate\n"
    setup_names = frozenset(_defined(setup))
    fields = [f"'test_list'[{i}]" for i in range(len(test_list))]
    fields += [f"'challenge_test_list'[{i}]" for i in range(len(challenge))]
    statements = _parse_lines(test_list + challenge, fields, where)
    hidden = split_statements(statements, [entry_point], preamble=preamble, known_names=setup_names)
    first = split_statements(
        _parse_lines(test_list[:1], fields, where), [entry_point], preamble=preamble, known_names=setup_names
    )
    split = record.get("split")
    if split is None:
        split = "test" if isinstance(raw_id, int) and raw_id in TEST_ID_RANGE else "train"
    if split not in ("train", "test"):
        raise TaskError(f"{where}: field 'split' should be 'train' or 'test', got {split!r}")
    prompt = f"{text}\nYour code should pass this test:\n{test_list[0].strip()}\n"
    return Task(
        task_id=f"mbpp/{raw_id}",
        prompt=prompt,
        entry_point=entry_point,
        reference=code if code.endswith("\n") else code + "\n",
        tests=hidden.tests,
        visible_tests=first.tests,
        metadata={
            "source": "mbpp",
            "license": str(record.get("license", "CC-BY-4.0")),
            "difficulty": 1,
            "split": split,
            "test_setup_code": setup,
        },
    )


def _defined(source: str) -> set[str]:
    if not source.strip():
        return set()
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _hf_records(split: str) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        import datasets
    except ImportError:
        raise TaskError(
            "mbpp: source='hf' needs the 'datasets' library (pip install 'codegym[hf]'); "
            "or pass path=... to a local MBPP JSONL file"
        ) from None
    try:
        rows: Iterable[dict[str, Any]] = datasets.load_dataset(HF_DATASET, "full", split=split)
    except Exception as exc:  # the library raises many kinds (connection, missing cache, ...)
        raise TaskError(
            f"mbpp: cannot load {HF_DATASET!r} split {split!r} through datasets "
            f"({exc.__class__.__name__}: {str(exc)[:200]}); offline, pass path=... to a local JSONL file"
        ) from None
    for i, row in enumerate(rows):
        yield f"{HF_DATASET}[{split}][{i}]", dict(row)


def load(
    path: str | Path | None = None,
    *,
    source: str = "file",
    hf_split: str = "test",
    include_challenge: bool = True,
) -> TaskSuite:
    """Load MBPP tasks.

    Args:
        path: A JSONL file in the MBPP format (``.gz`` ok); default: the bundled 8-task sample.
        source: ``"file"`` (``path`` or the sample) or ``"hf"`` (Hugging Face ``datasets``).
        hf_split: The Hugging Face split for ``source="hf"``: train, test, validation or prompt.
        include_challenge: Add ``challenge_test_list`` lines to the hidden tests.

    Raises:
        TaskError: for a missing or malformed file (naming file, line and field), or an unreachable
            Hugging Face dataset.
        ValueError: for an unknown ``source``.
    """
    if source == "file":
        records: Iterable[tuple[str, dict[str, Any]]] = read_jsonl(path if path is not None else SAMPLE_PATH)
    elif source == "hf":
        if path is not None:
            raise ValueError("mbpp: pass either path=... or source='hf', not both")
        records = _hf_records(hf_split)
    else:
        raise ValueError(f"mbpp: source must be 'file' or 'hf', got {source!r}")
    tasks = [convert_record(r, where, include_challenge=include_challenge) for where, r in records]
    return TaskSuite("mbpp", tasks)
