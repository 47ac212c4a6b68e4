"""``listops``: procedurally generated list pipelines ``f(xs)``, one statement per step.

Each task asks for a function that takes a list of integers and applies a short pipeline of steps
("sort it; then add 1 to every element; then keep only the even elements"). The program is::

    def f(xs):
        xs = sorted(xs)
        xs = [v + 1 for v in xs]
        xs = [v for v in xs if v % 2 == 0]
        return xs

and every step line is ONE token of :data:`VOCAB`, so the body of a difficulty-``k`` task is ``k`` tokens
long (difficulty = pipeline length, 1-6). Two steps (``sum`` and ``len``) turn the list into an integer
and may only come last. As for every DSL suite::

    program = metadata["program_prefix"] + "".join(tokens) + metadata["program_suffix"]
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from codegym.suites.procedural import compile_function, dsl_metadata, examples_rng, generate
from codegym.tasks import CallTest, Task, TaskSuite

_STEPS: tuple[tuple[str, str, str], ...] = (
    # (name, statement, description in words)
    ("sort", "xs = sorted(xs)", "sort it in increasing order"),
    ("reverse", "xs = xs[::-1]", "reverse it"),
    ("add1", "xs = [v + 1 for v in xs]", "add 1 to every element"),
    ("sub1", "xs = [v - 1 for v in xs]", "subtract 1 from every element"),
    ("double", "xs = [v * 2 for v in xs]", "multiply every element by 2"),
    ("negate", "xs = [-v for v in xs]", "negate every element"),
    ("square", "xs = [v * v for v in xs]", "square every element"),
    ("abs", "xs = [abs(v) for v in xs]", "replace every element by its absolute value"),
    ("positive", "xs = [v for v in xs if v > 0]", "keep only the positive elements"),
    ("even", "xs = [v for v in xs if v % 2 == 0]", "keep only the even elements"),
    ("odd", "xs = [v for v in xs if v % 2 == 1]", "keep only the odd elements"),
    ("drop_first", "xs = xs[1:]", "drop the first element"),
    ("take3", "xs = xs[:3]", "keep only the first 3 elements"),
    ("dedupe", "xs = list(dict.fromkeys(xs))", "remove repeated elements, keeping first occurrences"),
    ("sum", "xs = sum(xs)", "return the sum of the elements"),
    ("len", "xs = len(xs)", "return the number of elements"),
)
_INDENT = "    "

VOCAB: tuple[str, ...] = tuple(f"{_INDENT}{statement}\n" for _, statement, _ in _STEPS)
"""Every token of a ``listops`` program body: one indented statement line each (16 tokens; no EOS)."""

STEP_NAMES: dict[str, str] = {token: name for token, (name, _, _) in zip(VOCAB, _STEPS)}
"""Token -> short step name (``"sort"``, ``"add1"``, ...), for display and analysis."""

TERMINAL_TOKENS: frozenset[str] = frozenset(t for t in VOCAB if STEP_NAMES[t] in ("sum", "len"))
"""Steps that turn the list into an int; they may only be the last step."""

PROGRAM_PREFIX = "def f(xs):\n"
PROGRAM_SUFFIX = f"{_INDENT}return xs\n"
ENTRY_POINT = "f"
MAX_DIFFICULTY = 6
NUM_VISIBLE = 2
NUM_HIDDEN = 6
NUM_VISIBLE_EXAMPLES_ONLY = 5
"""Examples in an examples-only prompt: three more than the plain prompt's two."""

_DESCRIPTIONS = {token: words for token, (_, _, words) in zip(VOCAB, _STEPS)}
_BY_NAME = {name: token for token, name in STEP_NAMES.items()}
# Steps that undo themselves or do nothing when repeated; the generator never repeats them back to back.
_NO_REPEAT = frozenset(_BY_NAME[n] for n in ("sort", "reverse", "negate", "abs", "positive", "even", "odd"))
_NO_REPEAT |= {_BY_NAME[n] for n in ("take3", "dedupe")}
_CANCELS = {(_BY_NAME["add1"], _BY_NAME["sub1"]), (_BY_NAME["sub1"], _BY_NAME["add1"])}


