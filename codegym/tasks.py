"""Tasks and test cases: what an environment asks for and how a program is judged.

A :class:`Task` is one programming problem. Its tests come in three kinds:

* :class:`CallTest` calls the task's entry point with plain-data arguments. The *expected value never
  enters the sandbox*: the child process sends back what the candidate returned and the executor compares
  it in the parent with strict types (see :func:`codegym.execution.compare.strict_equal`).
* :class:`StdioTest` feeds ``stdin`` to the whole program and compares what it printed with
  ``expected_stdout``. The comparison is exact after normalizing line endings and trailing whitespace of
  every line and of the whole output; an optional float tolerance (``float_tol``) compares tokens that
  both parse as floats within that absolute-or-relative tolerance. The expected output stays in the parent.
* :class:`AssertTest` is raw assertion code (as in HumanEval's ``check``) that can only run *inside* the
  sandbox next to the candidate. Such tests are marked ``verified_in_parent=False`` in results, because
  a malicious program could in principle interfere with them.

Arguments and expected values are plain data: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``
and lists, tuples, dicts, sets and frozensets of those. Data files store them as Python literals (parsed
with :func:`ast.literal_eval`), which keeps tuples, sets and floats exact where JSON would not.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

PLAIN_SCALARS: tuple[type, ...] = (type(None), bool, int, float, str, bytes)
PLAIN_CONTAINERS: tuple[type, ...] = (list, tuple, dict, set, frozenset)


class TaskError(ValueError):
    """A task or a data file is malformed; the message names the task id or the file, line and field."""


def is_plain_data(value: Any, _depth: int = 0) -> bool:
    """Return True if ``value`` is plain data (exact builtin types only, no subclasses), nested < 100 deep."""
    if _depth > 100:
        return False
    kind = type(value)
    if kind in PLAIN_SCALARS:
        return True
    if kind in (list, tuple, set, frozenset):
        return all(is_plain_data(item, _depth + 1) for item in value)
    if kind is dict:
        return all(is_plain_data(k, _depth + 1) and is_plain_data(v, _depth + 1) for k, v in value.items())
    return False


def parse_literal(text: str, *, where: str) -> Any:
    """Parse a Python literal from a data file, raising :class:`TaskError` that names ``where`` on failure."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise TaskError(f"{where}: not a Python literal ({exc.__class__.__name__}): {text[:80]!r}") from None


@dataclass(frozen=True)
class CallTest:
    """Call ``entry_point(*args)`` and compare the returned value with ``expected`` in the parent.

    Attributes:
        args: Positional arguments (plain data).
        expected: The expected return value (plain data). Never sent into the sandbox.
        float_tol: If set, floats are compared with ``math.isclose(rel_tol=abs_tol=float_tol)``;
            otherwise exactly. Types are compared strictly in every case (``True`` is not ``1``).
    """

    args: tuple[Any, ...]
    expected: Any
    float_tol: float | None = None
    kind: Literal["call"] = field(default="call", init=False)

    def __post_init__(self) -> None:
        if type(self.args) is not tuple:
            object.__setattr__(self, "args", tuple(self.args))
        if not is_plain_data(self.args):
            raise TaskError(f"CallTest args must be plain data, got {self.args!r:.80}")
        if not is_plain_data(self.expected):
            raise TaskError(f"CallTest expected must be plain data, got {self.expected!r:.80}")
        _check_tol(self.float_tol)

    def describe_input(self, entry_point: str) -> str:
        """Render the call as source text, e.g. ``add(1, 2)``, for feedback and display."""
        inner = ", ".join(repr(a) for a in self.args)
        return f"{entry_point}({inner})"


@dataclass(frozen=True)
class StdioTest:
    """Run the whole program with ``stdin`` and compare its stdout with ``expected_stdout`` in the parent.

    Attributes:
        stdin: Text fed to the program's standard input.
        expected_stdout: Expected output. Never sent into the sandbox.
        float_tol: If set, whitespace-separated tokens that both parse as floats match within this
            tolerance (absolute or relative); other tokens must match exactly.
    """

    stdin: str
    expected_stdout: str
    float_tol: float | None = None
    kind: Literal["stdio"] = field(default="stdio", init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.stdin, str) or not isinstance(self.expected_stdout, str):
            raise TaskError("StdioTest stdin and expected_stdout must be strings")
        _check_tol(self.float_tol)

    def describe_input(self, entry_point: str) -> str:
        """Render the input for feedback and display."""
        return f"stdin={self.stdin!r}"


