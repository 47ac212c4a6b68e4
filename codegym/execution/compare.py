"""Strict comparison in the parent: returned values against expected values, printed output against expected.

The values compared here were decoded by :func:`decode_wire` from what the sandbox sent, so they are exact
builtin types; nothing here ever calls a method of an object made by a candidate program.

The wire format (tags ``t s f d b i`` for tuple, set, frozenset, dict, bytes and huge ints) has a second
implementation in ``zygote.py`` on purpose: the zygote is a standalone, stdlib-only script that also runs
inside the Docker image, where ``codegym`` is not installed, so it cannot import this module. This side
is the stricter one (it rejects malformed input from the sandbox with :class:`WireError`). Every run
crosses both: arguments go parent -> zygote, returned values zygote -> parent.
"""

from __future__ import annotations

import math
from typing import Any

_TAGS = frozenset("tsfdbi")


class WireError(ValueError):
    """The sandbox sent something that is not a well-formed wire value."""


def _decode_tag(obj: dict[str, Any]) -> Any:
    if len(obj) != 1:
        raise WireError(f"wire object with {len(obj)} keys")
    ((tag, val),) = obj.items()
    if tag not in _TAGS:
        raise WireError(f"unknown wire tag {tag!r}")
    if tag == "b":
        if type(val) is not str:
            raise WireError("bytes tag needs a hex string")
        return bytes.fromhex(val)
    if tag == "i":
        if type(val) is not str:
            raise WireError("int tag needs a hex string")
        return -int(val[1:], 16) if val.startswith("-") else int(val, 16)
    if type(val) is not list:
        raise WireError(f"tag {tag!r} needs a list")
    if tag == "t":
        return tuple(val)
    if tag == "s":
        return set(val)
    if tag == "f":
        return frozenset(val)
    pairs = {}
    for pair in val:
        if type(pair) is not list or len(pair) != 2:
            raise WireError("dict tag needs [key, value] pairs")
        pairs[pair[0]] = pair[1]
    return pairs


def decode_wire(value: Any) -> Any:
    """Decode a wire value already parsed by ``json`` (lists, numbers, strings, tag objects) into plain data.

    Raises:
        WireError: for anything malformed (unknown tags, unhashable keys, too deep).
    """
    try:
        return _rebuild(value, 0)
    except (TypeError, ValueError, RecursionError) as exc:
        raise WireError(str(exc)) from None


def _rebuild(value: Any, depth: int) -> Any:
    if depth > 200:
        raise WireError("nested too deep")
    kind = type(value)
    if kind is list:
        return [_rebuild(v, depth + 1) for v in value]
    if kind is dict:
        return _decode_tag({k: _rebuild(v, depth + 1) for k, v in value.items()})
    return value


def encode_wire(value: Any, depth: int = 0) -> Any:
    """Encode plain data as a JSON-ready wire value (the inverse of :func:`decode_wire`).

    Raises:
        ValueError: for a value that is not plain data (exact builtin types only).
    """
    kind = type(value)
    if value is None or kind in (bool, str, float):
        return value
    if kind is int:
        if -(1 << 4000) < value < (1 << 4000):
            return value
        return {"i": ("-" if value < 0 else "") + format(abs(value), "x")}
    if depth > 100:
        raise ValueError("value nested more than 100 deep")
    if kind is list:
        return [encode_wire(v, depth + 1) for v in value]
    if kind is tuple:
        return {"t": [encode_wire(v, depth + 1) for v in value]}
    if kind is dict:
        return {"d": [[encode_wire(k, depth + 1), encode_wire(v, depth + 1)] for k, v in value.items()]}
    if kind is set:
        return {"s": [encode_wire(v, depth + 1) for v in value]}
    if kind is frozenset:
        return {"f": [encode_wire(v, depth + 1) for v in value]}
    if kind is bytes:
        return {"b": value.hex()}
    raise ValueError(f"not plain data: {kind.__name__}")


def _canon(value: Any) -> Any:
    """A hashable key that keeps exact types (so that ``1``, ``1.0`` and ``True`` differ)."""
    kind = type(value)
    if kind in (list, tuple):
        return (kind.__name__, tuple(_canon(v) for v in value))
    if kind in (set, frozenset):
        return (kind.__name__, frozenset(_canon(v) for v in value))
    if kind is dict:
        return ("dict", frozenset((_canon(k), _canon(v)) for k, v in value.items()))
    if kind is float and math.isnan(value):
        return ("float", "nan")
    return (kind.__name__, value)


def _float_equal(a: float, b: float, tol: float | None) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if tol is None:
        return a == b
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def strict_equal(expected: Any, got: Any, float_tol: float | None = None, _depth: int = 0) -> bool:
    """Compare plain data with exact types, recursively.

    ``True`` is not ``1``, ``1`` is not ``1.0``, a tuple is not a list. Floats compare exactly unless
    ``float_tol`` is given (then ``math.isclose`` with that relative and absolute tolerance); NaN equals
    NaN. Set elements and dict keys compare exactly (with types); dict values use the tolerance.
    """
    if _depth > 200:
        return False
    kind = type(expected)
    if type(got) is not kind:
        return False
    if kind is float:
        return _float_equal(expected, got, float_tol)
    if kind in (list, tuple):
        return len(expected) == len(got) and all(
            strict_equal(e, g, float_tol, _depth + 1) for e, g in zip(expected, got)
        )
    if kind is dict:
        if len(expected) != len(got):
            return False
        got_by_key = {_canon(k): v for k, v in got.items()}
        for key, value in expected.items():
            ck = _canon(key)
            if ck not in got_by_key or not strict_equal(value, got_by_key[ck], float_tol, _depth + 1):
                return False
        return True
    if kind in (set, frozenset):
        return len(expected) == len(got) and {_canon(v) for v in expected} == {_canon(v) for v in got}
    return bool(expected == got)


def normalize_stdout(text: str) -> str:
    """Normalize printed output: CRLF and CR become LF; strip trailing whitespace of each line and the end."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).rstrip()


def _as_float(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None


def stdout_equal(expected: str, got: str, float_tol: float | None = None) -> bool:
    """Compare printed output after :func:`normalize_stdout`.

    With ``float_tol``, lines are split into whitespace-separated tokens; tokens that both parse as floats
    match within the tolerance (absolute or relative), other tokens exactly; line and token counts must
    agree.
    """
    exp, out = normalize_stdout(expected), normalize_stdout(got)
    if exp == out:
        return True
    if float_tol is None:
        return False
    exp_lines, out_lines = exp.split("\n"), out.split("\n")
    if len(exp_lines) != len(out_lines):
        return False
    for exp_line, out_line in zip(exp_lines, out_lines):
        exp_tokens, out_tokens = exp_line.split(), out_line.split()
        if len(exp_tokens) != len(out_tokens):
            return False
        for a, b in zip(exp_tokens, out_tokens):
            if a == b:
                continue
            fa, fb = _as_float(a), _as_float(b)
            if fa is None or fb is None or not _float_equal(fa, fb, float_tol):
                return False
    return True


def short_repr(value: Any, limit: int = 200) -> str:
    """``repr`` cut to ``limit`` characters (values here are plain data, so ``repr`` is safe)."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond the decimal conversion limit, possibly nested
        text = f"<{type(value).__name__} too large to print>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
