"""Similarity to the reference solution: CodeBLEU's syntax match and data-flow match, and PPOCoder's reward.

The two scores follow CodeBLEU (Ren et al. 2020, section 3.2-3.3) as the ``codebleu`` 0.7.0 package
computes them for one (reference, candidate) pair, using its tree-sitter parser and its Python data-flow
extractor. The bookkeeping is ours: set look-ups instead of list scans, parses cached per program text
(in RL one reference meets thousands of candidates), and one deliberate difference: codebleu orders the
sources of a data-flow edge by string hash, so its data-flow score changes with ``PYTHONHASHSEED``
and with variable renaming; ours orders them by first occurrence, which makes the reward deterministic
and rename-invariant. Syntax match agrees exactly; data-flow match agrees wherever codebleu's order
happens to match ours.
``bench/codebleu_agreement.py`` and ``tests/test_rewards_similarity.py`` check the agreement with
``codebleu.syntax_match.corpus_syntax_match`` and ``codebleu.dataflow_match.corpus_dataflow_match``.

Both need the ``rewards`` extra (``pip install codegym[rewards]``: codebleu 0.7.0, tree-sitter 0.22.3,
tree-sitter-python 0.21.0).
"""

from __future__ import annotations

import threading
from collections import Counter
from functools import lru_cache
from typing import Any

from codegym.execution.result import ExecutionResult
from codegym.rewards.base import check_reward_args
from codegym.rewards.compose import WeightedSum
from codegym.rewards.outcome import compiles
from codegym.tasks import Task

_LOCAL = threading.local()
_INSTALL_HINT = (
    "syntax_match and dataflow_match need the 'rewards' extra: pip install 'codegym[rewards]' "
    "(codebleu==0.7.0, tree-sitter==0.22.3, tree-sitter-python==0.21.0)"
)


def _parser() -> Any:
    """A tree-sitter parser for Python, one per thread (tree-sitter parsers are not thread-safe)."""
    parser = getattr(_LOCAL, "parser", None)
    if parser is None:
        try:
            from codebleu.utils import get_tree_sitter_language
            from tree_sitter import Parser
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ImportError(_INSTALL_HINT) from exc
        parser = Parser()
        parser.language = get_tree_sitter_language("python")
        _LOCAL.parser = parser
    return parser


def _strip_comments(code: str) -> str:
    from codebleu.parser import remove_comments_and_docstrings

    try:
        return remove_comments_and_docstrings(code, "python")
    except Exception:  # codebleu keeps the text as is when its tokenizer fails
        return code


@lru_cache(maxsize=4096)
def subtrees(code: str) -> tuple[str, ...]:
    """All subtrees of ``code``'s tree-sitter AST with at least one child, as S-expressions, root first.

    Comments and docstrings are removed first. This is CodeBLEU's ``get_all_sub_trees``: leaves (names,
    literals) are not subtrees of their own, and S-expressions carry node types but no identifiers, so
    renaming variables does not change the result.
    """
    root = _parser().parse(_strip_comments(code).encode("utf8")).root_node
    out: list[str] = []
    stack = [root]
    while stack:
        node = stack.pop()
        out.append(str(node))
        stack.extend(child for child in node.children if child.child_count)
    return tuple(out)


def syntax_match_score(reference: str, candidate: str) -> float:
    """CodeBLEU's syntax match: the fraction of the reference's subtrees that occur in the candidate.

    ``match = |{t in subtrees(ref) : t in subtrees(cand)}| / |subtrees(ref)|`` (counted with the
    reference's multiplicity, as codebleu does). In [0, 1]; 1.0 for identical programs.

    Args:
        reference: The reference program's source.
        candidate: The candidate program's source.

    Returns:
        The match in [0, 1].
    """
    ref = subtrees(reference)
    cand = set(subtrees(candidate))
    return sum(1 for t in ref if t in cand) / len(ref)


