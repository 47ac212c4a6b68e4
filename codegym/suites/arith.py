"""``arith``: procedurally generated one-line integer functions ``f(x) = <expression>``.

Each task asks for ``def f(x): return <expr>`` where ``<expr>`` is built from ``x``, the digits
``1``-``9``, ``+``, ``-``, ``*`` and parentheses. The difficulty is the depth of the expression tree:
depth 1 is one operation (``x+3``), depth 2 two levels (``(x+3)*2``), and so on up to 5.

The program body is a sequence of :data:`VOCAB` tokens (one character each), so that::

    program = metadata["program_prefix"] + "".join(tokens) + metadata["program_suffix"]

Numbers are single digits (a digit may not follow a digit), which keeps the grammar of
:func:`valid_next_tokens` a two-state machine with a parenthesis counter.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from codegym.suites.procedural import compile_function, dsl_metadata, examples_rng, generate
from codegym.tasks import CallTest, Task, TaskSuite

DIGITS: tuple[str, ...] = tuple("0123456789")
OPERATORS: tuple[str, ...] = ("+", "-", "*")
VOCAB: tuple[str, ...] = ("x", *DIGITS, *OPERATORS, "(", ")")
"""Every token of an ``arith`` program body (16 tokens; no end-of-sequence token)."""

PROGRAM_PREFIX = "def f(x):\n    return "
PROGRAM_SUFFIX = "\n"
ENTRY_POINT = "f"
MAX_DIFFICULTY = 5
NUM_VISIBLE = 2
NUM_HIDDEN = 6
NUM_VISIBLE_EXAMPLES_ONLY = 5
"""Examples in an examples-only prompt: three more than the plain prompt's two (a depth-1 body, at most
quadratic, is then fixed by its examples)."""

_PRECEDENCE = {"+": 1, "-": 1, "*": 2}
_WORDS = {"+": "plus", "-": "minus", "*": "times"}
_OPERAND_START = frozenset(("x", *DIGITS, "("))


# ---------------------------------------------------------------------------------------------------------
# Grammar (for action masks)


def _scan(prefix_tokens: Sequence[str]) -> tuple[bool, int]:
    """Return (expecting_operand, open_parens) after ``prefix_tokens``; raise ValueError if it is invalid."""
    expecting_operand, depth = True, 0
    for position, token in enumerate(prefix_tokens):
        allowed = _OPERAND_START if expecting_operand else _after_operand(depth)
        if token not in allowed:
            raise ValueError(
                f"arith: token {token!r} at position {position} cannot follow "
                f"{list(prefix_tokens[:position])!r}; expected one of {sorted(allowed)}"
            )
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        else:
            expecting_operand = token in OPERATORS
    return expecting_operand, depth


def _after_operand(depth: int) -> frozenset[str]:
    return frozenset((*OPERATORS, ")")) if depth > 0 else frozenset(OPERATORS)


def _min_completion(expecting_operand: bool, depth: int) -> int:
    """The fewest tokens that turn this state into a complete expression."""
    return (1 if expecting_operand else 0) + depth


def valid_next_tokens(prefix_tokens: Sequence[str], max_len: int | None = None) -> frozenset[str]:
    """Return the tokens that may follow ``prefix_tokens`` so that the body can still become a valid program.

    Args:
        prefix_tokens: The body tokens emitted so far (each in :data:`VOCAB`).
        max_len: If given, the body may have at most this many tokens; tokens after which no valid
            expression fits in the budget are excluded (so a masked policy always finishes in time).

    Returns:
        The allowed next tokens (empty when nothing may follow within ``max_len``).

    Raises:
        ValueError: if ``prefix_tokens`` is itself not a valid prefix (naming the offending token).
    """
    expecting_operand, depth = _scan(prefix_tokens)
    allowed = _OPERAND_START if expecting_operand else _after_operand(depth)
    if max_len is None:
        return allowed
    budget = max_len - len(prefix_tokens) - 1
    result = set()
    for token in allowed:
        if token == "(":
            need = _min_completion(True, depth + 1)
        elif token == ")":
            need = _min_completion(False, depth - 1)
        else:
            need = _min_completion(token in OPERATORS, depth)
        if need <= budget:
            result.add(token)
    return frozenset(result)


def can_end(prefix_tokens: Sequence[str]) -> bool:
    """Return True if ``prefix_tokens`` is a complete expression (the body may end here).

    Raises:
        ValueError: if ``prefix_tokens`` is not a valid prefix.
    """
    expecting_operand, depth = _scan(prefix_tokens)
    return not expecting_operand and depth == 0


def program_from_tokens(tokens: Sequence[str]) -> str:
    """Return the full program for a body given as tokens (no validation)."""
    return PROGRAM_PREFIX + "".join(tokens) + PROGRAM_SUFFIX


# ---------------------------------------------------------------------------------------------------------
# Expressions


@dataclass(frozen=True)
class _Node:
    """An expression tree: a leaf (``op`` is None, ``leaf`` is ``"x"`` or a digit) or a binary operation."""

    op: str | None = None
    leaf: str = ""
    left: _Node | None = None
    right: _Node | None = None

    def eval(self, x: int) -> int:
        if self.op is None:
            return x if self.leaf == "x" else int(self.leaf)
        assert self.left is not None and self.right is not None
        a, b = self.left.eval(x), self.right.eval(x)
        return a + b if self.op == "+" else a - b if self.op == "-" else a * b

    def tokens(self) -> list[str]:
        """Tokens with the fewest parentheses that keep Python's meaning (left-associative operators)."""
        if self.op is None:
            return [self.leaf]
        assert self.left is not None and self.right is not None
        mine = _PRECEDENCE[self.op]
        left, right = self.left.tokens(), self.right.tokens()
        if self.left.op is not None and _PRECEDENCE[self.left.op] < mine:
            left = ["(", *left, ")"]
        if self.right.op is not None and (
            _PRECEDENCE[self.right.op] < mine or (_PRECEDENCE[self.right.op] == mine and self.op == "-")
        ):
            right = ["(", *right, ")"]
        return [*left, self.op, *right]


