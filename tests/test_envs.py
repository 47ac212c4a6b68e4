"""The Gymnasium environments: checkers on every id, determinism, pickling, errors, reference vs junk."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from codegym.envs import ProgramEnv, RepairEnv, TokenEnv, env_ids
from codegym.envs.base import acquire_executor, release_executor
from gymnasium.utils.env_checker import check_env

import codegym


@pytest.fixture(scope="module", autouse=True)
def shared_executor():
    """Hold one reference to the process's shared executor, so that every env in this module reuses it."""
    executor = acquire_executor()
    yield executor
    release_executor()


# Every id, none filtered out: each built-in suite loads offline (MBPP and APPS from their bundled
# samples), so a suite that stops loading fails its ids here instead of silently dropping them.
ALL_IDS = env_ids()


def test_every_kind_and_builtin_suite_is_registered():
    ids = set(env_ids())
    assert {i for i in gym.registry if i.startswith("codegym/")} >= ids
    for suite in ("HumanEval", "Basic", "Arith", "ListOps", "MBPP", "APPS"):
        for kind in ("Program", "Repair", "Token"):
            assert f"codegym/{suite}-{kind}-v0" in ids
    assert gym.spec("codegym/Arith-Token-v0").kwargs == {"suite": "arith"}


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_gymnasium_check_env(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped)
    env.close()


def test_check_env_dict_observations():
    for env in (
        TokenEnv("arith", observation="dict"),
        TokenEnv("listops", observation="dict"),
        ProgramEnv("arith", observation="dict"),
        TokenEnv("listops", sampler="curriculum"),
        RepairEnv("arith", reward_mode="improvement", completion=True),
    ):
        check_env(env)
        env.close()


def test_spaces_are_documented_shapes():
    env = gym.make("codegym/Arith-Token-v0")
    u = env.unwrapped
    assert env.action_space == gym.spaces.Discrete(17)  # 16 arith tokens + EOS
    assert u.eos_token_id == 16 and u.pad_token_id == 17
    assert env.observation_space.shape == (u.max_prompt_tokens + u.max_new_tokens,)
    assert np.all(env.observation_space.nvec == 18)
    obs, info = env.reset(seed=0)
    prompt = u.tokenizer.encode(u.task.metadata["expression"])
    assert u.prompt_ids.tolist() == prompt
    assert obs[u.max_prompt_tokens - len(prompt) : u.max_prompt_tokens].tolist() == prompt
    assert np.all(obs[: u.max_prompt_tokens - len(prompt)] == 17) and np.all(obs[u.max_prompt_tokens :] == 17)
    assert info["task_id"] == u.task.task_id
    program_env = gym.make("codegym/HumanEval-Program-v0")
    assert program_env.action_space.max_length == 8192 and program_env.action_space.min_length == 0
    longest = max(len(t.prompt) for t in codegym.load_suite("humaneval"))
    assert program_env.observation_space.max_length == longest
    obs, _ = program_env.reset(seed=0)
    assert obs == program_env.unwrapped.task.prompt


def test_data_path_kwarg_loads_mbpp_and_apps_files():
    data = Path(codegym.__file__).parent / "suites" / "data"
    for env_id, name in (
        ("codegym/MBPP-Program-v0", "mbpp_sample.jsonl"),
        ("codegym/APPS-Repair-v0", "apps_sample.jsonl"),
    ):
        env = gym.make(env_id, data_path=data / name)
        suite = codegym.load_suite(env_id.split("/")[1].split("-")[0].lower(), path=data / name)
        assert env.unwrapped.suite.task_ids == suite.task_ids
        env.reset(seed=0)
        obs, reward, *_ = env.step(env.unwrapped.task.reference)
        assert reward == 1.0
        env.close()
    with pytest.raises(codegym.TaskError, match="data file not found"):
        gym.make("codegym/MBPP-Program-v0", data_path=data / "missing.jsonl")


def test_reset_options_pick_the_task_and_seeds_repeat():
    env = gym.make("codegym/Arith-Program-v0")
    a = [env.reset(seed=s)[1]["task_id"] for s in range(5)]
    b = [env.reset(seed=s)[1]["task_id"] for s in range(5)]
    assert a == b and len(set(a)) > 1
    _, info = env.reset(seed=3, options={"task_id": "arith/d1/s0/7"})
    assert info["task_id"] == "arith/d1/s0/7" and env.unwrapped.task.task_id == "arith/d1/s0/7"
    fixed = gym.make("codegym/Arith-Program-v0", task_id="arith/d1/s0/9")
    assert {fixed.reset(seed=s)[1]["task_id"] for s in range(4)} == {"arith/d1/s0/9"}