@dataclass(frozen=True)
class AssertTest:
    """Assertion code run inside the sandbox after the program, with ``candidate`` bound to the entry point.

    The verdict comes from inside the sandbox, so results mark it ``verified_in_parent=False``.

    Attributes:
        code: Python statements, e.g. ``assert abs(candidate(2.0) - 1.41) < 1e-2``.
    """

    code: str
    kind: Literal["assert"] = field(default="assert", init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not self.code.strip():
            raise TaskError("AssertTest code must be a non-empty string")

    def describe_input(self, entry_point: str) -> str:
        """Render the assertion for feedback and display."""
        return self.code.strip()


TestCase = CallTest | StdioTest | AssertTest
"""Any of the three kinds of test case."""


def _check_tol(tol: float | None) -> None:
    if tol is not None and not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
        raise TaskError(f"float_tol must be a finite number >= 0 or None, got {tol!r}")


@dataclass(frozen=True)
class Task:
    """One programming problem.

    Attributes:
        task_id: Unique id within its suite, e.g. ``"HumanEval/0"`` or ``"basic/reverse_words"``.
        prompt: What the agent sees: a function signature with a docstring (completion style) or a
            problem statement (stdio style).
        entry_point: Name of the function that call and assert tests invoke; ``""`` for stdio tasks.
        reference: A full program that passes every test of the task.
        tests: The hidden tests that decide the verdict and the reward.
        visible_tests: Examples shown in the prompt; feedback may reveal their expected values.
        metadata: Free-form facts: ``source``, ``difficulty`` (1-3), ``license``, ``split``, and for the
            procedural suites the DSL and program template.
    """

    task_id: str
    prompt: str
    entry_point: str
    reference: str
    tests: tuple[TestCase, ...]
    visible_tests: tuple[TestCase, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.task_id, str) or not self.task_id:
            raise TaskError(f"task_id must be a non-empty string, got {self.task_id!r}")
        for name in ("prompt", "entry_point", "reference"):
            if not isinstance(getattr(self, name), str):
                raise TaskError(f"task {self.task_id}: {name} must be a string")
        object.__setattr__(self, "tests", tuple(self.tests))
        object.__setattr__(self, "visible_tests", tuple(self.visible_tests))
        if not self.tests:
            raise TaskError(f"task {self.task_id}: has no tests")
        for test in (*self.tests, *self.visible_tests):
            if not isinstance(test, (CallTest, StdioTest, AssertTest)):
                raise TaskError(f"task {self.task_id}: not a test case: {test!r:.80}")
            if test.kind in ("call", "assert") and not self.entry_point:
                raise TaskError(f"task {self.task_id}: {test.kind} tests need an entry_point")

    @property
    def difficulty(self) -> int:
        """The task's difficulty (1-3, or the generator's level); 1 when the source gives none."""
        return int(self.metadata.get("difficulty", 1))

    @property
    def split(self) -> str | None:
        """The fixed split this task belongs to (``"train"`` or ``"test"``), if its suite has one."""
        value = self.metadata.get("split")
        return None if value is None else str(value)


class TaskSuite(Sequence[Task]):
    """An ordered, immutable collection of tasks with unique ids.

    Args:
        name: The suite's registered name.
        tasks: The tasks; ids must be unique.
    """

    def __init__(self, name: str, tasks: Sequence[Task]) -> None:
        self.name = name
        self._tasks: tuple[Task, ...] = tuple(tasks)
        self._index: dict[str, int] = {}
        for i, task in enumerate(self._tasks):
            if not isinstance(task, Task):
                raise TypeError(f"suite {name}: item {i} must be a Task, got {type(task).__name__}")
            if task.task_id in self._index:
                raise TaskError(f"suite {name}: duplicate task id {task.task_id!r}")
            self._index[task.task_id] = i

    @overload
    def __getitem__(self, index: int) -> Task: ...
    @overload
    def __getitem__(self, index: slice) -> TaskSuite: ...
    def __getitem__(self, index: int | slice) -> Task | TaskSuite:
        """Return a task by position, or a sub-suite for a slice."""
        if isinstance(index, slice):
            return TaskSuite(self.name, self._tasks[index])
        return self._tasks[index]

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return item in self._index
        return item in self._tasks

    def __repr__(self) -> str:
        return f"TaskSuite({self.name!r}, {len(self)} tasks)"

    @property
    def task_ids(self) -> list[str]:
        """The ids of all tasks, in order."""
        return [t.task_id for t in self._tasks]

    def get(self, task_id: str) -> Task:
        """Return the task with this id.

        Args:
            task_id: The task's id, e.g. ``"HumanEval/0"``.

        Returns:
            The task.

        Raises:
            KeyError: for an unknown id; the message names the suite and close matches.
        """
        try:
            return self._tasks[self._index[task_id]]
        except KeyError:
            import difflib

            close = difflib.get_close_matches(task_id, self._index, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"suite {self.name}: no task {task_id!r}{hint}") from None

    def split(self, name: str) -> TaskSuite:
        """Return the tasks of a fixed split (``"train"`` or ``"test"``).

        Tasks carry their split in ``metadata["split"]``; suites without one (HumanEval) are split
        deterministically: every fifth task (by position) is ``"test"``.

        Args:
            name: ``"train"`` or ``"test"``.

        Returns:
            A new :class:`TaskSuite` with the tasks of that split, in suite order.

        Raises:
            ValueError: for any other split name.
        """
        if name not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {name!r}")
        chosen = []
        for i, task in enumerate(self._tasks):
            task_split = task.split if task.split is not None else ("test" if i % 5 == 4 else "train")
            if task_split == name:
                chosen.append(task)
        return TaskSuite(f"{self.name}:{name}", chosen)

    def filter(self, predicate: Any) -> TaskSuite:
        """Return the tasks for which ``predicate(task)`` is true."""
        return TaskSuite(self.name, [t for t in self._tasks if predicate(t)])
