"""Build ``codegym/suites/data/basic.jsonl`` from the readable task sources next to this script.

Each ``*.txt`` file here holds tasks in this form::

    === reverse_words | topic=strings | difficulty=1
    def reverse_words(text: str) -> str:
        \"\"\"Docstring (Google style); the examples are appended from the visible tests.\"\"\"
    --- solution
        return " ".join(reversed(text.split()))
    --- visible
    reverse_words('hello big world') == 'world big hello'
    --- hidden
    reverse_words('') == ''

A header may add ``float_tol=1e-9``. Tests are ``entry(args...) == expected`` statements with literal
arguments and a literal expected value, written by hand from the specification. The build checks that
every reference returns exactly (strict types) what its tests expect, then writes the JSONL with the
split chosen by a fixed rule (see :func:`assign_splits`). ``--check`` verifies without writing.

Usage: ``python scripts/basic_tasks_src/build.py [--check]``
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codegym.suites.basic import TOPICS

HERE = Path(__file__).resolve().parent
OUTPUT = HERE.parents[1] / "codegym" / "suites" / "data" / "basic.jsonl"


@dataclass
class Source:
    """One task as written in a source file."""

    name: str
    topic: str
    difficulty: int
    where: str
    signature_doc: str = ""
    solution: str = ""
    visible: list[tuple[tuple[Any, ...], Any]] = field(default_factory=list)
    hidden: list[tuple[tuple[Any, ...], Any]] = field(default_factory=list)
    float_tol: float | None = None


class BuildError(Exception):
    """A task source is malformed or a reference disagrees with a hand-written expected value."""


def parse_tests(text: str, entry: str, where: str) -> list[tuple[tuple[Any, ...], Any]]:
    """Parse ``entry(args) == expected`` statements into (args, expected) pairs."""
    tests = []
    try:
        module = ast.parse(text)
    except SyntaxError as exc:
        raise BuildError(f"{where}: test block line {exc.lineno}: {exc.msg}") from None
    for stmt in module.body:
        node = stmt.value if isinstance(stmt, ast.Expr) else None
        ok = (
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and isinstance(node.ops[0], ast.Eq)
            and isinstance(node.left, ast.Call)
            and isinstance(node.left.func, ast.Name)
            and node.left.func.id == entry
            and not node.left.keywords
        )
        if not ok:
            raise BuildError(f"{where}: test line {stmt.lineno} is not `{entry}(...) == expected`")
        assert isinstance(node, ast.Compare) and isinstance(node.left, ast.Call)
        try:
            args = tuple(ast.literal_eval(arg) for arg in node.left.args)
            expected = ast.literal_eval(node.comparators[0])
        except ValueError as exc:
            raise BuildError(f"{where}: test line {stmt.lineno}: not a literal ({exc})") from None
        tests.append((args, expected))
    return tests


def parse_file(path: Path) -> list[Source]:
    """Parse one source file into tasks."""
    sources: list[Source] = []
    current: Source | None = None
    section = ""
    buffers: dict[str, list[str]] = {}

    def finish() -> None:
        if current is None:
            return
        current.signature_doc = "".join(buffers.get("prompt", [])).strip("\n") + "\n"
        current.solution = "".join(buffers.get("solution", [])).strip("\n") + "\n"
        current.visible = parse_tests("".join(buffers.get("visible", [])), current.name, current.where)
        current.hidden = parse_tests("".join(buffers.get("hidden", [])), current.name, current.where)
        sources.append(current)

    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(keepends=True), start=1):
        if line.startswith("=== "):
            finish()
            parts = [p.strip() for p in line[4:].split("|")]
            opts = dict(p.split("=", 1) for p in parts[1:])
            where = f"{path.name}:{lineno}"
            try:
                current = Source(parts[0], opts["topic"], int(opts["difficulty"]), where)
            except KeyError as exc:
                raise BuildError(f"{where}: header lacks {exc}") from None
            if "float_tol" in opts:
                current.float_tol = float(opts["float_tol"])
            section, buffers = "prompt", {}
        elif line.startswith("--- "):
            section = line[4:].strip()
            if section not in ("solution", "visible", "hidden"):
                raise BuildError(f"{path.name}:{lineno}: unknown section {section!r}")
        elif current is not None:
            buffers.setdefault(section, []).append(line)
        elif line.strip() and not line.startswith("#"):
            raise BuildError(f"{path.name}:{lineno}: text before the first task")
    finish()
    return sources


def call_text(entry: str, args: tuple[Any, ...]) -> str:
    """Render a call the way CallTest.describe_input does."""
    return f"{entry}({', '.join(repr(a) for a in args)})"


def make_prompt(src: Source) -> str:
    """Append the visible examples to the docstring of the signature."""
    text = src.signature_doc
    close = text.rstrip().rfind('"""')
    if not text.lstrip().startswith("def ") or close < 0 or text.count('"""') != 2:
        raise BuildError(f"{src.where}: prompt must be `def ...:` with one triple-quoted docstring")
    lines = ["", "    Examples:"]
    for args, expected in src.visible:
        lines.append(f"        >>> {call_text(src.name, args)}")
        lines.append(f"        {expected!r}")
    examples = "\n".join(lines) + "\n    "
    head = text[:close].rstrip() + "\n"
    prompt = head + examples + text[close:]
    if "\\" in examples and 'r"""' not in prompt:
        prompt = prompt.replace('"""', 'r"""', 1)
    return prompt


