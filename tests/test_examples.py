"""The course examples' quick modes (examples/*.py --quick) run, check their claims and save their plots.

Each runs as a subprocess with this interpreter, as a student would run it; the test asserts the exit
status (the example's own checks) and the lines that state what it shows. The examples' functions are
tested elsewhere: ``random_agent.run`` in test_envs.py, ``sb3_arith_token.train`` in test_sb3.py and
``reward_hacking``'s tables in test_rewards_e2e.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, out: Path, *args: str, timeout: float = 240) -> str:
    """Run ``examples/<name> --quick --out <out>``; return its stdout, failing with it on exit status != 0."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--quick", "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert out.exists() and out.stat().st_size > 0, f"{name} did not write {out}"
    return proc.stdout


def test_random_agent_quick(tmp_path):
    out = run_example("random_agent.py", tmp_path / "agents.png")
    assert "== verdict:" in out and "hand-written episode 0: reward 1.00" in out
    assert "check: the hand-written agent solves arith, plot written: OK" in out
    assert re.search(r"^hand-written +1\.000 +100% +passed 8$", out, re.M), out
    assert re.search(r"^random \(masked\) +0\.\d+ +\d+% +.*failed", out, re.M), out


@pytest.mark.slow
def test_sb3_masks_quick(tmp_path):
    require("stable_baselines3", "sb3")
    require("sb3_contrib", "sb3")
    out = run_example("sb3_arith_token.py", tmp_path / "sb3.png")
    assert "maskable: task arith/d1/s0/0" in out and "ppo: task arith/d1/s0/0" in out
    assert "checks: masks rule out syntax errors, plot written: OK" in out


@pytest.mark.slow
def test_reward_shaping_quick(tmp_path):
    require("sb3_contrib", "sb3")
    require("codebleu", "rewards")  # PrefixSyntaxMatch
    out = run_example("reward_shaping.py", tmp_path / "shaping.png")
    for mode in ("sparse", "dense", "potential"):
        assert f"\n{mode:10s}    0 " in out
    assert "checks: shaped returns match each wrapper's promise, curves complete, plot written: OK" in out
    data = json.loads((tmp_path / "shaping.json").read_text())
    assert {r["mode"] for r in data["runs"]} == {"sparse", "dense", "potential"}


@pytest.mark.slow
def test_llm_reward_hacking_quick(tmp_path):
    require("transformers", "train")
    out = run_example("llm_reward_hacking.py", tmp_path / "hacking.png")
    for name in ("hackable", "honest", "hackable + KL"):
        assert f"== {name} (reward" in out
    assert "checks: rewards as defined, verdicts consistent, curves complete, plot written: OK" in out
    data = json.loads((tmp_path / "hacking.json").read_text())
    assert [len(r["pass_rate"]) for r in data["runs"]] == [3, 3, 3]


@pytest.mark.slow
def test_ppo_vs_reinforce_quick(tmp_path):
    require("transformers", "train")
    out = run_example("ppo_vs_reinforce.py", tmp_path / "learners.png")
    for learner in ("PPO", "REINFORCE none", "REINFORCE moving_average", "REINFORCE rloo", "REINFORCE grpo"):
        assert f"  {learner:26s} " in out
    assert "checks: curves complete, variances finite, plot written: OK" in out
    data = json.loads((tmp_path / "learners.json").read_text())
    assert set(data["variance"]["stats"]) == {"none", "moving_average", "rloo", "grpo"}


@pytest.mark.slow
def test_rl_vs_search_quick(tmp_path):
    require("transformers", "train")
    out = run_example("rl_vs_search.py", tmp_path / "methods.png", timeout=600)
    for line in ("REINFORCE-GRPO", "expert iteration", "best-of-8, visible tests", "pass@8 (ceiling"):
        assert f"  {line}" in out
    assert "checks: budgets equal, pass rates in range, no reranker above pass@8, plot written: OK" in out
    data = json.loads((tmp_path / "methods.json").read_text())
    assert (
        data["budget"] == 256 and data["reinforce"]["executed"] == data["expert-iteration"]["executed"] == 256
    )
    assert data["best-of-n"]["lever"] <= data["best-of-n"]["pass_at_n"]