def _raw_dataflow(code: str) -> list[tuple[str, int, str, list[str]]]:
    """CodeBLEU's data-flow extraction (``get_data_flow``) with a deterministic order of source names.

    codebleu builds each edge's source list with ``list(set(...))``, so the order of source names, and
    through the renaming below the score, depends on ``PYTHONHASHSEED``: the same pair can score
    differently in two processes. Here every source list is ordered by where each name first occurs in
    the data-flow graph (ties by name), which is deterministic and unchanged by renaming variables.
    """
    from codebleu.parser import DFG_python, index_to_code_token, tree_to_token_index

    try:
        root = _parser().parse(code.encode("utf8")).root_node
        tokens_index = tree_to_token_index(root)
        lines = code.split("\n")
        index_to_code = {
            index: (i, index_to_code_token(index, lines)) for i, index in enumerate(tokens_index)
        }
        try:
            dfg, _ = DFG_python(root, index_to_code, {})
        except Exception:  # codebleu's extractor fails on some partial trees; it then has no data flow
            dfg = []
    except Exception:
        dfg = []
    dfg = sorted(dfg, key=lambda d: d[1])
    linked: set[int] = set()
    for d in dfg:
        if d[-1]:
            linked.add(d[1])
        linked.update(d[-1])
    first_seen: dict[str, int] = {}
    for d in dfg:
        first_seen.setdefault(d[0], d[1])
    merged: dict[int, tuple[str, int, str, list[str]]] = {}
    for d in dfg:
        if d[1] not in linked:
            continue
        names = list(d[3]) if d[1] not in merged else merged[d[1]][3] + list(d[3])
        merged.setdefault(d[1], (d[0], d[1], d[2], []))
        var, pos, rel, _ = merged[d[1]]
        unique = sorted(dict.fromkeys(names), key=lambda n: (first_seen.get(n, 1 << 60), n))
        merged[d[1]] = (var, pos, rel, unique)
    return list(merged.values())


@lru_cache(maxsize=4096)
def dataflow_edges(code: str) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """The data-flow graph of ``code`` as CodeBLEU extracts it, with variables renamed in order of use.

    Each edge is ``(variable, relation, (source variables...))`` with relation ``"computedFrom"`` or
    ``"comesFrom"``; names become ``var_0, var_1, ...`` in order of first appearance, so consistent
    renaming of variables leaves the graph unchanged. Comments and docstrings are removed first.
    """
    renamed: dict[str, str] = {}
    edges = []
    for var, _, rel, sources in _raw_dataflow(_strip_comments(code)):
        for name in (*sources, var):
            renamed.setdefault(name, f"var_{len(renamed)}")
        edges.append((renamed[var], rel, tuple(renamed[n] for n in sources)))
    return tuple(edges)


def dataflow_match_score(reference: str, candidate: str, empty: float = 0.0) -> float:
    """CodeBLEU's data-flow match: the fraction of the reference's data-flow edges matched in the candidate.

    Edges are matched one-to-one (a candidate edge is used at most once). When the reference has no
    data-flow edge at all the score is undefined; codebleu returns 0 there, and so does this function
    unless ``empty`` says otherwise.

    Args:
        reference: The reference program's source.
        candidate: The candidate program's source.
        empty: The score when the reference has no data-flow edge.

    Returns:
        The match in [0, 1] (or ``empty``).
    """
    ref = dataflow_edges(reference)
    if not ref:
        return empty
    available = Counter(dataflow_edges(candidate))
    matched = 0
    for edge in ref:
        if available[edge] > 0:
            available[edge] -= 1
            matched += 1
    return matched / len(ref)


def _reference(task: Task) -> str:
    if not task.reference.strip():
        raise ValueError(f"task {task.task_id}: has no reference program to compare with")
    return task.reference


def syntax_match(task: Task, program: str, result: ExecutionResult) -> float:
    """PPOCoder's syntactic matching reward: CodeBLEU syntax match of ``program`` against ``task.reference``.

    Formula (Ren et al. 2020, eq. 4): ``Match_ast = Count_clip(T_cand) / Count(T_ref)``, the fraction of
    the reference's AST subtrees (tree-sitter, comments and docstrings removed, identifiers ignored) that
    the candidate contains. In [0, 1]; independent of ``result``.

    Args:
        task: The task; ``task.reference`` is the program compared with.
        program: The candidate program.
        result: Its execution result (unused).

    Returns:
        The match in [0, 1].
    """
    check_reward_args("syntax_match", task=task, program=program)
    return syntax_match_score(_reference(task), program)


