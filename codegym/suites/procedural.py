"""Helpers shared by the procedural suites (``arith``, ``listops``): difficulty levels and the fixed split.

The split is a property of the *program*, not of the seed or of the task's position: a program whose
canonical text hashes (CRC-32) to a multiple of 5 is a ``"test"`` task everywhere, so the same
expression never appears in both splits, whatever ``seed`` and ``n`` are.

Both suites have an *examples-only* variant (``load(..., examples_only=True)``): the same bodies, splits
and hidden tests, but the prompt shows only input/output examples (more of them) and never the
expression or the steps, so the task is programming by example rather than translation.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from codegym.tasks import Task, TaskSuite

TEST_FRACTION_DENOMINATOR = 5
"""One program in this many (by hash) belongs to the test split."""

EXAMPLES_ONLY_ID_SUFFIX = "-io"
"""Appended to the suite name in the ids of examples-only tasks: ``"arith-io/d1/s0/3"``."""


def split_for(key: str) -> str:
    """Return ``"test"`` or ``"train"`` for a program's canonical text, stable across runs and machines."""
    return "test" if zlib.crc32(key.encode("utf-8")) % TEST_FRACTION_DENOMINATOR == 0 else "train"


def difficulty_levels(difficulty: int | Sequence[int], *, suite: str, low: int, high: int) -> tuple[int, ...]:
    """Validate ``difficulty`` (one level or a sequence of levels to mix) and return the levels.

    Raises:
        ValueError: naming the suite, the value and the allowed range.
    """
    if isinstance(difficulty, int):
        levels: tuple[Any, ...] = (difficulty,)
    elif isinstance(difficulty, Sequence) and not isinstance(difficulty, str):
        levels = tuple(difficulty)
    else:
        levels = ()  # not an int or a sequence of them: the error below names the value
    if not levels or any(type(d) is not int or not low <= d <= high for d in levels):
        raise ValueError(
            f"{suite}: difficulty must be an int in {low}..{high} or a non-empty sequence of them, "
            f"got {difficulty!r}"
        )
    return levels


def check_count(n: int, *, suite: str) -> None:
    """Raise ``ValueError`` unless ``n`` is a positive int."""
    if type(n) is not int or n < 1:
        raise ValueError(f"{suite}: n must be a positive int, got {n!r}")


def check_seed(seed: int, *, suite: str) -> None:
    """Raise ``ValueError`` unless ``seed`` is an int (``None`` would seed from the OS: not reproducible)."""
    if type(seed) is not int:
        raise ValueError(f"{suite}: seed must be an int (suites are reproducible), got {seed!r}")


def check_flag(value: bool, *, name: str, suite: str) -> None:
    """Raise ``ValueError`` unless ``value`` is ``True`` or ``False`` (``1`` or ``"yes"`` is a mistake)."""
    if type(value) is not bool:
        raise ValueError(f"{suite}: {name} must be True or False, got {value!r}")


def examples_rng(task_id: str) -> random.Random:
    """A generator for the extra examples of an examples-only task, seeded by its id.

    It is separate from the suite's generator, so drawing the extra examples leaves the suite's bodies
    and tests exactly those of the plain variant.
    """
    return random.Random(f"{task_id}:examples")


def compile_function(program: str, entry_point: str) -> Callable[..., Any]:
    """Run one of *our own* generated programs (built only from VOCAB tokens) and return its entry point."""
    namespace: dict[str, Any] = {}
    exec(compile(program, "<generated>", "exec"), namespace)
    return namespace[entry_point]


def dsl_metadata(
    dsl: str, *, difficulty: int, tokens: Sequence[str], prefix: str, suffix: str, **extra: Any
) -> dict[str, Any]:
    """The metadata every procedural task carries (see the suite docs for the meaning of each key)."""
    return {
        "source": f"codegym.{dsl}",
        "license": "MIT",
        "difficulty": difficulty,
        "split": split_for("".join(tokens)),
        "dsl": dsl,
        "program_prefix": prefix,
        "program_suffix": suffix,
        "reference_tokens": tuple(tokens),
        **extra,
    }


def generate(
    dsl: str,
    *,
    n: int,
    seed: int,
    difficulty: int | Sequence[int],
    max_difficulty: int,
    sample_body: Callable[[random.Random, int], Sequence[str]],
    make_task: Callable[..., Task],
    examples_only: bool = False,
) -> TaskSuite:
    """Generate a procedural suite: for each of ``n`` tasks draw a level, a body and the task's tests.

    Args:
        dsl: Suite name, also the prefix of task ids (``"arith/d2/s0/17"``: level 2, seed 0, index 17).
        n: Number of tasks.
        seed: Seed; ``(n, seed, difficulty)`` determines the suite.
        difficulty: One level or a sequence of levels drawn uniformly per task.
        max_difficulty: The highest allowed level.
        sample_body: ``(rng, level) -> tokens`` of a reference body.
        make_task: ``make_task(tokens, task_id=..., rng=..., difficulty=..., examples_only=...) -> Task``;
            it must draw the same from ``rng`` whatever ``examples_only`` is, so that both variants have
            the same bodies (and splits).
        examples_only: Build the examples-only variant: its ids start with ``"<dsl>-io/"``
            (``"arith-io/d2/s0/17"``) instead of ``"<dsl>/"``; the suite's name stays ``dsl``.

    Raises:
        ValueError: for a bad ``n``, ``seed``, ``difficulty`` or ``examples_only``.
    """
    check_count(n, suite=dsl)
    check_seed(seed, suite=dsl)
    check_flag(examples_only, name="examples_only", suite=dsl)
    levels = difficulty_levels(difficulty, suite=dsl, low=1, high=max_difficulty)
    prefix = f"{dsl}{EXAMPLES_ONLY_ID_SUFFIX}" if examples_only else dsl
    rng = random.Random(f"{dsl}:{seed}")
    tasks = []
    for i in range(n):
        level = rng.choice(levels)
        tokens = sample_body(rng, level)
        task_id = f"{prefix}/d{level}/s{seed}/{i}"
        tasks.append(
            make_task(tokens, task_id=task_id, rng=rng, difficulty=level, examples_only=examples_only)
        )
    return TaskSuite(dsl, tasks)
