"""Reward functions: pure maps from (task, program, execution result) to a float.

See ``docs/rewards.md`` for the formulas, their sources and how to compose them.
"""

from codegym.rewards.base import RewardFunction, reward_breakdown, reward_name
from codegym.rewards.outcome import coderl_graded, compiles, pass_fail, pass_rate, rltf_adaptive

__all__ = [
    "RewardFunction",
    "coderl_graded",
    "compiles",
    "pass_fail",
    "pass_rate",
    "reward_breakdown",
    "reward_name",
    "rltf_adaptive",
]