def _random_tree(rng: random.Random, depth: int, *, spine: bool = True) -> _Node:
    """A tree of exactly ``depth`` levels of operations (depth 0 is a leaf).

    The deepest leaf (the end of the "spine") is always ``x``, so every operation has ``x`` below it and
    no constant sub-expression such as ``(8+7)`` is generated; other leaves are ``x`` about one time in seven.
    """
    if depth == 0:
        use_x = spine or rng.random() < 0.15
        return _Node(leaf="x" if use_x else str(rng.randint(1, 9)))
    op = rng.choice(OPERATORS)
    deep = _random_tree(rng, depth - 1, spine=True)
    other = _random_tree(rng, rng.randint(0, depth - 1), spine=False)
    if other.op is None and other.leaf == "1" and op == "*":
        other = _Node(leaf=str(rng.randint(2, 9)))
    left, right = (deep, other) if rng.random() < 0.7 else (other, deep)
    return _Node(op=op, left=left, right=right)


def _depends_on_x(tree: _Node) -> bool:
    values = {tree.eval(x) for x in range(-3, 4)}
    return len(values) > 1


def _spaced(tokens: Sequence[str]) -> str:
    """Render tokens for humans: ``(x + 3) * 2``."""
    text = "".join(f" {t} " if t in OPERATORS else t for t in tokens)
    return text.strip()