def _rollout(env_id: str, seed: int, steps: int, **kwargs):
    env = gym.make(env_id, **kwargs)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    trace = [repr(obs)]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        trace.append((repr(obs), reward, terminated, truncated, info.get("status"), info.get("task_id")))
        if terminated or truncated:
            obs, info = env.reset()
            trace.append((repr(obs), info["task_id"]))
    env.close()
    return trace


def test_same_seed_rollouts_are_identical():
    for env_id, steps in (("codegym/Arith-Token-v0", 200), ("codegym/ListOps-Repair-v0", 12)):
        kwargs = {"max_program_chars": 40} if "Repair" in env_id else {}
        first = _rollout(env_id, 7, steps, **kwargs)
        assert first == _rollout(env_id, 7, steps, **kwargs)
        assert first != _rollout(env_id, 8, steps, **kwargs)


@pytest.mark.parametrize(
    "env_id,kwargs",
    [
        ("codegym/Arith-Token-v0", {}),
        ("codegym/ListOps-Token-v0", {"observation": "dict"}),
        ("codegym/HumanEval-Token-v0", {"max_new_tokens": 64}),
        ("codegym/Arith-Program-v0", {"max_program_chars": 64}),
        ("codegym/Basic-Repair-v0", {"max_program_chars": 64}),
    ],
)
def test_thousand_random_actions_never_crash(env_id, kwargs):
    env = gym.make(env_id, **kwargs)
    env.action_space.seed(0)
    env.reset(seed=0)
    episodes = 0
    for _ in range(1000):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs in env.observation_space
        assert isinstance(reward, float) and np.isfinite(reward)
        if terminated or truncated:
            assert info["status"] in codegym.execution.STATUSES
            episodes += 1
            env.reset()
    assert episodes > 0
    env.close()


def test_pickle_round_trip_mid_episode():
    env = TokenEnv("arith")
    env.reset(seed=4)
    env.step(0)  # "x"
    clone = pickle.loads(pickle.dumps(env))
    assert clone.current_text == env.current_text == "x"
    assert clone.task == env.task and clone.np_random.bit_generator.state == env.np_random.bit_generator.state
    for token in ("+", "3"):
        a = env.step(env.tokenizer.tokens.index(token))
        b = clone.step(clone.tokenizer.tokens.index(token))
        assert np.array_equal(a[0], b[0]) and a[1:4] == b[1:4]
    a, b = env.step(env.eos_token_id), clone.step(clone.eos_token_id)
    assert a[1:4] == b[1:4] and a[4]["result"] == b[4]["result"] and a[4]["status"] == b[4]["status"]
    assert env.reset(seed=1)[1] == clone.reset(seed=1)[1]
    env.close()
    clone.close()

    repair = RepairEnv("basic", max_attempts=2)
    repair.reset(seed=0)
    repair.step("def nothing(): pass\n")
    copy = pickle.loads(pickle.dumps(repair))
    assert copy.attempts == 1 and copy.task == repair.task
    expected = (1.0, True, False)
    assert copy.step(repair.task.reference)[1:4] == repair.step(repair.task.reference)[1:4] == expected


class _ForeignExecutor:
    """An executor that is not a codegym.Executor: it has run() but no configuration to travel with."""

    def run(self, task, program):
        raise AssertionError("not called")


def test_pickle_does_not_carry_a_live_executor():
    sentinel = _ForeignExecutor()
    env = ProgramEnv("arith", executor=sentinel)
    assert env.executor is sentinel
    clone = pickle.loads(pickle.dumps(env))
    assert clone._user_executor is None and clone._shared_executor is None


def test_pickle_recreates_a_user_executor_from_its_configuration():
    with codegym.Executor(timeout_s=2.0, cache=False, workers=1) as ex:
        env = ProgramEnv("arith", executor=ex, task_id="arith/d1/s0/0")
        clone = pickle.loads(pickle.dumps(env))
        assert clone.executor is not ex and clone.executor.limits == ex.limits
        assert clone.executor.cache_enabled is False and clone._owns_user_executor
        clone.reset(seed=0)
        assert clone.step(clone.task.reference)[1] == 1.0
        backend = clone.executor
        clone.close()
        assert backend._closed and not ex._closed  # the copy closes its own executor only


