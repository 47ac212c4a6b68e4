"""Vector environments (ours, batched; Gymnasium's Sync and Async) and the curriculum sampler."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from codegym.envs import CodeVectorEnv, CurriculumSampler, ProgramEnv, TokenEnv, UniformSampler
from codegym.envs.base import acquire_executor, release_executor
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import codegym


class CountingExecutor:
    """Wraps an executor and records every call, to check how a vector env executes."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[tuple[str, int]] = []

    def run(self, task, program):
        self.calls.append(("run", 1))
        return self.inner.run(task, program)

    def run_batch(self, items):
        self.calls.append(("run_batch", len(items)))
        return self.inner.run_batch(items)


@pytest.fixture(scope="module")
def executor():
    ex = acquire_executor()
    yield ex
    release_executor()


def _arith_task(i: int):
    return codegym.load_suite("arith")[i]


def test_make_vec_uses_the_batched_vector_env_and_one_run_batch(executor):
    counter = CountingExecutor(executor)
    envs = gym.make_vec("codegym/Arith-Program-v0", num_envs=4, executor=counter)
    assert isinstance(envs.unwrapped, CodeVectorEnv)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    task = _arith_task(3)
    obs, infos = envs.reset(seed=0, options={"task_id": task.task_id})  # a GRPO group: one task for all
    assert obs == (task.prompt,) * 4 and list(infos["task_id"]) == [task.task_id] * 4
    actions = (task.reference, "def f(x):\n    return x\n", task.reference, "def f(x) return\n")
    obs, rewards, terminations, truncations, infos = envs.step(actions)
    assert counter.calls == [("run_batch", 4)]
    assert rewards.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert terminations.all() and not truncations.any()
    assert list(infos["status"]) == ["passed", "failed", "passed", "syntax_error"]
    assert infos["_status"].all() and infos["result"][0].passed
    obs, rewards, terminations, _, infos = envs.step(actions)  # NEXT_STEP: this step resets
    assert counter.calls == [("run_batch", 4)] and rewards.tolist() == [0.0] * 4 and not terminations.any()
    envs.close()
    same_step = gym.make_vec(
        "codegym/Arith-Token-v0", num_envs=2, autoreset_mode="SameStep", executor=executor
    )
    assert same_step.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert isinstance(same_step.unwrapped.envs[0], TokenEnv)
    same_step.close()


def test_batched_vector_matches_sync_vector_env(executor):
    kwargs = {"suite": "arith", "executor": executor}
    ours = CodeVectorEnv([lambda: TokenEnv(**kwargs) for _ in range(3)])
    theirs = SyncVectorEnv([lambda: TokenEnv(**kwargs) for _ in range(3)])
    o1, i1 = ours.reset(seed=5)
    o2, i2 = theirs.reset(seed=5)
    np.testing.assert_array_equal(o1, o2)
    assert list(i1["task_id"]) == list(i2["task_id"])
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(80):
        actions = rng.integers(0, 17, size=3)
        a, b = ours.step(actions), theirs.step(actions)
        for x, y in zip(a[:4], b[:4]):
            np.testing.assert_array_equal(x, y)
        assert list(a[4].get("status", [])) == list(b[4].get("status", []))
        ended += int(a[2].sum() + a[3].sum())
    assert ended > 5
    ours.close()
    theirs.close()


def test_same_step_autoreset_reports_final_info(executor):
    task = _arith_task(0)
    envs = CodeVectorEnv(
        [lambda: ProgramEnv("arith", executor=executor) for _ in range(2)], autoreset_mode="SameStep"
    )
    envs.reset(seed=0, options={"task_id": task.task_id})
    obs, rewards, terminations, _, infos = envs.step((task.reference, "def f(x):\n    return 0\n"))
    assert rewards.tolist() == [1.0, 0.0] and terminations.all()
    assert list(infos["final_info"]["status"]) == ["passed", "failed"]  # merged per key, as SyncVectorEnv
    assert list(infos["final_obs"]) == [task.prompt, task.prompt]
    assert list(infos["task_id"]) == [envs.envs[0].task.task_id, envs.envs[1].task.task_id]  # the new tasks
    envs.close()


