"""Stable-Baselines3: its env checker on the token ids, and MaskablePPO learning a fixed arith task."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import pytest
from codegym.envs import TokenEnv, env_ids
from conftest import require

import codegym  # noqa: F401

require("stable_baselines3", "sb3")
require("sb3_contrib", "sb3")
from stable_baselines3.common.env_checker import check_env as sb3_check_env  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sb3_arith_token.py"


@pytest.mark.parametrize("env_id", [i for i in env_ids() if i.endswith("-Token-v0")])
def test_sb3_check_env_on_token_ids(env_id):
    kwargs = (
        {"max_new_tokens": 32}
        if env_id.split("/")[1].startswith(("HumanEval", "Basic", "MBPP", "APPS"))
        else {}
    )
    env = gym.make(env_id, **kwargs).unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any SB3 compatibility warning fails the test
        sb3_check_env(env)
    env.close()


def test_sb3_check_env_on_dict_observation_with_mask():
    env = TokenEnv("arith", observation="dict")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env)
    env.close()


def test_program_ids_have_text_spaces_that_sb3_does_not_support():
    env = gym.make("codegym/Arith-Program-v0")
    assert isinstance(env.action_space, gym.spaces.Text)
    with pytest.raises(AssertionError):
        sb3_check_env(env.unwrapped)


def _example():
    spec = importlib.util.spec_from_file_location("sb3_arith_token", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def test_maskable_ppo_learns_a_fixed_arith_task():
    # About 13 s here (12,000 steps, ~2,400 executed programs): under the 20 s bar for the slow marker.
    report = _example().train(algo="maskable", timesteps=12_000, seed=0, eval_episodes=20)
    assert report.success_rate >= 0.9, report
    assert report.program.startswith("def f(x):\n    return ")