def dataflow_match(task: Task, program: str, result: ExecutionResult) -> float:
    """PPOCoder's semantic matching reward: CodeBLEU data-flow match of ``program`` against the reference.

    Formula (Ren et al. 2020, eq. 5): ``Match_df = Count_clip(DF_cand) / Count(DF_ref)``, the fraction of
    the reference's data-flow edges (after renaming variables in order of use) found in the candidate.
    0.0 when the reference has no data flow (codebleu's convention). Independent of ``result``.

    Args:
        task: The task; ``task.reference`` is the program compared with.
        program: The candidate program.
        result: Its execution result (unused).

    Returns:
        The match in [0, 1].
    """
    check_reward_args("dataflow_match", task=task, program=program)
    return dataflow_match_score(_reference(task), program)


def ppocoder_reward(
    compile_weight: float = 1.0,
    syntax_weight: float = 1.0,
    dataflow_weight: float = 1.0,
    execution: Any = compiles,
    name: str = "ppocoder",
) -> WeightedSum:
    """Build PPOCoder's reward (Shojaee et al. 2023, eq. 2) with configurable weights.

    ``R = w_cs * R_cs + w_ast * syntax_match + w_dfg * dataflow_match``, where the compiler signal
    ``R_cs`` is :func:`~codegym.rewards.compiles` (+1 / -1) by default; PPOCoder uses the graded
    unit-test signal (:func:`~codegym.rewards.coderl_graded`) where tests exist, which ``execution=``
    selects. PPOCoder's KL term is delivered by the :class:`~codegym.wrappers.KLRegularizer` wrapper.

    Returns:
        A :class:`~codegym.rewards.WeightedSum` whose components are named ``compiles`` (or the
        execution reward's name), ``syntax_match`` and ``dataflow_match``.
    """
    return WeightedSum(
        [(execution, compile_weight), (syntax_match, syntax_weight), (dataflow_match, dataflow_weight)],
        name=name,
    )


ppocoder = ppocoder_reward()
"""PPOCoder's reward with unit weights: ``compiles + syntax_match + dataflow_match``, in [-1, 3]."""


def codebleu_agreement(pairs: list[tuple[str, str]]) -> dict[str, float]:
    """Compare :func:`syntax_match_score` and :func:`dataflow_match_score` with the codebleu package.

    For every ``(reference, candidate)`` pair, codebleu's ``corpus_syntax_match`` and
    ``corpus_dataflow_match`` are called on that single pair and compared with ours.

    Returns:
        ``{"pairs", "syntax_mean_abs_diff", "syntax_max_abs_diff", "dataflow_mean_abs_diff",
        "dataflow_max_abs_diff", "syntax_mean", "dataflow_mean"}``.
    """
    import logging

    from codebleu.dataflow_match import corpus_dataflow_match
    from codebleu.syntax_match import corpus_syntax_match

    if not pairs:
        raise ValueError("codebleu_agreement needs at least one (reference, candidate) pair")
    syn_diffs, dfg_diffs, syn_vals, dfg_vals = [], [], [], []
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # codebleu warns on every reference without data flow
    try:
        for reference, candidate in pairs:
            ours_syn = syntax_match_score(reference, candidate)
            ours_dfg = dataflow_match_score(reference, candidate)
            syn_diffs.append(abs(ours_syn - corpus_syntax_match([[reference]], [candidate], "python")))
            dfg_diffs.append(abs(ours_dfg - corpus_dataflow_match([[reference]], [candidate], "python")))
            syn_vals.append(ours_syn)
            dfg_vals.append(ours_dfg)
    finally:
        logger.setLevel(level)
    n = len(pairs)
    return {
        "pairs": float(n),
        "syntax_mean_abs_diff": sum(syn_diffs) / n,
        "syntax_max_abs_diff": max(syn_diffs),
        "dataflow_mean_abs_diff": sum(dfg_diffs) / n,
        "dataflow_max_abs_diff": max(dfg_diffs),
        "syntax_mean": sum(syn_vals) / n,
        "dataflow_mean": sum(dfg_vals) / n,
    }
