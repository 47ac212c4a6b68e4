"""Helpers shared by the procedural suites (``arith``, ``listops``): difficulty levels and the fixed split.

The split is a property of the *program*, not of the seed or of the task's position: a program whose
canonical text hashes (CRC-32) to a multiple of 5 is a ``"test"`` task everywhere, so the same
expression never appears in both splits, whatever ``seed`` and ``n`` are.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

TEST_FRACTION_DENOMINATOR = 5
"""One program in this many (by hash) belongs to the test split."""


def split_for(key: str) -> str:
    """Return ``"test"`` or ``"train"`` for a program's canonical text, stable across runs and machines."""
    return "test" if zlib.crc32(key.encode("utf-8")) % TEST_FRACTION_DENOMINATOR == 0 else "train"


def difficulty_levels(difficulty: int | Sequence[int], *, suite: str, low: int, high: int) -> tuple[int, ...]:
    """Validate ``difficulty`` (one level or a sequence of levels to mix) and return the levels.

    Raises:
        ValueError: naming the suite, the value and the allowed range.
    """
    levels = (difficulty,) if isinstance(difficulty, int) else tuple(difficulty)
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