def make_task(
    tree_tokens: Sequence[str],
    *,
    task_id: str,
    rng: random.Random,
    difficulty: int,
    examples_only: bool = False,
) -> Task:
    """Build one task from a body (tokens), choosing its example and test inputs with ``rng``.

    Args:
        tree_tokens: The reference body as :data:`VOCAB` tokens; must be a complete expression.
        task_id: The task id.
        rng: Source of the test inputs (drawn from identically in both variants).
        difficulty: Stored in ``metadata["difficulty"]``.
        examples_only: Show only examples, :data:`NUM_VISIBLE_EXAMPLES_ONLY` of them (the plain two plus
            inputs from -9..9 that no hidden test uses, drawn with ``procedural.examples_rng``), and not
            the expression; the hidden tests are the plain variant's.

    Raises:
        ValueError: if ``tree_tokens`` is not a complete expression.
    """
    if not can_end(tree_tokens):
        raise ValueError(f"arith: {task_id}: body {''.join(tree_tokens)!r} is not a complete expression")
    reference = program_from_tokens(tree_tokens)
    fn = compile_function(reference, ENTRY_POINT)
    # Examples use small non-negative inputs (easy to read); hidden tests use the rest of -9..9.
    visible_xs = sorted(rng.sample(range(0, 6), NUM_VISIBLE))
    hidden_xs = rng.sample([x for x in range(-9, 10) if x not in visible_xs], NUM_HIDDEN)
    if examples_only:
        unused = [x for x in range(-9, 10) if x not in visible_xs and x not in hidden_xs]
        extra = examples_rng(task_id).sample(unused, NUM_VISIBLE_EXAMPLES_ONLY - NUM_VISIBLE)
        visible_xs = sorted([*visible_xs, *extra])
    visible = tuple(CallTest(args=(x,), expected=fn(x)) for x in visible_xs)
    hidden = tuple(CallTest(args=(x,), expected=fn(x)) for x in hidden_xs)
    spaced = _spaced(tree_tokens)
    examples = "\n".join(f"    f({t.args[0]}) == {t.expected}" for t in visible)
    if examples_only:
        prompt = (
            "Write f(x) that returns an integer expression in x (made of x, digits, +, - and *) that fits "
            f"these examples; it is also tested on other inputs.\nExamples:\n{examples}\n"
        )
    else:
        prompt = f"Write f(x) that returns {spaced}.\nExamples:\n{examples}\n"
    return Task(
        task_id=task_id,
        prompt=prompt,
        entry_point=ENTRY_POINT,
        reference=reference,
        tests=hidden,
        visible_tests=visible,
        metadata=dsl_metadata(
            "arith",
            difficulty=difficulty,
            tokens=tree_tokens,
            prefix=PROGRAM_PREFIX,
            suffix=PROGRAM_SUFFIX,
            expression=spaced,
            description=_describe_tokens(tree_tokens),
            **({"examples_only": True} if examples_only else {}),
        ),
    )


def _describe_tokens(tokens: Sequence[str]) -> str:
    if len(tokens) == 3 and tokens[0] == "x" and tokens[1] in OPERATORS and tokens[2] in DIGITS:
        return f"x {_WORDS[tokens[1]]} {tokens[2]}"
    return _spaced(tokens)


def sample_body(rng: random.Random, level: int) -> list[str]:
    """Draw a random reference body of expression depth ``level`` that depends on ``x``."""
    tree = _random_tree(rng, level)
    while not _depends_on_x(tree):
        tree = _random_tree(rng, level)
    return tree.tokens()


def load(
    n: int = 200, seed: int = 0, difficulty: int | Sequence[int] = 1, examples_only: bool = False
) -> TaskSuite:
    """Generate ``n`` arithmetic tasks.

    Args:
        n: Number of tasks (any positive number: the generator is unlimited; bodies may repeat at depth 1,
            where only a few dozen distinct expressions exist).
        seed: Seed of the generator; the same ``(n, seed, difficulty)`` always gives the same suite.
        difficulty: Expression depth 1-5, or a sequence of depths to draw from uniformly per task.
        examples_only: Programming by example: prompts show only the signature and
            :data:`NUM_VISIBLE_EXAMPLES_ONLY` input/output examples, never the expression. Bodies,
            references, hidden tests and splits are those of the plain suite; ids start with
            ``"arith-io/"`` instead of ``"arith/"``, and ``metadata["examples_only"]`` is ``True``.

    Returns:
        The suite; ``metadata["split"]`` is fixed by the expression (see :mod:`codegym.suites.procedural`).

    Raises:
        ValueError: for a bad ``n``, ``seed``, ``difficulty`` or ``examples_only``.
    """
    return generate(
        "arith",
        n=n,
        seed=seed,
        difficulty=difficulty,
        max_difficulty=MAX_DIFFICULTY,
        sample_body=sample_body,
        make_task=make_task,
        examples_only=examples_only,
    )