def _check_prefix(prefix_tokens: Sequence[str]) -> None:
    for position, token in enumerate(prefix_tokens):
        if token not in STEP_NAMES:
            raise ValueError(f"listops: token {token!r} at position {position} is not in VOCAB")
        if token in TERMINAL_TOKENS and position != len(prefix_tokens) - 1:
            raise ValueError(
                f"listops: token {token!r} at position {position} turns the list into an int "
                "and may only be the last step"
            )


def valid_next_tokens(prefix_tokens: Sequence[str], max_len: int | None = None) -> frozenset[str]:
    """Return the tokens that may follow ``prefix_tokens`` so that the body can still become a valid program.

    Any step may follow a list-valued prefix; nothing may follow ``sum`` or ``len``.

    Args:
        prefix_tokens: The body tokens emitted so far (each in :data:`VOCAB`).
        max_len: If given, the body may have at most this many tokens.

    Raises:
        ValueError: if ``prefix_tokens`` is not a valid prefix (naming the offending token).
    """
    _check_prefix(prefix_tokens)
    if prefix_tokens and prefix_tokens[-1] in TERMINAL_TOKENS:
        return frozenset()
    if max_len is not None and len(prefix_tokens) >= max_len:
        return frozenset()
    return frozenset(VOCAB)


def can_end(prefix_tokens: Sequence[str]) -> bool:
    """Return True if the body may end after ``prefix_tokens``: it has at least one step.

    Raises:
        ValueError: if ``prefix_tokens`` is not a valid prefix.
    """
    _check_prefix(prefix_tokens)
    return len(prefix_tokens) >= 1


def program_from_tokens(tokens: Sequence[str]) -> str:
    """Return the full program for a body given as tokens (no validation)."""
    return PROGRAM_PREFIX + "".join(tokens) + PROGRAM_SUFFIX


def describe(tokens: Sequence[str]) -> str:
    """Describe a pipeline in words: ``"sort it in increasing order; then add 1 to every element"``."""
    return "; then ".join(_DESCRIPTIONS[t] for t in tokens)


def _random_pipeline(rng: random.Random, length: int) -> list[str]:
    list_steps = [t for t in VOCAB if t not in TERMINAL_TOKENS]
    tokens: list[str] = []
    while len(tokens) < length:
        last = length - len(tokens) == 1
        pool = sorted(TERMINAL_TOKENS) if last and rng.random() < 0.2 else list_steps
        token = rng.choice(pool)
        if tokens and ((token == tokens[-1] and token in _NO_REPEAT) or (tokens[-1], token) in _CANCELS):
            continue
        tokens.append(token)
    return tokens


def _compile(tokens: Sequence[str]) -> Callable[[list[int]], object]:
    return compile_function(program_from_tokens(tokens), ENTRY_POINT)


_PROBES = ([3, -1, 2, 2, 8, -6, 5], [0, 7, -3], [4, 4, 1], [-9, 6, -2, 9, 1, -5, 3])


def _is_constant(tokens: Sequence[str]) -> bool:
    """True if the pipeline gives the same output for very different lists (e.g. "even; then odd")."""
    fn = _compile(tokens)
    return len({repr(fn(list(p))) for p in _PROBES}) == 1


def _random_list(rng: random.Random, low: int, high: int) -> list[int]:
    return [rng.randint(-9, 9) for _ in range(rng.randint(low, high))]