def test_reset_with_one_task_id_per_env(executor):
    ids = [_arith_task(i).task_id for i in (1, 1, 2, 2)]
    envs = gym.make_vec("codegym/Arith-Program-v0", num_envs=4, executor=executor)
    _, infos = envs.reset(seed=0, options={"task_id": ids})
    assert list(infos["task_id"]) == ids
    with pytest.raises(ValueError, match="3 task ids for 4 envs"):
        envs.reset(options={"task_id": ids[:3]})
    envs.close()


def test_reset_mask_and_wrapped_envs_rejected(executor):
    envs = CodeVectorEnv([lambda: TokenEnv("arith", executor=executor) for _ in range(2)])
    envs.reset(seed=0)
    envs.step(np.array([0, 0]))
    obs, _ = envs.reset(options={"reset_mask": np.array([True, False])})
    assert envs.envs[0]._n == 0 and envs.envs[1]._n == 1
    with pytest.raises(TypeError, match="not a CodeEnv"):
        CodeVectorEnv([lambda: gym.make("codegym/Arith-Token-v0")])
    envs.close()


@pytest.mark.parametrize("env_id", ["codegym/Arith-Program-v0", "codegym/ListOps-Token-v0"])
def test_gymnasium_sync_and_async_vector_envs(env_id):
    for mode in ("sync", "async"):
        envs = gym.make_vec(env_id, num_envs=2, vectorization_mode=mode)
        envs.action_space.seed(0)
        envs.reset(seed=0)
        done = 0
        for _ in range(12):
            _, rewards, terminations, truncations, infos = envs.step(envs.action_space.sample())
            done += int(terminations.sum() + truncations.sum())
            assert rewards.dtype == np.float64
        assert done > 0, mode
        envs.close()


def test_curriculum_sampler_promotes_on_success_only():
    sampler = CurriculumSampler("arith", tasks_per_level=20, window=4, promote_at=0.75, review=0.0)
    assert sampler.levels == (1, 2, 3, 4, 5) and sampler.level == 1
    rng = np.random.default_rng(0)
    for _ in range(8):
        sampler.update(sampler.sample(rng), passed=False)
    assert sampler.level == 1 and sampler.success_rate == 0.0
    for passed in (True, True, True, False):
        sampler.update(sampler.sample(rng), passed=passed)
    assert sampler.level == 2
    task = sampler.sample(rng)
    assert task.difficulty == 2 and task.metadata["split"] == "train"
    sampler.update(_arith_task(0), passed=True)  # a level-1 task no longer counts
    assert sampler.success_rate == 0.0
    demoting = CurriculumSampler(
        "listops", tasks_per_level=10, window=2, promote_at=0.9, demote_at=0.5, start_level=2
    )
    for _ in range(2):
        demoting.update(demoting.sample(rng), passed=False)
    assert demoting.level == 2 and demoting.levels == (1, 2, 3, 4, 5, 6)
    with pytest.raises(ValueError, match="promote_at must be in"):
        CurriculumSampler("arith", promote_at=1.5)
    with pytest.raises(ValueError, match="is empty"):
        UniformSampler([])


def test_curriculum_review_draws_earlier_levels():
    sampler = CurriculumSampler("arith", tasks_per_level=20, review=0.5, start_level=3)
    rng = np.random.default_rng(1)
    levels = [sampler.sample(rng).difficulty for _ in range(200)]
    assert set(levels) == {1, 2, 3, 4} and 60 < levels.count(4) < 140


def test_curriculum_in_a_token_env_raises_difficulty_as_the_agent_succeeds(executor):
    sampler = CurriculumSampler("arith", tasks_per_level=30, window=5, promote_at=0.8, review=0.0)
    env = TokenEnv("arith", sampler=sampler, executor=executor)
    assert env.max_new_tokens >= 2 * max(len(t.metadata["reference_tokens"]) for t in sampler.tasks)
    seen = []
    for episode in range(12):
        _, info = env.reset(seed=episode)
        seen.append(info["curriculum_level"])
        for token in env.task.metadata["reference_tokens"]:  # an oracle agent: always right
            env.step(env.tokenizer.tokens.index(token))
        assert env.step(env.eos_token_id)[1] == 1.0
    assert seen[:5] == [1] * 5 and seen[5:10] == [2] * 5 and seen[10] == 3
    env.close()
