"""Turning assertion code (HumanEval ``check`` functions, MBPP ``test_list`` lines) into test cases.

One statement becomes a :class:`~codegym.tasks.CallTest` (whose expected value is compared in the parent,
never inside the sandbox) when it has one of these shapes, where ``f`` is the function under test, the
arguments and the expected value are literals (Python literals, ``set()``/``frozenset(...)``/``tuple(...)``
of literals, and arithmetic on numeric literals such as ``2.0/3.0``), and an optional message follows::

    assert f(<args>) == <literal>          assert <literal> == f(<args>)
    assert f(<args>) is True / False / None
    assert abs(f(<args>) - <number>) < <tol>      (also <=, math.fabs, and abs(<number> - f(<args>)))
    assert math.isclose(f(<args>), <number>, rel_tol=<tol>)   (or abs_tol=<tol>)

The tolerance forms become ``CallTest(float_tol=tol)``, which the executor checks with
``math.isclose(got, expected, rel_tol=tol, abs_tol=tol)``: the same as the original for values of
magnitude <= 1, slightly more lenient (relative) above that.

Kept as :class:`~codegym.tasks.AssertTest` (they run inside the sandbox) because a strict comparison in
the parent would change their meaning:

* ``assert f(x)`` and ``assert not f(x)``: they accept *any* truthy / falsy value (``[1]``, ``0``,
  ``None``...), so a strict ``== True`` could reject correct programs. (Unless the loader opts in with
  ``truthy_as_bool=True`` and checks its references, as HumanEval does for functions that must return
  a bool.)
* ``assert f(x) == <literal>`` where ``f`` is called with non-literal arguments, or compared with a
  non-literal, or nested in another call (``sorted(f(x)) == ...``, ``set(f(x)) == ...``);
* every statement that is not an ``assert`` (imports, assignments, loops, helper definitions) and every
  assertion that uses a name they define. These are kept together, in their original order, as ONE
  assert test, so that variables keep their meaning.

``assert True`` (a no-op in a few HumanEval checks) is dropped.

The strict comparison of the parent also differs from Python's ``==`` in the numeric tower (``1 == 1.0 ==
True``). A call test therefore only matches the original assertion when the correct function returns a
value of the literal's type; loaders that know their reference solutions check this
(see :func:`codegym.suites.humaneval.load`) or let :func:`codegym.suites.validate.validate_suite` find out.
"""

from __future__ import annotations

import ast
import builtins
import math
import operator
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from codegym.tasks import AssertTest, CallTest, TestCase, is_plain_data

_BUILTIN_NAMES = frozenset(dir(builtins))
_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CONTAINER_CALLS: dict[str, Callable[..., Any]] = {
    "set": set,
    "frozenset": frozenset,
    "tuple": tuple,
    "list": list,
    "dict": dict,
}


class NotLiteral(ValueError):
    """The expression is not a literal this module can evaluate safely."""


def literal_value(node: ast.expr) -> Any:
    """Evaluate a literal expression without running code.

    Accepts what :func:`ast.literal_eval` accepts, plus ``set()``, ``frozenset(<literal>)``,
    ``tuple(<literal>)``, ``list(<literal>)``, ``dict()``, arithmetic between numeric literals
    (``2.0/3.0``, ``10**3``; powers are limited to exponents <= 64 to keep evaluation cheap),
    concatenation of string or list literals (``'ab' + 'c'``), and containers of all these
    (``(3 + 5, 3 * 5)``).

    Raises:
        NotLiteral: if the node is anything else, or the value is not plain data.
    """
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        value = _extended_literal(node)
    if not is_plain_data(value):
        raise NotLiteral(f"not plain data: {ast.unparse(node)[:80]}")
    return value


