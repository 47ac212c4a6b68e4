"""Syntax and data-flow match agree with the codebleu package on real program pairs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from conftest import require

from codegym.rewards import codebleu_agreement, dataflow_match_score, syntax_match_score

require("codebleu", "rewards")

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
    # Same parser and extractor: syntax match agrees exactly; data flow differs only where codebleu's
    # hash-ordered edge sources differ from our first-occurrence order.
    assert stats["syntax_max_abs_diff"] == 0.0
    # The pairs are not degenerate: scores spread between 0 and 1.
    assert 0.2 < stats["syntax_mean"] < 0.95 and 0.2 < stats["dataflow_mean"] < 0.95


def test_renaming_keeps_scores_and_other_programs_lower_them() -> None:
    ref = "def total(xs):\n    s = 0\n    for x in xs:\n        s = s + x\n    return s\n"
    renamed = "def total(items):\n    acc = 0\n    for it in items:\n        acc = acc + it\n    return acc\n"
    other = "def total(xs):\n    return sum(xs)\n"
    assert syntax_match_score(ref, ref) == 1.0 and dataflow_match_score(ref, ref) == 1.0
    assert syntax_match_score(ref, renamed) == 1.0 and dataflow_match_score(ref, renamed) == 1.0
    assert syntax_match_score(ref, other) < 0.5 and dataflow_match_score(ref, other) < 0.5


def test_dataflow_match_does_not_depend_on_the_hash_seed() -> None:
    code = (
        "from codegym.rewards import dataflow_match_score as d\n"
        "ref = 'def total(xs):\\n    s = 0\\n    for x in xs:\\n        s = s + x\\n    return s\\n'\n"
        "ren = 'def total(v):\\n    a = 0\\n    for i in v:\\n        a = a + i\\n    return a\\n'\n"
        "print(d(ref, ren))\n"
    )
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        argv = [sys.executable, "-c", code]
        out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
        outputs.add(out.stdout.strip())
    assert outputs == {"1.0"}


def test_reference_without_dataflow_follows_codebleu_or_the_given_default() -> None:
    assert dataflow_match_score("pass\n", "x = 1\n") == 0.0
    assert dataflow_match_score("pass\n", "x = 1\n", empty=1.0) == 1.0