def strict_equal(a: Any, b: Any) -> bool:
    """Equality with exact types at every level (True is not 1, a tuple is not a list)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    return a == b


def close_enough(a: Any, b: Any, tol: float) -> bool:
    """Strict comparison where floats may differ within ``tol``."""
    if type(a) is float and type(b) is float:
        return abs(a - b) <= tol * max(1.0, abs(a), abs(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(close_enough(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close_enough(a[k], b[k], tol) for k in a)
    return a == b


def check_task(src: Source, reference: str, prompt: str) -> list[str]:
    """Run the reference in-process on every test; return the disagreements."""
    problems = []
    compile(prompt + "    pass\n", src.where, "exec")
    if len(src.visible) < 2 or len(src.hidden) < 5:
        problems.append(f"needs >= 2 visible and >= 5 hidden tests ({len(src.visible)}, {len(src.hidden)})")
    visible_args = [repr(a) for a, _ in src.visible]
    hidden_args = [repr(a) for a, _ in src.hidden]
    if set(visible_args) & set(hidden_args):
        problems.append("a visible test repeats as a hidden test")
    if len(set(hidden_args)) != len(hidden_args):
        problems.append("duplicate hidden tests")
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(reference, src.where, "exec"), namespace)  # noqa: S102 - our own reference code
    func = namespace[src.name]
    for args, expected in [*src.visible, *src.hidden]:
        try:
            got = func(*copy.deepcopy(args))
        except Exception as exc:  # noqa: BLE001 - report, do not stop the build
            problems.append(f"{call_text(src.name, args)} raised {exc!r}")
            continue
        same = (
            strict_equal(got, expected)
            if src.float_tol is None
            else close_enough(got, expected, src.float_tol)
        )
        if not same:
            problems.append(f"{call_text(src.name, args)}: expected {expected!r}, reference gave {got!r}")
    return problems


def assign_splits(sources: list[Source]) -> dict[str, str]:
    """The fixed split rule: per topic, order tasks by (difficulty, name); positions 2, 7, 12, ... are test.

    Stratifying by topic and ordering by difficulty spreads the ~20% test tasks over both.
    """
    splits = {}
    for topic in TOPICS:
        group = sorted((s for s in sources if s.topic == topic), key=lambda s: (s.difficulty, s.name))
        for i, src in enumerate(group):
            splits[src.name] = "test" if i % 5 == 2 else "train"
    return splits


def literal(value: Any) -> str:
    """Render a value as a Python literal and check that it parses back to the same value."""
    text = repr(value)
    if not strict_equal(ast.literal_eval(text), value):
        raise BuildError(f"value does not round-trip as a literal: {text[:80]}")
    return text


def build(verify: bool = True) -> list[dict[str, Any]]:
    """Parse, verify (unless ``verify`` is false) and render every task.

    Raises:
        BuildError: listing every problem found.
    """
    sources = [src for path in sorted(HERE.glob("*.txt")) for src in parse_file(path)]
    # File order follows the topic list (strings first), then the order within each file.
    sources.sort(key=lambda s: TOPICS.index(s.topic) if s.topic in TOPICS else len(TOPICS))
    errors = []
    names = [s.name for s in sources]
    for name in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"duplicate task name {name}")
    records = []
    splits = assign_splits(sources)
    for src in sources:
        if src.topic not in TOPICS or src.difficulty not in (1, 2, 3):
            errors.append(f"{src.where}: bad topic or difficulty")
            continue
        prompt = make_prompt(src)
        reference = prompt + src.solution
        if verify:
            errors.extend(f"{src.where} {src.name}: {p}" for p in check_task(src, reference, prompt))

        def tests(pairs: list[tuple[tuple[Any, ...], Any]], src: Source = src) -> list[dict[str, Any]]:
            return [
                {"args": literal(args), "expected": literal(exp), "float_tol": src.float_tol}
                for args, exp in pairs
            ]

        records.append(
            {
                "task_id": f"basic/{src.name}",
                "prompt": prompt,
                "entry_point": src.name,
                "reference": reference,
                "tests": tests(src.hidden),
                "visible_tests": tests(src.visible),
                "difficulty": src.difficulty,
                "split": splits[src.name],
                "topic": src.topic,
            }
        )
    if errors:
        raise BuildError("\n".join(errors))
    return records


def main(argv: list[str] | None = None) -> int:
    """Build (or with --check, verify) the bundled basic suite; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify only; fail if the JSONL is stale")
    args = parser.parse_args(argv)
    try:
        records = build()
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if args.check:
        if not OUTPUT.is_file() or OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT} is out of date; run {Path(__file__).name}", file=sys.stderr)
            return 1
    else:
        OUTPUT.write_text(text, encoding="utf-8")
    counts = {t: sum(r["topic"] == t for r in records) for t in TOPICS}
    diffs = {d: sum(r["difficulty"] == d for r in records) for d in (1, 2, 3)}
    n_test = sum(r["split"] == "test" for r in records)
    print(f"{len(records)} tasks ({n_test} test); topics {counts}; difficulties {diffs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