def _extended_literal(node: ast.expr) -> Any:
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [literal_value(e) for e in node.elts]
        return {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)](items)
    if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
        return {literal_value(k): literal_value(v) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = literal_value(node.left), literal_value(node.right)
        numeric = (int, float)
        sequences = (str, bytes, list, tuple)
        if isinstance(node.op, ast.Add) and type(left) is type(right) and type(left) in sequences:
            return left + right
        if type(left) not in numeric or type(right) not in numeric:
            raise NotLiteral(f"arithmetic on non-numbers: {ast.unparse(node)[:80]}")
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise NotLiteral(f"power too large to fold: {ast.unparse(node)[:80]}")
        try:
            return _BINOPS[type(node.op)](left, right)
        except (ArithmeticError, ValueError) as exc:
            raise NotLiteral(f"cannot fold {ast.unparse(node)[:80]}: {exc}") from None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = literal_value(node.operand)
        if type(value) not in (int, float):
            raise NotLiteral(f"sign of a non-number: {ast.unparse(node)[:80]}")
        return -value if isinstance(node.op, ast.USub) else value
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _CONTAINER_CALLS
        and not node.keywords
        and len(node.args) <= 1
    ):
        args = [literal_value(a) for a in node.args]
        try:
            return _CONTAINER_CALLS[node.func.id](*args)
        except (TypeError, ValueError) as exc:
            raise NotLiteral(f"cannot build {ast.unparse(node)[:80]}: {exc}") from None
    raise NotLiteral(f"not a literal: {ast.unparse(node)[:80]}")


def literal_call_args(node: ast.expr, func_names: frozenset[str]) -> tuple[Any, ...] | None:
    """If ``node`` is ``f(<literal>, ...)`` with ``f`` in ``func_names`` and no keywords, return the args."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in func_names):
        return None
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        return None
    try:
        return tuple(literal_value(a) for a in node.args)
    except NotLiteral:
        return None


def _number(node: ast.expr) -> float | None:
    try:
        value = literal_value(node)
    except NotLiteral:
        return None
    return value if type(value) in (int, float) and math.isfinite(value) else None


def _tolerance_form(test: ast.expr, names: frozenset[str]) -> CallTest | None:
    """``abs(f(a) - v) < tol`` (and variants) or ``math.isclose(f(a), v, rel_tol=tol)``."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Lt, ast.LtE)):
        tol = _number(test.comparators[0])
        call = test.left
        is_abs = isinstance(call, ast.Call) and (
            (isinstance(call.func, ast.Name) and call.func.id == "abs")
            or (
                isinstance(call.func, ast.Attribute)
                and call.func.attr == "fabs"
                and isinstance(call.func.value, ast.Name)
                and call.func.value.id == "math"
            )
        )
        if tol is None or tol <= 0 or not is_abs or len(call.args) != 1 or call.keywords:  # type: ignore[union-attr]
            return None
        diff = call.args[0]  # type: ignore[union-attr]
        if not (isinstance(diff, ast.BinOp) and isinstance(diff.op, ast.Sub)):
            return None
        for got, want in ((diff.left, diff.right), (diff.right, diff.left)):
            args = literal_call_args(got, names)
            expected = _number(want)
            if args is not None and expected is not None:
                return CallTest(args=args, expected=float(expected), float_tol=float(tol))
        return None
    if (
        isinstance(test, ast.Call)
        and isinstance(test.func, ast.Attribute)
        and test.func.attr == "isclose"
        and isinstance(test.func.value, ast.Name)
        and test.func.value.id == "math"
        and len(test.args) == 2
        and len(test.keywords) == 1
        and test.keywords[0].arg in ("rel_tol", "abs_tol")
    ):
        tol = _number(test.keywords[0].value)
        if tol is None or tol <= 0:
            return None
        for got, want in ((test.args[0], test.args[1]), (test.args[1], test.args[0])):
            args = literal_call_args(got, names)
            expected = _number(want)
            if args is not None and expected is not None:
                return CallTest(args=args, expected=float(expected), float_tol=float(tol))
    return None


