"""``SparseReward``: hold back every reward until the episode ends."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
from gymnasium.core import ActType, ObsType


class SparseReward(gym.Wrapper[ObsType, ActType, ObsType, ActType], gym.utils.RecordConstructorArgs):
    """Deliver the whole episode's reward at its last step and 0.0 before.

    ``r'_t = 0`` for ``t < T`` and ``r'_T = sum_t r_t`` (undiscounted), where ``T`` is the step that
    ends the episode (``terminated`` or ``truncated``). The undiscounted return is unchanged; only the
    timing of the signal is. Useful on top of :class:`DenseReward`, :class:`PotentialShaping` or a
    multi-attempt repair environment to compare sparse and dense delivery of the same reward.

    Info: every step carries ``withheld_reward`` (the reward the wrapped env gave at this step); the last
    step carries ``episode_reward`` (what is delivered).

    Args:
        env: The environment to wrap.
    """

    def __init__(self, env: gym.Env[ObsType, ActType]) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self._accumulated = 0.0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Reset the environment and the accumulated reward."""
        self._accumulated = 0.0
        return self.env.reset(seed=seed, options=options)

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step, accumulate the reward, and release it when the episode ends."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._accumulated += float(reward)
        info = dict(info)
        info["withheld_reward"] = float(reward)
        if terminated or truncated:
            delivered, self._accumulated = self._accumulated, 0.0
            info["episode_reward"] = delivered
            return obs, delivered, terminated, truncated, info
        return obs, 0.0, terminated, truncated, info
