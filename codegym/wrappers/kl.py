"""``KLRegularizer``: subtract beta times an estimate of KL(policy || reference) from the reward."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, SupportsFloat

import gymnasium as gym
from gymnasium.core import ActType, ObsType

from codegym.rlmath import KL_ESTIMATORS, AdaptiveKLController, FixedKLController, kl_estimate
from codegym.wrappers._common import add_components

LogProb = Callable[[Any, Any], float]
"""``logprob(obs, action) -> float``: log-probability of ``action`` (a token or a program) at ``obs``."""


class KLRegularizer(gym.Wrapper[ObsType, ActType, ObsType, ActType], gym.utils.RecordConstructorArgs):
    """Penalize each action by ``beta * KL estimate`` between the policy and a frozen reference.

    At every step, with ``logp = policy_logprob(obs, action)`` and ``logq = reference_logprob(obs,
    action)`` (``obs`` is the observation the action was taken at)::

        reward' = reward - beta * k(logp, logq)

    where ``k`` is one of the estimators of :mod:`codegym.rlmath` (``"k1"``: log p - log q, the
    per-token penalty of Ziegler et al. 2019 and PPOCoder; ``"k2"``; ``"k3"``: the GRPO one). On a token
    environment that is a per-token penalty whose sum over the episode estimates the sequence KL; on a
    program environment the log-probabilities are of the whole program, a per-sequence penalty.

    With ``target_kl`` set, beta adapts after every episode as in Ziegler et al. 2019 (see
    :class:`~codegym.rlmath.AdaptiveKLController`): ``e = clip(KL / target_kl - 1, -0.2, 0.2)``,
    ``beta <- beta * (1 + e * n / horizon)`` with ``KL`` the episode's summed estimate and ``n = 1``
    episode. Each wrapped environment has its own controller (``kl_controller``); a trainer that wants
    one beta per batch can drive :class:`~codegym.rlmath.AdaptiveKLController` itself and pass a fixed
    beta here, or set ``wrapper.kl_controller`` to a shared one.

    Info: ``kl`` (this step's estimate), ``beta`` (the beta applied), ``kl_penalty`` (= -beta * kl,
    also in ``reward_components``), and at the last step ``episode_kl`` (the sum over the episode).

    Args:
        env: The environment to wrap.
        policy_logprob: ``f(obs, action) -> float``, the log-probability under the policy being trained.
        reference_logprob: ``f(obs, action) -> float``, the log-probability under the frozen reference.
        beta: The (initial) coefficient, >= 0.
        estimator: ``"k1"``, ``"k2"`` or ``"k3"``.
        target_kl: Target episode KL in nats for the adaptive controller; None keeps beta fixed.
        horizon: The controller's horizon in episodes (Ziegler et al.: 10000).

    Raises:
        ValueError: for an unknown estimator, a negative beta, or bad controller settings (naming them).
    """

    def __init__(
        self,
        env: gym.Env[ObsType, ActType],
        policy_logprob: LogProb,
        reference_logprob: LogProb,
        beta: float = 0.1,
        estimator: str = "k1",
        target_kl: float | None = None,
        horizon: float = 10_000,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self,
            _disable_deepcopy=True,
            policy_logprob=policy_logprob,
            reference_logprob=reference_logprob,
            beta=beta,
            estimator=estimator,
            target_kl=target_kl,
            horizon=horizon,
        )
        gym.Wrapper.__init__(self, env)
        if estimator not in KL_ESTIMATORS:
            raise ValueError(
                f"KLRegularizer: unknown estimator {estimator!r}; expected one of {KL_ESTIMATORS}"
            )
        if not callable(policy_logprob) or not callable(reference_logprob):
            raise ValueError(
                "KLRegularizer: policy_logprob and reference_logprob must be callables (obs, action)"
            )
        if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta >= 0):
            raise ValueError(f"KLRegularizer: beta must be a finite number >= 0, got {beta!r}")
        self.policy_logprob = policy_logprob
        self.reference_logprob = reference_logprob
        self.estimator = estimator
        self.kl_controller: AdaptiveKLController | FixedKLController = (
            FixedKLController(float(beta))
            if target_kl is None
            else AdaptiveKLController(float(beta), float(target_kl), float(horizon))
        )
        self._obs: Any = None
        self._episode_kl = 0.0

    @property
    def beta(self) -> float:
        """The current KL coefficient."""
        return self.kl_controller.value

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Reset the environment; remember the observation the first action will be taken at."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._obs = obs
        self._episode_kl = 0.0
        return obs, info

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step and subtract ``beta * KL estimate`` of this action."""
        logp = float(self.policy_logprob(self._obs, action))
        logq = float(self.reference_logprob(self._obs, action))
        kl = float(kl_estimate(logp, logq, self.estimator))
        if not math.isfinite(kl):
            raise RuntimeError(
                f"KLRegularizer: non-finite KL estimate {kl!r} (policy logprob {logp!r}, reference {logq!r})"
            )
        obs, reward, terminated, truncated, info = self.env.step(action)
        beta = self.beta
        penalty = -beta * kl
        self._obs = obs
        self._episode_kl += kl
        extra: dict[str, Any] = {"kl": kl, "beta": beta, "kl_penalty": penalty}
        if terminated or truncated:
            extra["episode_kl"] = self._episode_kl
            self.kl_controller.update(self._episode_kl, 1)
        info = add_components(info, {"kl_penalty": penalty}, **extra)
        return obs, float(reward) + penalty, terminated, truncated, info
