"""``PotentialShaping``: potential-based reward shaping (Ng, Harada and Russell 1999) and potentials."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, SupportsFloat

import gymnasium as gym
from gymnasium.core import ActType, ObsType

from codegym.tasks import Task
from codegym.wrappers._common import add_components, current_code

Potential = Callable[[gym.Env, Any], float]
"""``potential(env, obs) -> float``: Phi of the state the (unwrapped) environment is in, seen as ``obs``."""


class PrefixSyntaxMatch:
    """Potential: CodeBLEU syntax match of the code so far against ``task.reference``, times ``scale``.

    On a token environment the code is the program written so far (prefix + body + suffix); on a
    program or repair environment it is the last program executed ("" before the first attempt).
    Needs the ``rewards`` extra (tree-sitter).

    Args:
        scale: Multiplies the match (in [0, 1]), so Phi is in [0, scale].
    """

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = float(scale)

    def __call__(self, env: gym.Env, obs: Any) -> float:
        """Phi(s) = scale * syntax_match(reference, code so far)."""
        from codegym.rewards.similarity import syntax_match_score

        task: Task | None = getattr(env.unwrapped, "task", None)
        if task is None or not task.reference.strip():
            return 0.0
        return self.scale * syntax_match_score(task.reference, current_code(env))

    def __repr__(self) -> str:
        return f"PrefixSyntaxMatch(scale={self.scale:g})"


class ScorerPotential:
    """Potential from a supplied scorer of the code so far: ``Phi(s) = scale * scorer(task, code)``.

    ``scorer`` can be a value model, a process reward model or any heuristic; potential-based shaping
    keeps the optimal policy whatever it returns (as long as it is a function of the state).

    Args:
        scorer: ``scorer(task, code) -> float`` for the code written so far.
        scale: Multiplies the score.

    Raises:
        ValueError: if ``scorer`` is not callable.
    """

    def __init__(self, scorer: Callable[[Task, str], float], scale: float = 1.0) -> None:
        if not callable(scorer):
            raise ValueError(f"ScorerPotential needs a callable scorer(task, code), got {scorer!r:.80}")
        self.scorer = scorer
        self.scale = float(scale)

    def __call__(self, env: gym.Env, obs: Any) -> float:
        """Phi(s) = scale * scorer(task, code so far)."""
        task = getattr(env.unwrapped, "task", None)
        if task is None:
            return 0.0
        return self.scale * float(self.scorer(task, current_code(env)))


class PotentialShaping(gym.Wrapper[ObsType, ActType, ObsType, ActType], gym.utils.RecordConstructorArgs):
    """Add ``F(s, s') = gamma * Phi(s') - Phi(s)`` to every reward (Ng et al. 1999).

    ``Phi(s') = 0`` when ``s'`` is terminal (``terminated``), so over any terminated episode the shaping
    terms sum (discounted by ``gamma``) to ``-Phi(s_0)``, a constant of the start state: the optimal
    policy of the shaped problem is the optimal policy of the original one, for every potential. (A
    truncated episode keeps ``Phi(s')``, since its last state is not terminal.) Use the same ``gamma``
    as the learner's discount.

    Info: ``shaping`` (F of this step) and ``potential`` (Phi(s')), and ``reward_components["shaping"]``.

    Args:
        env: The environment to wrap.
        potential: ``potential(env, obs) -> float`` called with the unwrapped environment after each
            reset and step; :class:`PrefixSyntaxMatch` and :class:`ScorerPotential` are ready ones.
        gamma: The discount factor in [0, 1].

    Raises:
        ValueError: for a gamma outside [0, 1] or a non-callable potential; RuntimeError when the
            potential returns a non-finite value (naming it).
    """

    def __init__(self, env: gym.Env[ObsType, ActType], potential: Potential, gamma: float = 0.99) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, _disable_deepcopy=True, potential=potential, gamma=gamma
        )
        gym.Wrapper.__init__(self, env)
        if not callable(potential):
            raise ValueError(
                f"PotentialShaping: potential must be callable (env, obs) -> float, got {potential!r}"
            )
        if not (isinstance(gamma, (int, float)) and 0.0 <= gamma <= 1.0):
            raise ValueError(f"PotentialShaping: gamma must be in [0, 1], got {gamma!r}")
        self.potential = potential
        self.gamma = float(gamma)
        self._phi = 0.0

    def _evaluate(self, obs: Any) -> float:
        value = float(self.potential(self.env.unwrapped, obs))
        if not math.isfinite(value):
            raise RuntimeError(f"PotentialShaping: potential {self.potential!r} returned {value!r}")
        return value

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Reset the environment and evaluate Phi at the start state."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._phi = self._evaluate(obs)
        info = dict(info)
        info["potential"] = self._phi
        return obs, info

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step and add the shaping term."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        phi_next = 0.0 if terminated else self._evaluate(obs)
        shaping = self.gamma * phi_next - self._phi
        self._phi = phi_next
        info = add_components(info, {"shaping": shaping}, shaping=shaping, potential=phi_next)
        return obs, float(reward) + shaping, terminated, truncated, info