def test_bad_actions_and_misuse_raise_clear_errors():
    env = TokenEnv("arith")
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"token id 17 is out of range \[0, 17\)"):
        env.step(17)
    with pytest.raises(ValueError, match="out of range"):
        env.step(-1)
    with pytest.raises(TypeError, match="int token id"):
        env.step(1.5)
    with pytest.raises(TypeError, match="int token id"):
        env.step("x")
    env.step(np.int64(0))
    env.step(np.array(env.tokenizer.tokens.index("+")))
    assert env.current_text == "x+"
    with pytest.raises(KeyError, match="no task 'arith/nope'"):
        env.reset(options={"task_id": "arith/nope"})
    with pytest.raises(ValueError, match="unknown options"):
        env.reset(options={"task": "arith/d1/s0/0"})

    program = ProgramEnv("arith", max_program_chars=100)
    program.reset(seed=0)
    with pytest.raises(TypeError, match="program as a str, got bytes"):
        program.step(b"def f(x): return x")
    with pytest.raises(TypeError, match="got NoneType"):
        program.step(None)
    with pytest.raises(ValueError, match="101 characters exceeds max_program_chars=100"):
        program.step("x" * 101)
    with pytest.raises(ValueError, match="max_attempts must be an int >= 2"):
        RepairEnv("arith", max_attempts=1)
    with pytest.raises(ValueError, match="render_mode"):
        ProgramEnv("arith", render_mode="human")
    with pytest.raises(TypeError, match="reward_fn must be callable .* got str 'pass_fail'.*get_reward"):
        ProgramEnv("arith", reward_fn="pass_fail")
    with pytest.raises(TypeError, match=r"executor must have run\(task, program\).* got object"):
        ProgramEnv("arith", executor=object())


def test_step_after_done_raises():
    env = gym.make("codegym/Arith-Program-v0")
    env.reset(seed=0)
    _, _, terminated, truncated, _ = env.step("def f(x):\n    return x\n")
    assert terminated and not truncated
    with pytest.raises(RuntimeError, match="episode is over; call reset"):
        env.unwrapped.step("def f(x):\n    return x\n")
    token = TokenEnv("arith")
    token.reset(seed=0)
    token.step(token.eos_token_id)
    with pytest.raises(RuntimeError, match="episode is over"):
        token.step(0)


@pytest.mark.parametrize("suite", ["arith", "listops", "basic", "humaneval", "mbpp"])
def test_reference_earns_top_reward_and_junk_does_not(suite):
    tasks = codegym.load_suite(suite)
    env = ProgramEnv(suite)
    for task in list(tasks)[:3]:
        env.reset(options={"task_id": task.task_id})
        _, reward, terminated, _, info = env.step(task.reference)
        outcome = (reward, terminated, info["status"], info["pass_rate"])
        assert outcome == (1.0, True, "passed", 1.0), info["feedback"]
        assert info["reward_components"] == {"pass_fail": 1.0} and info["result"].passed
        for junk in ("def (:\n", "", "import sys\nsys.exit(0)\n"):
            env.reset(options={"task_id": task.task_id})
            _, reward, terminated, _, info = env.step(junk)
            assert reward == 0.0 and terminated and info["status"] != "passed"
    env.close()


def test_token_reference_earns_top_reward_and_junk_does_not():
    for suite in ("arith", "listops"):
        env = TokenEnv(suite)
        for task in list(codegym.load_suite(suite))[:5]:
            env.reset(options={"task_id": task.task_id})
            for token in task.metadata["reference_tokens"]:
                _, reward, terminated, truncated, info = env.step(env.tokenizer.tokens.index(token))
                assert (reward, terminated, truncated, info) == (0.0, False, False, {})
            _, reward, terminated, truncated, info = env.step(env.eos_token_id)
            assert (reward, terminated, truncated, info["status"]) == (1.0, True, False, "passed")
            assert env.current_program == task.reference
            env.reset(options={"task_id": task.task_id})
            _, reward, terminated, _, info = env.step(env.eos_token_id)  # empty body
            # A bare "return" (arith) and the identity pipeline (listops) run and fail the tests.
            assert reward == 0.0 and terminated and info["status"] == "failed"
        env.close()


def test_token_budget_truncates_and_executes():
    env = TokenEnv("arith", max_new_tokens=3, task_id="arith/d1/s0/0")  # x + 5
    env.reset(seed=0)
    x, plus, five = (env.tokenizer.tokens.index(t) for t in ("x", "+", "5"))
    assert env.step(x)[2:4] == (False, False)
    assert env.step(plus)[2:4] == (False, False)
    _, reward, terminated, truncated, info = env.step(five)
    outcome = (reward, terminated, truncated, info["status"], info["num_tokens"])
    assert outcome == (1.0, False, True, "passed", 3)


def test_repair_env_feedback_terminated_and_truncated():
    env = RepairEnv("arith", max_attempts=3, task_id="arith/d1/s0/0")
    obs, _ = env.reset(seed=0)
    assert obs["feedback"] == "" and obs["previous"] == "" and obs["prompt"] == env.task.prompt
    wrong = "def f(x):\n    return x\n"
    obs, reward, terminated, truncated, info = env.step(wrong)
    assert (reward, terminated, truncated, info["attempt"]) == (0.0, False, False, 1)
    assert obs["previous"] == wrong and obs["feedback"].startswith("attempt 1/3: failed, passed 0/6 tests")
    obs, reward, terminated, truncated, _ = env.step(env.task.reference)
    assert (reward, terminated, truncated) == (1.0, True, False)
    env.reset(seed=0)
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(wrong)
    assert (terminated, truncated, info["attempt"]) == (False, True, 3)
    assert obs["feedback"].startswith("attempt 3/3: failed, passed 0/6 tests")


