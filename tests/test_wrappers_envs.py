"""Reward wrappers on the real CodeGym environments and executor: dense pieces, shaping, KL, check_env."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from codegym.envs import ProgramEnv, RepairEnv, TokenEnv
from conftest import require
from gymnasium.utils.env_checker import check_env

import codegym
from codegym.rewards import pass_fail, syntax_match_score
from codegym.tasks import Task
from codegym.wrappers import (
    DenseReward,
    KLRegularizer,
    PotentialShaping,
    PrefixSyntaxMatch,
    ScorerPotential,
    SparseReward,
)

TASK_ID = "basic/word_counts"
BODY_OK = "    counts = {}\n    for w in text.lower().split():\n        counts[w] = counts.get(w, 0) + 1\n"
BODY_END = "    return counts\n"


@pytest.fixture(scope="module")
def executor() -> Iterator[Any]:
    with codegym.Executor() as ex:
        yield ex


@pytest.fixture(scope="module")
def task() -> Task:
    return codegym.load_suite("basic").get(TASK_ID)


def _bytes(executor: Any) -> TokenEnv:
    return TokenEnv("basic", tokenizer="byte", executor=executor)


def _type(env: gym.Env, text: str) -> list[tuple[float, dict[str, Any]]]:
    """Feed ``text`` byte by byte to a byte-tokenizer TokenEnv; return (reward, info) of every step."""
    out = []
    for byte in text.encode():
        _, reward, terminated, truncated, info = env.step(byte)
        assert not (terminated or truncated)
        out.append((reward, info))
    return out


def test_dense_reward_scores_each_completed_line_of_a_token_env(executor: Any, task: Task) -> None:
    env = DenseReward(_bytes(executor), line_scorer="parses", line_scale=0.05)
    env.reset(options={"task_id": TASK_ID})
    steps = _type(env, BODY_OK)
    newline_steps = [i for i, ch in enumerate(BODY_OK) if ch == "\n"]
    for i, (reward, info) in enumerate(steps):
        expected = 0.05 if i in newline_steps else 0.0  # every line keeps the prefix viable
        assert reward == pytest.approx(expected), (i, BODY_OK[: i + 1])
        assert info["dense"]["line"] == pytest.approx(expected)
        assert info["reward_components"] == pytest.approx({"dense.line": expected})
    steps = _type(env, "    x = )\n")  # a definite syntax error
    assert steps[-1][0] == pytest.approx(-0.05)
    assert [r for r, _ in steps[:-1]] == [0.0] * (len(steps) - 1)


def test_dense_reward_with_a_custom_scorer_and_eos_runs_the_program(executor: Any, task: Task) -> None:
    seen: list[str] = []

    def scorer(t: Task, code: str) -> float:
        seen.append(code)
        return float(len(code.splitlines()))

    env = DenseReward(_bytes(executor), line_scorer=scorer, line_scale=0.5)
    env.reset(options={"task_id": TASK_ID})
    _type(env, BODY_OK + BODY_END)
    assert seen[0] == task.prompt + BODY_OK.splitlines(keepends=True)[0]
    assert seen[-1] == task.prompt + BODY_OK + BODY_END
    eos = env.unwrapped.eos_token_id
    _, reward, terminated, _, info = env.step(eos)
    assert terminated and info["status"] == "passed"
    # pass_fail (1.0) + tests piece (pass rate 0 -> 1) + no new line at EOS
    assert reward == pytest.approx(2.0)
    assert info["reward_components"] == pytest.approx(
        {"pass_fail": 1.0, "dense.line": 0.0, "dense.tests": 1.0}
    )


def test_dense_reward_gives_per_test_credit_on_repair_that_telescopes(executor: Any, task: Task) -> None:
    env = DenseReward(RepairEnv("basic", max_attempts=3, executor=executor), line_scorer=None, test_scale=1.0)
    env.reset(options={"task_id": TASK_ID})
    # Counts words without lower-casing: passes the tests whose input is already lower case.
    partial = task.prompt + BODY_OK.replace("text.lower()", "text") + BODY_END
    _, r1, _, _, info1 = env.step(partial)
    rate1 = info1["pass_rate"]
    assert 0.0 < rate1 < 1.0 and info1["status"] == "failed"
    assert info1["dense"] == pytest.approx({"line": 0.0, "tests": rate1})
    assert r1 == pytest.approx(info1["reward_components"]["pass_fail"] + rate1)
    _, r2, _, _, info2 = env.step("def word_counts(text):\n    return {}\n")  # worse: fewer tests pass
    assert info2["dense"]["tests"] == pytest.approx(info2["pass_rate"] - rate1)
    _, r3, terminated, _, info3 = env.step(task.reference)
    assert terminated and info3["dense"]["tests"] == pytest.approx(1.0 - info2["pass_rate"])
    total_tests = sum(i["dense"]["tests"] for i in (info1, info2, info3))
    assert total_tests == pytest.approx(1.0)  # telescopes to the final pass rate


def test_sparse_reward_over_dense_token_env_pays_the_sum_at_eos(executor: Any) -> None:
    env = SparseReward(DenseReward(_bytes(executor), line_scale=0.05))
    env.reset(options={"task_id": TASK_ID})
    steps = _type(env, BODY_OK + BODY_END)
    assert all(r == 0.0 for r, _ in steps)
    _, reward, terminated, _, info = env.step(env.unwrapped.eos_token_id)
    assert terminated
    n_lines = (BODY_OK + BODY_END).count("\n")
    assert reward == pytest.approx(0.05 * n_lines + 1.0 + 1.0)
    assert info["episode_reward"] == pytest.approx(reward)


def test_prefix_syntax_match_shaping_on_a_token_env(executor: Any, task: Task) -> None:
    env = PotentialShaping(_bytes(executor), PrefixSyntaxMatch(), gamma=1.0)
    _, info = env.reset(options={"task_id": TASK_ID})
    phi0 = syntax_match_score(task.reference, env.unwrapped.current_program)
    assert info["potential"] == pytest.approx(phi0)
    total_shaping = 0.0
    previous = phi0
    assert task.reference.startswith(task.prompt)
    for byte in task.reference[len(task.prompt) :].encode():
        _, reward, _, _, info = env.step(byte)
        phi = syntax_match_score(task.reference, env.unwrapped.current_program)
        assert reward == pytest.approx(phi - previous) and info["potential"] == pytest.approx(phi)
        previous = phi
        total_shaping += reward
    assert previous == pytest.approx(1.0)  # the program written is the reference
    _, reward, terminated, _, info = env.step(env.unwrapped.eos_token_id)
    assert terminated and info["potential"] == 0.0
    total_shaping += info["shaping"]
    assert reward == pytest.approx(1.0 + info["shaping"])
    assert total_shaping == pytest.approx(-phi0)  # gamma = 1: the shaping telescopes to -Phi(s0)


def test_kl_regularizer_per_token_on_a_token_env(executor: Any) -> None:
    # A policy that puts 0.5 on the next byte it wants and a uniform reference over 257 tokens.
    def policy_logprob(obs: np.ndarray, action: int) -> float:
        return math.log(0.5)

    def reference_logprob(obs: np.ndarray, action: int) -> float:
        return -math.log(257)

    env = KLRegularizer(_bytes(executor), policy_logprob, reference_logprob, 0.01)
    env.reset(options={"task_id": TASK_ID})
    kl = math.log(0.5) + math.log(257)
    for byte in BODY_END.encode():
        _, reward, _, _, info = env.step(byte)
        assert reward == pytest.approx(-0.01 * kl) and info["kl"] == pytest.approx(kl)
    _, reward, _, _, info = env.step(env.unwrapped.eos_token_id)
    assert info["episode_kl"] == pytest.approx(kl * (len(BODY_END) + 1))
    assert reward == pytest.approx(info["reward_components"]["pass_fail"] - 0.01 * kl)


def test_kl_regularizer_per_program_with_adaptive_beta(executor: Any, task: Task) -> None:
    logp = {task.reference: math.log(0.9)}
    env = KLRegularizer(
        ProgramEnv("basic", executor=executor),
        policy_logprob=lambda obs, program: logp.get(program, math.log(0.1)),
        reference_logprob=lambda obs, program: math.log(0.3),
        beta=0.2,
        target_kl=0.5,
        horizon=4,
    )
    env.reset(options={"task_id": TASK_ID})
    _, reward, _, _, info = env.step(task.reference)
    kl = math.log(0.9 / 0.3)
    assert reward == pytest.approx(1.0 - 0.2 * kl)
    assert env.beta == pytest.approx(0.2 * (1 + 0.2 / 4))  # KL 1.10 > target: error clipped to +0.2


def _check(env: gym.Env) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    messages = [str(w.message) for w in caught]
    assert all("different from the unwrapped" in m for m in messages), messages


@pytest.mark.parametrize("kind", ["program", "repair", "token"])
def test_wrapped_code_envs_pass_check_env(executor: Any, kind: str) -> None:
    def make() -> gym.Env:
        if kind == "program":
            return ProgramEnv("basic", executor=executor, reward_fn=pass_fail)
        if kind == "repair":
            return RepairEnv("basic", executor=executor)
        return TokenEnv("arith", executor=executor)

    _check(DenseReward(make()))
    _check(SparseReward(make()))
    _check(PotentialShaping(make(), ScorerPotential(lambda t, code: len(code) / 100.0), gamma=0.99))
    _check(KLRegularizer(make(), lambda o, a: -1.0, lambda o, a: -2.0, beta=0.1, estimator="k3"))


def test_wrapped_token_env_passes_sb3_check_env_and_runs_in_a_sync_vector_env(executor: Any) -> None:
    sb3_env_checker = require("stable_baselines3.common.env_checker", "sb3")

    def make() -> gym.Env:
        env = TokenEnv("arith", executor=executor)
        env = PotentialShaping(
            DenseReward(env), ScorerPotential(lambda t, code: len(code) / 100.0), gamma=0.99
        )
        return KLRegularizer(env, lambda o, a: -1.0, lambda o, a: -1.5, beta=0.1, estimator="k3")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # SB3 notes the MultiDiscrete observation's size
        sb3_env_checker.check_env(make(), warn=False)
    vec = gym.vector.SyncVectorEnv([make, make])
    vec.reset(seed=0)
    vec.action_space.seed(0)
    kl = math.exp(-0.5) - 1 + 0.5  # k3 with log_ratio = -1.5 - (-1.0)
    total = np.zeros(2)
    for _ in range(vec.single_action_space.n * 4):
        _, rewards, terminated, truncated, infos = vec.step(vec.action_space.sample())
        total += rewards
        stepped = infos["_kl"]  # an env autoresetting this step has no kl
        assert np.allclose(infos["kl"][stepped], kl)
        if (terminated | truncated).all():
            break
    assert np.isfinite(total).all()
    vec.close()


def test_wrapped_envs_pickle_with_ready_scorers_and_potentials() -> None:
    import pickle

    for wrapped in (
        DenseReward(TokenEnv("arith"), line_scorer="compiles"),
        SparseReward(ProgramEnv("basic")),
        PotentialShaping(TokenEnv("arith"), PrefixSyntaxMatch(scale=2.0), gamma=0.9),
    ):
        obs, _ = wrapped.reset(seed=3)
        copy = pickle.loads(pickle.dumps(wrapped))
        obs2, _ = copy.reset(seed=3)
        assert np.array_equal(np.asarray(obs), np.asarray(obs2))
        assert type(copy) is type(wrapped) and copy.unwrapped is not wrapped.unwrapped
        wrapped.close()
        copy.close()
