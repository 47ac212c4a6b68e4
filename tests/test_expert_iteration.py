"""Expert iteration: the filter keeps exactly the passing samples, an iteration learns, resume is exact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import require

torch = require("torch", "train")
require("transformers", "train")

from codegym.agents.expert_iteration import (  # noqa: E402
    ExpertIteration,
    ExpertIterationConfig,
    select_passing,
)
from codegym.agents.policy import LMPolicy, SampleOutput  # noqa: E402
from codegym.agents.rollout import ProgramRollout, collect_programs  # noqa: E402
from codegym.agents.train import RunConfig, run_training  # noqa: E402

from tests.lm_fixtures import tiny_tokenizer  # noqa: E402
from tests.test_trainers import letters_envs, tiny_policy  # noqa: E402


def _rollout(texts: list[str], passed: list[bool] | None, rewards: list[float]) -> ProgramRollout:
    """A hand-built rollout: row i's completion is [10 + i] * (i + 1) followed by padding."""
    rows = len(texts)
    ids = torch.zeros((rows, rows), dtype=torch.long)
    mask = torch.zeros((rows, rows), dtype=torch.bool)
    for i in range(rows):
        ids[i, : i + 1] = 10 + i
        mask[i, : i + 1] = True
    sample = SampleOutput(
        texts=texts,
        prompt_index=[i // 3 for i in range(rows)],
        prompt_ids=[[1, i // 3] for i in range(rows)],
        completion_ids=ids,
        logprobs=torch.zeros((rows, rows)),
        mask=mask,
        finished=[True] * rows,
        temperature=1.0,
    )
    return ProgramRollout(
        sample=sample,
        rewards=np.asarray(rewards, dtype=np.float64),
        passed=None if passed is None else np.asarray(passed),
        prompts=["a", "b"],
        sample_s=0.0,
        env_s=0.0,
    )


def test_the_filter_keeps_exactly_the_passing_samples_without_duplicates():
    # Two tasks of three samples; task 0: rows 0 and 2 pass with the same text (one kept), task 1: rows 3, 5.
    rollout = _rollout(
        ["x", "y", "x", "p", "q", "r"], [True, False, True, True, False, True], [1, 0, 1, 1, 0, 1]
    )
    kept = select_passing(rollout, 3, max_per_task=4, group_offset=10)
    assert [(k.text, k.group) for k in kept] == [("x", 10), ("p", 11), ("r", 11)]
    assert kept[0].completion_ids == [10] and kept[0].prompt_ids == [1, 0]
    assert kept[2].completion_ids == [15] * 6  # the real tokens only, no padding
    assert [k.text for k in select_passing(rollout, 3, max_per_task=1)] == ["x", "p"]


def test_the_filter_uses_the_reward_threshold_when_the_env_reports_no_pass():
    rollout = _rollout(["a", "b", "c", "d", "e", "f"], None, [0.9, 1.0, 0.2, 1.5, 0.0, 0.99])
    assert [k.text for k in select_passing(rollout, 3, max_per_task=3)] == ["b", "d"]
    assert [k.text for k in select_passing(rollout, 3, max_per_task=3, reward_threshold=0.9)] == [
        "a",
        "b",
        "d",
        "f",
    ]


def test_one_iteration_raises_the_training_pass_rate_on_a_learnable_env():
    torch.manual_seed(0)
    policy = tiny_policy(tiny_tokenizer())
    envs = letters_envs(16)
    config = ExpertIterationConfig(
        group_size=4,
        rollouts_per_iteration=4,
        learning_rate=1e-2,
        sft_epochs=4,
        batch_size=16,
        max_new_tokens=8,
    )

    def pass_rate() -> float:  # the same 8 rollouts (same seeds) before and after
        rates = []
        for r in range(8):
            rollout = collect_programs(
                policy, envs, group_size=4, seed=10_000 + r, max_new_tokens=8, temperature=1.0, top_p=1.0
            )
            rates.append(rollout.passed.mean())
        return float(np.mean(rates))

    before_weights = [p.detach().clone() for p in policy.parameters()]
    before = pass_rate()
    metrics = ExpertIteration(policy, envs, config).train_step()
    after = pass_rate()
    assert metrics["rollout/kept"] > 0 and np.isfinite(metrics["losses/sft"])
    assert any(not torch.equal(a, b) for a, b in zip(before_weights, policy.parameters()))
    assert after > before + 0.1, (before, after)


def test_config_and_env_errors_name_the_problem():
    with pytest.raises(ValueError, match="max_per_task must be an int >= 1, got 0"):
        ExpertIterationConfig(max_per_task=0)
    with pytest.raises(ValueError, match="top_p must be in"):
        ExpertIterationConfig(top_p=0.0)
    policy = tiny_policy(tiny_tokenizer())
    with pytest.raises(ValueError, match="num_envs=6 is not a multiple of group_size=4"):
        ExpertIteration(policy, letters_envs(6), ExpertIterationConfig(group_size=4))


def test_a_killed_expert_iteration_run_resumes_exactly(tmp_path):
    """The default model on arith (it passes some tasks, so every iteration fine-tunes)."""
    run = RunConfig(
        env="codegym/Arith-Program-v0",
        algo="expert-iteration",
        num_envs=8,
        updates=4,
        eval_samples=0,
        checkpoint_every=2,
        device="cpu",
        suite_kwargs="n=200,seed=2,difficulty=1",
    )
    config = ExpertIterationConfig(
        group_size=4, rollouts_per_iteration=2, learning_rate=1e-3, max_new_tokens=24
    )
    start = LMPolicy.from_pretrained("default", device="cpu")
    straight_dir, history = run_training(
        RunConfig(**{**run.__dict__, "run_dir": str(tmp_path / "a")}), config, progress=False
    )
    assert sum(m["rollout/kept"] for m in history) > 0

    def kill_after_third(metrics):
        if metrics["update"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(
            RunConfig(**{**run.__dict__, "run_dir": str(tmp_path / "b")}),
            config,
            progress=False,
            on_update=kill_after_third,
        )
    (killed,) = list((tmp_path / "b").iterdir())
    resumed_dir, resumed = run_training(None, None, resume=killed, progress=False)
    drop = ("time/", "charts/completions")
    assert [{k: v for k, v in m.items() if not k.startswith(drop)} for m in resumed] == [
        {k: v for k, v in m.items() if not k.startswith(drop)} for m in history
    ]
    a = LMPolicy.from_pretrained(straight_dir.checkpoint_path, device="cpu")
    b = LMPolicy.from_pretrained(resumed_dir.checkpoint_path, device="cpu")
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert any(not torch.equal(x, y) for x, y in zip(a.parameters(), start.parameters()))
    config_json = json.loads((resumed_dir.path / "config.json").read_text())
    assert config_json["run"]["algo"] == "expert-iteration"
    assert not (resumed_dir.path / "reference").exists()  # no KL term, no reference saved


def test_suite_kwargs_text_parses_numbers_lists_and_booleans():
    from codegym.agents.train import parse_suite_kwargs

    assert parse_suite_kwargs("n=500,seed=1,difficulty=1;2;3,examples_only=true,x=0.5,name=a") == {
        "n": 500,
        "seed": 1,
        "difficulty": [1, 2, 3],
        "examples_only": True,
        "x": 0.5,
        "name": "a",
    }