def test_completion_mode_prepends_the_prompt():
    task = codegym.load_suite("humaneval")[0]
    env = ProgramEnv("humaneval", completion=True, task_id=task.task_id)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(task.reference[len(task.prompt) :])
    assert reward == 1.0 and env.last_program == task.reference


def test_render_ansi_shows_prompt_program_and_verdict():
    env = gym.make("codegym/Arith-Token-v0", render_mode="ansi", task_id="arith/d1/s0/0")
    env.reset(seed=0)
    before = env.render()
    assert "arith/d1/s0/0" in before and "Write f(x) that returns x + 5." in before
    assert "not executed" in before
    u = env.unwrapped
    for token in ("x", "+", "5"):
        env.step(u.tokenizer.tokens.index(token))
    env.step(u.eos_token_id)
    after = env.render()
    assert "def f(x):\n    return x+5" in after and "verdict: passed (6/6 tests)" in after


def test_custom_reward_function_and_breakdown():
    from codegym.rewards import coderl_graded

    env = ProgramEnv("arith", reward_fn=coderl_graded, task_id="arith/d1/s0/0")
    env.reset(seed=0)
    _, reward, _, _, info = env.step("def f(x) return x\n")
    assert reward == -1.0 and info["status"] == "syntax_error"
    assert list(info["reward_components"].values()) == [-1.0]
    env.reset(seed=0)
    assert env.step("def f(x):\n    return x\n")[1] == -0.3


def test_improvement_reward_mode_telescopes_to_the_last_attempt():
    from codegym.rewards import pass_rate

    env = RepairEnv("arith", task_id="arith/d1/s0/0", reward_fn=pass_rate, reward_mode="improvement")
    env.reset(seed=0)
    partial = "def f(x):\n    return x + 5 if x > 0 else 0\n"
    _, r1, *_, info1 = env.step(partial)
    assert 0.0 < info1["pass_rate"] < 1.0 and r1 == info1["pass_rate"]
    _, r2, *_, info2 = env.step("def f(x):\n    return 0\n")
    assert r2 == info2["pass_rate"] - info1["pass_rate"]
    _, r3, terminated, *_ = env.step(env.task.reference)
    assert terminated and r1 + r2 + r3 == pytest.approx(1.0)


def test_random_agent_example_runs(capsys):
    spec = importlib.util.spec_from_file_location(
        "random_agent", Path(__file__).parents[1] / "examples" / "random_agent.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    mean = module.run("codegym/ListOps-Token-v0", episodes=3, seed=0)
    assert 0.0 <= mean <= 1.0
    out = capsys.readouterr().out
    assert out.count("== verdict:") == 3 and "def f(xs):" in out
    assert (
        module.run("codegym/Arith-Program-v0", episodes=2, seed=0, verbose=False) == 0.0
    )  # "return x" is wrong


def test_split_selects_sampled_tasks_but_spaces_cover_the_whole_suite():
    suite = codegym.load_suite("basic")
    train, test = TokenEnv("basic", split="train"), TokenEnv("basic", split="test")
    assert train.observation_space == test.observation_space
    train_ids = {train.reset(seed=s)[1]["task_id"] for s in range(40)}
    assert train_ids <= set(suite.split("train").task_ids) and len(train_ids) > 10
    test_id = suite.split("test").task_ids[0]
    assert train.reset(options={"task_id": test_id})[1]["task_id"] == test_id  # options reach every task
    program_train = ProgramEnv("basic", split="train")
    assert program_train.observation_space == ProgramEnv("basic", split="test").observation_space


@pytest.mark.parametrize(
    "executor_kwargs,error,match",
    [
        ({"timeout": 2.0}, TypeError, "unknown argument 'timeout' \\(did you mean 'timeout_s'\\?\\)"),
        ({"timeout_s": -1}, ValueError, "timeout_s must be a number"),
        ({"backend": "nope"}, ValueError, "backend must be one of"),
        ({"workers": 0}, ValueError, "workers must be an int"),
    ],
)
def test_bad_executor_kwargs_fail_when_the_env_is_made(executor_kwargs, error, match):
    # Checked when the environment is made (no sandbox is started), not at its first step.
    with pytest.raises(error, match=match):
        ProgramEnv(suite="basic", executor_kwargs=executor_kwargs)
    env = ProgramEnv(suite="basic", executor_kwargs={"timeout_s": 2.0, "extra_zygotes": 0})
    env.close()