def make_task(
    tokens: Sequence[str],
    *,
    task_id: str,
    rng: random.Random,
    difficulty: int,
    examples_only: bool = False,
) -> Task:
    """Build one task from a pipeline (tokens), choosing its example and test inputs with ``rng``.

    Args:
        tokens: The reference pipeline as :data:`VOCAB` tokens.
        task_id: The task id.
        rng: Source of the test inputs (drawn from identically in both variants).
        difficulty: Stored in ``metadata["difficulty"]``.
        examples_only: Show only examples, :data:`NUM_VISIBLE_EXAMPLES_ONLY` of them (the plain two plus
            lists of 4-6 elements drawn with ``procedural.examples_rng``), and not the steps; the hidden
            tests are the plain variant's (one of them the empty list, which no example shows).

    Raises:
        ValueError: if ``tokens`` is not a complete body.
    """
    if not can_end(tokens):
        raise ValueError(f"listops: {task_id}: a body needs at least one step")
    reference = program_from_tokens(tokens)
    fn = _compile(tokens)
    visible_inputs = [_random_list(rng, 4, 6) for _ in range(NUM_VISIBLE)]
    # One hidden test is the empty list; the others vary in length, with repeats and negatives likely.
    hidden_inputs = [[]] + [_random_list(rng, 1, 8) for _ in range(NUM_HIDDEN - 1)]
    if examples_only:
        extra_rng = examples_rng(task_id)
        visible_inputs += [
            _random_list(extra_rng, 4, 6) for _ in range(NUM_VISIBLE_EXAMPLES_ONLY - NUM_VISIBLE)
        ]
    visible = tuple(CallTest(args=(xs,), expected=fn(list(xs))) for xs in visible_inputs)
    hidden = tuple(CallTest(args=(xs,), expected=fn(list(xs))) for xs in hidden_inputs)
    words = describe(tokens)
    examples = "\n".join(f"    f({t.args[0]!r}) == {t.expected!r}" for t in visible)
    if examples_only:
        prompt = (
            "Write f(xs) that takes a list of integers and applies a short pipeline of list steps (such as "
            "sorting, mapping, filtering, slicing or counting) that fits these examples; it is also tested "
            f"on other inputs.\nExamples:\n{examples}\n"
        )
    else:
        prompt = (
            "Write f(xs) that takes a list of integers and applies these steps in order: "
            f"{words}.\nExamples:\n{examples}\n"
        )
    return Task(
        task_id=task_id,
        prompt=prompt,
        entry_point=ENTRY_POINT,
        reference=reference,
        tests=hidden,
        visible_tests=visible,
        metadata=dsl_metadata(
            "listops",
            difficulty=difficulty,
            tokens=tokens,
            prefix=PROGRAM_PREFIX,
            suffix=PROGRAM_SUFFIX,
            steps=tuple(STEP_NAMES[t] for t in tokens),
            description=words,
            **({"examples_only": True} if examples_only else {}),
        ),
    )


def sample_body(rng: random.Random, level: int) -> list[str]:
    """Draw a random pipeline of ``level`` steps whose output depends on its input."""
    tokens = _random_pipeline(rng, level)
    while _is_constant(tokens):
        tokens = _random_pipeline(rng, level)
    return tokens


def load(
    n: int = 200, seed: int = 0, difficulty: int | Sequence[int] = 1, examples_only: bool = False
) -> TaskSuite:
    """Generate ``n`` list-pipeline tasks.

    Args:
        n: Number of tasks (any positive number; at difficulty 1 only 16 distinct pipelines exist, so
            bodies repeat with different test inputs).
        seed: Seed of the generator; the same ``(n, seed, difficulty)`` always gives the same suite.
        difficulty: Pipeline length 1-6, or a sequence of lengths to draw from uniformly per task.
        examples_only: Programming by example: prompts show only the signature and
            :data:`NUM_VISIBLE_EXAMPLES_ONLY` input/output examples, never the steps. Pipelines,
            references, hidden tests and splits are those of the plain suite; ids start with
            ``"listops-io/"`` instead of ``"listops/"``, and ``metadata["examples_only"]`` is ``True``.

    Raises:
        ValueError: for a bad ``n``, ``seed``, ``difficulty`` or ``examples_only``.
    """
    return generate(
        "listops",
        n=n,
        seed=seed,
        difficulty=difficulty,
        max_difficulty=MAX_DIFFICULTY,
        sample_body=sample_body,
        make_task=make_task,
        examples_only=examples_only,
    )