def assert_to_call_test(
    statement: ast.stmt, func_names: Sequence[str] | frozenset[str], *, truthy_as_bool: bool = False
) -> CallTest | None:
    """Convert one ``assert`` statement to a :class:`CallTest`, or return None if it has no such form.

    Args:
        statement: A parsed statement.
        func_names: Names under which the function under test is called (``candidate``, the entry point).
        truthy_as_bool: Also convert ``assert f(x)`` to ``expected=True`` and ``assert not f(x)`` to
            ``expected=False``. This is *stricter* than the original (which accepts any truthy/falsy
            value), so use it only where the task asks for a bool and the reference is checked to return
            exactly ``True``/``False`` (HumanEval does both, see :mod:`codegym.suites.humaneval`).
    """
    if not isinstance(statement, ast.Assert):
        return None
    names = frozenset(func_names)
    test = statement.test
    if truthy_as_bool:
        negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
        args = literal_call_args(test.operand if negated else test, names)  # type: ignore[attr-defined]
        if args is not None:
            return CallTest(args=args, expected=not negated)
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right, op = test.left, test.comparators[0], test.ops[0]
        if isinstance(op, ast.Eq):
            for call, want in ((left, right), (right, left)):
                args = literal_call_args(call, names)
                if args is None:
                    continue
                try:
                    return CallTest(args=args, expected=literal_value(want))
                except NotLiteral:
                    return None
        if isinstance(op, ast.Is) and isinstance(right, ast.Constant) and right.value in (True, False, None):
            args = literal_call_args(left, names)
            if args is not None:
                return CallTest(args=args, expected=right.value)
    return _tolerance_form(test, names)


def _is_noop_assert(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Assert)
        and isinstance(statement.test, ast.Constant)
        and bool(statement.test.value) is True
    )


def _free_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


@dataclass(frozen=True)
class ParsedAsserts:
    """The test cases recovered from a block of assertion code.

    Attributes:
        tests: Call tests and assert tests, in source order (a context group sits where it began).
        sources: For each test, the statement it came from (``ast.unparse`` form; the whole group for
            the context group), so that a loader can turn a call test back into its original assertion.
        dropped: Statements dropped as no-ops (``assert True``).
        kept_as_assert: Top-level assertion statements kept as assert code (inside context groups too).
    """

    tests: tuple[TestCase, ...]
    sources: tuple[str, ...] = field(default=())
    dropped: int = 0
    kept_as_assert: int = 0

    @property
    def num_call(self) -> int:
        """How many call tests."""
        return sum(1 for t in self.tests if isinstance(t, CallTest))

    @property
    def num_assert(self) -> int:
        """How many assert tests."""
        return sum(1 for t in self.tests if isinstance(t, AssertTest))


def split_statements(
    statements: Sequence[ast.stmt],
    func_names: Sequence[str],
    *,
    preamble: str = "",
    known_names: frozenset[str] = frozenset(),
    truthy_as_bool: bool = False,
) -> ParsedAsserts:
    """Split assertion statements into call tests, standalone assert tests and one context group.

    Args:
        statements: The statements (e.g. the body of HumanEval's ``check``).
        func_names: Names of the function under test in these statements.
        preamble: Source put before every assert test (helpers the statements need, e.g. an alias line).
        known_names: Names an assert statement may use and still stand alone (besides builtins and
            ``func_names``), e.g. helpers defined by the program or the preamble.
        truthy_as_bool: Passed to :func:`assert_to_call_test`.

    Returns:
        The tests. A standalone assert test holds one ``assert`` that uses only known names; the
        context group holds every other statement in order, wrapped in a function so its variables
        stay local.
    """
    tests: list[TestCase] = []
    sources: list[str] = []
    context: list[ast.stmt] = []
    context_at: int | None = None
    dropped = kept = 0
    allowed = _BUILTIN_NAMES | set(func_names) | known_names
    for statement in statements:
        if _is_noop_assert(statement):
            dropped += 1
            continue
        call = assert_to_call_test(statement, func_names, truthy_as_bool=truthy_as_bool)
        if call is not None:
            tests.append(call)
            sources.append(ast.unparse(statement))
            continue
        if isinstance(statement, ast.Assert):
            kept += 1
            if _free_names(statement) <= allowed:
                tests.append(AssertTest(code=preamble + ast.unparse(statement) + "\n"))
                sources.append(ast.unparse(statement))
                continue
        if context_at is None:
            context_at = len(tests)
        context.append(statement)
    if context and any(isinstance(n, ast.Assert) for s in context for n in ast.walk(s)):
        group = "\n".join(ast.unparse(s) for s in context)
        code = f"{preamble}def _codegym_check():\n{textwrap.indent(group, '    ')}\n_codegym_check()\n"
        assert context_at is not None
        tests.insert(context_at, AssertTest(code=code))
        sources.insert(context_at, group)
    return ParsedAsserts(tests=tuple(tests), sources=tuple(sources), dropped=dropped, kept_as_assert=kept)
