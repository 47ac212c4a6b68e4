"""The RL math shared by reward wrappers and trainers: KL estimators, KL controllers, returns, GAE, baselines.

Every function accepts numpy arrays (or Python floats and lists) and torch tensors, and returns the same
kind it was given: torch in, torch out (same device and dtype, differentiable where the formula is);
anything else in, numpy out. torch is never imported by this module; a tensor is recognised by its type.

KL estimators (J. Schulman, "Approximating KL Divergence", 2020). With samples ``x ~ p`` (the policy),
``logp = log p(x)``, ``logq = log q(x)`` (the reference) and ``log_ratio = logq - logp``:

* ``k1 = -log_ratio``: unbiased for KL(p || q); high variance; negative for some samples.
* ``k2 = log_ratio**2 / 2``: biased (its mean is a second-order approximation of the KL, exact to
  O(ratio - 1)^3); low variance; never negative.
* ``k3 = (exp(log_ratio) - 1) - log_ratio``: unbiased (``E_p[q/p - 1] = 0``) and never negative, since
  ``e^u - 1 >= u``. This is the per-token KL of GRPO (Shao et al. 2024) and of TRL's GRPOTrainer.

Summed over the tokens of a sampled sequence, k1 and k3 are unbiased for the sequence-level KL.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np

Array = TypeVar("Array")
"""A numpy array or a torch tensor; functions return the kind they were given."""

KLEstimator = Literal["k1", "k2", "k3"]
KL_ESTIMATORS: tuple[str, ...] = ("k1", "k2", "k3")


def is_tensor(x: Any) -> bool:
    """Return True if ``x`` is a torch tensor (without importing torch when it is not loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _as_array(x: Any) -> Any:
    return x if is_tensor(x) else np.asarray(x, dtype=np.float64)


def _exp(x: Any) -> Any:
    return x.exp() if is_tensor(x) else np.exp(x)


# --------------------------------------------------------------------------------------------------------
# KL estimators
# --------------------------------------------------------------------------------------------------------


def kl_k1(logp: Array, logq: Array) -> Array:
    """Naive estimator ``k1 = log p(x) - log q(x)`` of KL(p || q) for ``x ~ p``; unbiased, can be negative.

    Args:
        logp: Log-probabilities of the sampled items under the sampling policy p.
        logq: Their log-probabilities under the reference q (same shape).

    Returns:
        The per-sample estimates, same shape and kind as the inputs.
    """
    logp, logq = _as_array(logp), _as_array(logq)
    return logp - logq


def kl_k2(logp: Array, logq: Array) -> Array:
    """Squared estimator ``k2 = (log q(x) - log p(x))**2 / 2``; biased, low variance, never negative.

    Args:
        logp: Log-probabilities under the sampling policy p.
        logq: Log-probabilities under the reference q.

    Returns:
        The per-sample estimates.
    """
    logp, logq = _as_array(logp), _as_array(logq)
    log_ratio = logq - logp
    return 0.5 * log_ratio * log_ratio


def kl_k3(logp: Array, logq: Array) -> Array:
    """Control-variate estimator ``k3 = (q/p - 1) - log(q/p)``; unbiased and never negative.

    The log-ratio is clamped to at most 20 before exponentiating so that one token with a tiny policy
    probability cannot overflow the penalty (``e^20`` is already a penalty of about 5e8).

    Args:
        logp: Log-probabilities under the sampling policy p.
        logq: Log-probabilities under the reference q.

    Returns:
        The per-sample estimates (>= 0).
    """
    logp, logq = _as_array(logp), _as_array(logq)
    log_ratio = logq - logp
    log_ratio = log_ratio.clamp(max=20.0) if is_tensor(log_ratio) else np.minimum(log_ratio, 20.0)
    return (_exp(log_ratio) - 1.0) - log_ratio


def kl_estimate(logp: Array, logq: Array, estimator: str = "k1") -> Array:
    """Estimate KL(p || q) per sample with ``estimator`` in ``"k1"``, ``"k2"``, ``"k3"``.

    Raises:
        ValueError: for an unknown estimator name.
    """
    if estimator == "k1":
        return kl_k1(logp, logq)
    if estimator == "k2":
        return kl_k2(logp, logq)
    if estimator == "k3":
        return kl_k3(logp, logq)
    raise ValueError(f"unknown KL estimator {estimator!r}; expected one of {', '.join(KL_ESTIMATORS)}")


def categorical_kl(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Closed-form KL(p || q) = sum_i p_i log(p_i / q_i) of two categorical distributions (0 log 0 = 0).

    Raises:
        ValueError: if the shapes differ, an entry is negative, a sum is not 1, or q_i = 0 where p_i > 0.
    """
    p_arr, q_arr = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p_arr.shape != q_arr.shape:
        raise ValueError(f"p and q must have the same shape, got {p_arr.shape} and {q_arr.shape}")
    for name, arr in (("p", p_arr), ("q", q_arr)):
        if (arr < 0).any() or not math.isclose(float(arr.sum()), 1.0, abs_tol=1e-9):
            raise ValueError(f"{name} must be a probability vector (>= 0, sums to 1), got {arr.tolist()}")
    support = p_arr > 0
    if (q_arr[support] == 0).any():
        return math.inf
    return float(np.sum(p_arr[support] * (np.log(p_arr[support]) - np.log(q_arr[support]))))


# --------------------------------------------------------------------------------------------------------
# KL coefficient controllers
# --------------------------------------------------------------------------------------------------------


@dataclass
class FixedKLController:
    """A constant KL coefficient: ``value`` never changes.

    Attributes:
        value: The coefficient beta.
    """

    value: float

    def update(self, current_kl: float, n_steps: int) -> float:
        """Ignore the measurement and return the unchanged coefficient."""
        return self.value


@dataclass
class AdaptiveKLController:
    """The adaptive KL coefficient of Ziegler et al. 2019, section 2.2, in the form TRL uses.

    After a batch of ``n_steps`` samples whose KL(policy || reference) was ``current_kl``::

        e    = clip(current_kl / target - 1, -0.2, 0.2)
        beta = beta * (1 + e * n_steps / horizon)

    so beta grows while the KL is above target and shrinks while it is below.

    Attributes:
        value: The current coefficient beta (the initial beta at construction).
        target: The target KL (per sample, in nats).
        horizon: How many samples it takes for a full proportional correction (Ziegler: 10000).
    """

    value: float
    target: float
    horizon: float

    def __post_init__(self) -> None:
        if not (self.value >= 0 and math.isfinite(self.value)):
            raise ValueError(f"initial beta must be a finite number >= 0, got {self.value!r}")
        if not (self.target > 0 and math.isfinite(self.target)):
            raise ValueError(f"target_kl must be a finite number > 0, got {self.target!r}")
        if not (self.horizon > 0 and math.isfinite(self.horizon)):
            raise ValueError(f"horizon must be a finite number > 0, got {self.horizon!r}")

    def error(self, current_kl: float) -> float:
        """The clipped proportional error ``clip(current_kl / target - 1, -0.2, 0.2)``."""
        return float(np.clip(float(current_kl) / self.target - 1.0, -0.2, 0.2))

    def update(self, current_kl: float, n_steps: int) -> float:
        """Apply one update after ``n_steps`` samples with measured KL ``current_kl``; return the new beta."""
        if n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        self.value *= 1.0 + self.error(current_kl) * n_steps / self.horizon
        return self.value


# --------------------------------------------------------------------------------------------------------
# Returns and advantages
# --------------------------------------------------------------------------------------------------------


def _zeros_like(x: Any) -> Any:
    return x.new_zeros(x.shape) if is_tensor(x) else np.zeros_like(x, dtype=np.float64)


def discounted_returns(
    rewards: Array, gamma: float, dones: Array | None = None, last_value: Any = 0.0
) -> Array:
    """Discounted returns ``G_t = r_t + gamma * (1 - done_t) * G_{t+1}`` along the last axis.

    Args:
        rewards: Rewards, shape ``[..., T]``.
        gamma: Discount factor in [0, 1].
        dones: 1 where the episode ended *at* step t (no bootstrap past it); default none.
        last_value: Value bootstrapped after the last step (shape ``[...]`` or a scalar), used unless the
            last step is done.

    Returns:
        The returns, same shape and kind as ``rewards``.
    """
    rewards = _as_array(rewards)
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    out = _zeros_like(rewards)
    not_done = 1.0 - _as_array(dones) if dones is not None else None
    running = last_value if is_tensor(last_value) or np.isscalar(last_value) else _as_array(last_value)
    for t in range(rewards.shape[-1] - 1, -1, -1):
        cont = gamma if not_done is None else gamma * not_done[..., t]
        running = rewards[..., t] + cont * running
        out[..., t] = running
    return out


def gae(
    rewards: Array,
    values: Array,
    dones: Array,
    last_value: Any,
    gamma: float,
    lam: float,
) -> tuple[Array, Array]:
    """Generalized advantage estimation (Schulman et al. 2016) along the last axis.

    ``delta_t = r_t + gamma * V_{t+1} * (1 - done_t) - V_t`` and
    ``A_t = delta_t + gamma * lam * (1 - done_t) * A_{t+1}``, with ``V_T = last_value``.

    Args:
        rewards: Rewards, shape ``[..., T]``.
        values: Value estimates V(s_t), shape ``[..., T]``.
        dones: 1 where the episode terminated at step t (its next state has value 0).
        last_value: V(s_T) for the state after the last step, shape ``[...]`` or scalar.
        gamma: Discount factor in [0, 1].
        lam: GAE lambda in [0, 1].

    Returns:
        ``(advantages, returns)`` with ``returns = advantages + values`` (the value targets).
    """
    rewards, values, dones = _as_array(rewards), _as_array(values), _as_array(dones)
    if not (0.0 <= gamma <= 1.0 and 0.0 <= lam <= 1.0):
        raise ValueError(f"gamma and lam must be in [0, 1], got gamma={gamma}, lam={lam}")
    if tuple(rewards.shape) != tuple(values.shape) or tuple(rewards.shape) != tuple(dones.shape):
        raise ValueError(
            f"rewards, values and dones must share a shape, got {tuple(rewards.shape)}, "
            f"{tuple(values.shape)}, {tuple(dones.shape)}"
        )
    advantages = _zeros_like(rewards)
    next_value = last_value if is_tensor(last_value) or np.isscalar(last_value) else _as_array(last_value)
    running = 0.0
    for t in range(rewards.shape[-1] - 1, -1, -1):
        not_done = 1.0 - dones[..., t]
        delta = rewards[..., t] + gamma * next_value * not_done - values[..., t]
        running = delta + gamma * lam * not_done * running
        advantages[..., t] = running
        next_value = values[..., t]
    return advantages, advantages + values


def _grouped(rewards: Any, group_size: int) -> Any:
    rewards = _as_array(rewards)
    n = rewards.shape[-1] if rewards.ndim else 0
    if group_size < 1 or n % group_size:
        raise ValueError(f"{n} rewards cannot be split into groups of {group_size}")
    return rewards.reshape(*rewards.shape[:-1], n // group_size, group_size)


def rloo_advantages(rewards: Array, group_size: int) -> Array:
    """Leave-one-out baseline (RLOO, Ahmadian et al. 2024): ``A_i = r_i - mean_{j != i} r_j`` per group.

    Args:
        rewards: Rewards along the last axis, consecutive groups of ``group_size`` samples of one prompt.
        group_size: Samples per prompt (>= 2).

    Returns:
        Advantages, same shape as ``rewards``.
    """
    if group_size < 2:
        raise ValueError(f"RLOO needs group_size >= 2, got {group_size}")
    grouped = _grouped(rewards, group_size)
    total = grouped.sum(-1, keepdim=True) if is_tensor(grouped) else grouped.sum(-1, keepdims=True)
    adv = grouped - (total - grouped) / (group_size - 1)
    return adv.reshape(_as_array(rewards).shape)


def grpo_advantages(rewards: Array, group_size: int, scale: bool = True, eps: float = 1e-4) -> Array:
    """Group-normalized advantages (GRPO, Shao et al. 2024): ``(r_i - mean) / (std + eps)`` per group.

    The standard deviation is the sample one (Bessel-corrected), as in TRL's GRPOTrainer; with
    ``scale=False`` only the mean is subtracted (Dr. GRPO, Liu et al. 2025).

    Args:
        rewards: Rewards along the last axis, consecutive groups of ``group_size`` samples.
        group_size: Samples per prompt (>= 2 when ``scale``).
        scale: Divide by the group's standard deviation.
        eps: Added to the standard deviation.

    Returns:
        Advantages, same shape as ``rewards``.
    """
    if scale and group_size < 2:
        raise ValueError(f"a group standard deviation needs group_size >= 2, got {group_size}")
    grouped = _grouped(rewards, group_size)
    if is_tensor(grouped):
        adv = grouped - grouped.mean(-1, keepdim=True)
        if scale:
            adv = adv / (grouped.std(-1, keepdim=True) + eps)
    else:
        adv = grouped - grouped.mean(-1, keepdims=True)
        if scale:
            adv = adv / (grouped.std(-1, ddof=1, keepdims=True) + eps)
    return adv.reshape(_as_array(rewards).shape)


def whiten(x: Array, shift_mean: bool = True, eps: float = 1e-8) -> Array:
    """Normalize to unit (population) variance, and zero mean if ``shift_mean``."""
    x = _as_array(x)
    mean, var = (x.mean(), x.var(unbiased=False)) if is_tensor(x) else (x.mean(), x.var())
    out = (x - mean) / (var + eps) ** 0.5
    return out if shift_mean else out + mean


@dataclass
class MovingAverageBaseline:
    """An exponential moving average of rewards, the classic REINFORCE baseline.

    ``b <- decay * b + (1 - decay) * mean(batch)``; the first batch initializes ``b`` to its mean.

    Attributes:
        decay: Weight of the old value, in [0, 1).
        value: The current baseline (None before the first update).
    """

    decay: float = 0.9
    value: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {self.decay}")

    def advantages(self, rewards: Array) -> Array:
        """Return ``rewards - b`` with the baseline from before this batch (0 at first), then update."""
        rewards = _as_array(rewards)
        baseline = 0.0 if self.value is None else self.value
        adv = rewards - baseline
        self.update(float(rewards.mean()))
        return adv

    def update(self, batch_mean: float) -> float:
        """Fold one batch mean into the average and return the new baseline."""
        if self.value is None:
            self.value = float(batch_mean)
        else:
            self.value = self.decay * self.value + (1.0 - self.decay) * float(batch_mean)
        return self.value


def masked_mean(x: Array, mask: Array, axis: int | None = None) -> Array:
    """Mean of ``x`` over the entries where ``mask`` is nonzero (e.g. the completion tokens of a batch).

    Raises:
        ValueError: if the mask selects nothing (along ``axis``, if given).
    """
    x, mask = _as_array(x), _as_array(mask)
    if is_tensor(mask) and is_tensor(x):
        mask = mask.to(x.dtype)
    total = (x * mask).sum() if axis is None else (x * mask).sum(axis)
    count = mask.sum() if axis is None else mask.sum(axis)
    empty = bool((count == 0).any()) if axis is not None else float(count) == 0.0
    if empty:
        raise ValueError("masked_mean: the mask selects no entry")
    return total / count


def masked_whiten(x: Array, mask: Array, shift_mean: bool = True, eps: float = 1e-8) -> Array:
    """Whiten ``x`` with the mean and (population) variance of its masked entries (as TRL does)."""
    x, mask = _as_array(x), _as_array(mask)
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    out = (x - mean) / (var + eps) ** 0.5
    return out if shift_mean else out + mean


def explained_variance(predicted: Array, target: Array) -> float:
    """Explained variance ``1 - Var[target - predicted] / Var[target]`` of a value function.

    1 is a perfect prediction, 0 or less no better than a constant; NaN when the target has no variance
    (as in Stable-Baselines3).
    """
    predicted, target = _as_array(predicted), _as_array(target)
    var_target = float(target.var())
    if var_target == 0.0:
        return math.nan
    return 1.0 - float((target - predicted).var()) / var_target
