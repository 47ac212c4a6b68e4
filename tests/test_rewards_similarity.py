"""Syntax and data-flow match agree with the codebleu package on real program pairs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from codegym.rewards import codebleu_agreement, dataflow_match_score, syntax_match_score

pytest.importorskip("codebleu")

_BENCH = Path(__file__).resolve().parents[1] / "bench" / "codebleu_agreement.py"


def _make_pairs(n_tasks: int) -> list[tuple[str, str]]:
    spec = importlib.util.spec_from_file_location("codebleu_agreement_bench", _BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_pairs(n_tasks)


def test_agreement_with_codebleu_on_at_least_50_pairs() -> None:
    pairs = _make_pairs(14)  # 70 pairs: self, renamed, line dropped, half, another task
    assert len(pairs) >= 50
    stats = codebleu_agreement(pairs)
    print(stats)
    assert stats["syntax_mean_abs_diff"] <= 0.05
    assert stats["dataflow_mean_abs_diff"] <= 0.05
    # The implementation reuses codebleu's parser and extractor, so it agrees exactly.
    assert stats["syntax_max_abs_diff"] == 0.0 and stats["dataflow_max_abs_diff"] == 0.0
    # The pairs are not degenerate: scores spread between 0 and 1.
    assert 0.2 < stats["syntax_mean"] < 0.95 and 0.2 < stats["dataflow_mean"] < 0.95


def test_renaming_keeps_scores_and_other_programs_lower_them() -> None:
    pairs = _make_pairs(3)
    ref, same = pairs[0]
    _, renamed = pairs[1]
    _, other = pairs[4]
    assert ref == same
    assert syntax_match_score(ref, ref) == 1.0 and dataflow_match_score(ref, ref) == 1.0
    assert dataflow_match_score(ref, renamed) == 1.0
    assert syntax_match_score(ref, other) < 0.9


def test_reference_without_dataflow_follows_codebleu_or_the_given_default() -> None:
    assert dataflow_match_score("pass\n", "x = 1\n") == 0.0
    assert dataflow_match_score("pass\n", "x = 1\n", empty=1.0) == 1.0
