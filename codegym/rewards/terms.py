"""Length and format terms: small shaping terms meant to be added to an outcome reward with weighted_sum."""

from __future__ import annotations

import ast
import math
import re
import warnings
from collections.abc import Callable

from codegym.execution.result import ExecutionResult
from codegym.rewards.base import check_reward_args
from codegym.tasks import Task

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(text: str) -> str:
    """Return the code in ``text``: the first fenced block (```python ... ```) if there is one, else ``text``.

    Chat models wrap programs in Markdown fences; programs without fences are returned unchanged. A
    block tagged with a language other than Python (or untagged) is still taken when it is the only one.
    """
    blocks = _FENCE.findall(text)
    if not blocks:
        return text
    for lang, body in blocks:
        if lang.lower() in ("python", "py", "python3"):
            return body
    return blocks[0][1]


def _parse(program: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(program)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None


def format_checks(task: Task, program: str) -> dict[str, bool]:
    """The individual checks behind :func:`format_reward`, by name.

    * ``parses``: the program is valid Python (so no Markdown fences or prose around it);
    * ``no_fences``: no ````` fence anywhere in the text;
    * ``defines_entry_point``: for call and assert tasks, a top-level ``def``/``async def``/assignment/
      import binds ``task.entry_point`` (always true for stdio tasks, which have no entry point).
    """
    tree = _parse(program)
    defines = not task.entry_point
    if tree is not None and task.entry_point:
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = {node.name}
            elif isinstance(node, ast.Assign):
                names = {t.id for t in node.targets if isinstance(t, ast.Name)}
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
                names = {node.target.id}
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = {(a.asname or a.name).split(".")[0] for a in node.names}
            else:
                continue
            if task.entry_point in names:
                defines = True
                break
    return {"parses": tree is not None, "no_fences": "```" not in program, "defines_entry_point": defines}


def format_reward(task: Task, program: str, result: ExecutionResult) -> float:
    """Format reward: 1.0 if the program is bare, valid Python that defines the entry point, else 0.0.

    Formula: ``R = 1[parses and no_fences and defines_entry_point]`` (see :func:`format_checks`); the
    code analogue of the format rewards of DeepSeek-R1-style training (Guo et al. 2025). Independent of
    ``result``.

    Args:
        task: The task (its ``entry_point`` is looked for).
        program: The candidate program.
        result: Its execution result (unused).

    Returns:
        1.0 or 0.0.
    """
    check_reward_args("format_reward", task=task, program=program)
    return 1.0 if all(format_checks(task, program).values()) else 0.0


class LengthPenalty:
    """DAPO's soft overlong punishment (Yu et al. 2025, eq. 13) on the program's length.

    With ``L`` the length, ``L_max`` the limit and ``L_cache`` the width of the soft band::

        R = 0                                    if L <= L_max - L_cache
            (L_max - L_cache - L) / L_cache      if L_max - L_cache < L <= L_max   (from 0 down to -1)
            -1                                   if L > L_max

    ``L_cache = 0`` gives a hard cut-off. With ``relative=True``, ``max_length`` and ``cache_length``
    are multiples of the reference's length (``max_length=2.0``: up to twice as long as the reference).

    Args:
        max_length: ``L_max`` (absolute, or a multiple of the reference's length).
        cache_length: ``L_cache``, 0 <= cache_length <= max_length.
        relative: Measure both limits in units of ``count(task.reference)``.
        count: How length is measured; default characters (``len``); pass a tokenizer-based counter for
            tokens, e.g. ``lambda s: len(tok(s).input_ids)``.
        name: Name for logs and ``reward_components``.

    Raises:
        ValueError: if the limits are not finite, non-negative and ordered.
    """

    def __init__(
        self,
        max_length: float,
        cache_length: float = 0.0,
        *,
        relative: bool = False,
        count: Callable[[str], int] = len,
        name: str = "length",
    ) -> None:
        finite = math.isfinite(max_length) and math.isfinite(cache_length)
        if not (finite and 0 <= cache_length <= max_length):
            raise ValueError(
                f"LengthPenalty needs 0 <= cache_length <= max_length (finite), "
                f"got max_length={max_length!r}, cache_length={cache_length!r}"
            )
        self.max_length = float(max_length)
        self.cache_length = float(cache_length)
        self.relative = relative
        self.count = count
        self.name = name
        self.__name__ = name

    def limits(self, task: Task) -> tuple[float, float]:
        """``(L_max, L_cache)`` for this task, in units of ``count``."""
        unit = float(self.count(task.reference)) if self.relative else 1.0
        if self.relative and unit <= 0:
            raise ValueError(f"task {task.task_id}: relative LengthPenalty needs a non-empty reference")
        return self.max_length * unit, self.cache_length * unit

    def __call__(self, task: Task, program: str, result: ExecutionResult) -> float:
        """The penalty in [-1, 0] for ``program``."""
        check_reward_args(self.name, program=program)
        length = float(self.count(program))
        l_max, l_cache = self.limits(task)
        if length > l_max:
            return -1.0
        if length <= l_max - l_cache:
            return 0.0
        return (l_max - l_cache - length) / l_cache

    def __repr__(self) -> str:
        return (
            f"LengthPenalty(max_length={self.max_length:g}, cache_length={self.cache_length:g}, "
            f"relative={self.relative})"
        )


length_penalty = LengthPenalty(max_length=4.0, cache_length=2.0, relative=True, name="length_penalty")
"""A ready length term: 0 up to twice the reference's length, falling linearly to -1 at four times."""
