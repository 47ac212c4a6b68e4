"""Reading task data files (JSON Lines) with errors that name the file, line and field."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codegym.tasks import TaskError


def read_jsonl(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(where, record)`` for every non-blank line of a JSONL file (``.gz`` is decompressed).

    ``where`` is ``"FILE:LINE"``, to be used in error messages about that record.

    Raises:
        TaskError: if the file is missing, or a line is not a JSON object (naming file and line).
        TypeError: if ``path`` is not a str or path.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"data file path must be a str or path, got {type(path).__name__} {path!r:.60}")
    path = Path(path)
    if not path.is_file():
        raise TaskError(f"{path}: data file not found")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})") from None
            if not isinstance(record, dict):
                raise TaskError(f"{where}: expected a JSON object, got {type(record).__name__}")
            yield where, record


def require(record: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    """Return ``record[name]``, or raise :class:`TaskError` naming ``where`` and the field."""
    if name not in record:
        raise TaskError(f"{where}: missing field {name!r}")
    value = record[name]
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise TaskError(f"{where}: field {name!r} should be {expected}, got {type(value).__name__}")
    return value
