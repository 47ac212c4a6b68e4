"""Analytic tests of codegym.rlmath: KL estimators, KL controllers, returns, GAE and baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from codegym import rlmath
from codegym.rlmath import (
    AdaptiveKLController,
    FixedKLController,
    MovingAverageBaseline,
    categorical_kl,
    discounted_returns,
    gae,
    grpo_advantages,
    kl_estimate,
    kl_k1,
    kl_k2,
    kl_k3,
    rloo_advantages,
    whiten,
)

P = np.array([0.5, 0.3, 0.15, 0.05])
Q = np.array([0.25, 0.25, 0.25, 0.25])
N_SAMPLES = 200_000


def _samples(p: np.ndarray, q: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.choice(len(p), size=N_SAMPLES, p=p)
    return np.log(p[x]), np.log(q[x])


def test_categorical_kl_closed_form() -> None:
    expected = sum(pi * math.log(pi / qi) for pi, qi in zip(P, Q))
    assert categorical_kl(P, Q) == pytest.approx(expected, abs=1e-12)
    assert categorical_kl(P, P) == 0.0
    assert categorical_kl([1.0, 0.0], [0.0, 1.0]) == math.inf
    with pytest.raises(ValueError, match="probability vector"):
        categorical_kl([0.5, 0.6], [0.5, 0.5])


@pytest.mark.parametrize(("p", "q"), [(P, Q), (Q, P), (np.array([0.9, 0.1]), np.array([0.6, 0.4]))])
def test_k1_and_k3_are_unbiased_within_monte_carlo_error(p: np.ndarray, q: np.ndarray) -> None:
    true_kl = categorical_kl(p, q)
    logp, logq = _samples(p, q)
    for estimator in ("k1", "k3"):
        est = kl_estimate(logp, logq, estimator)
        stderr = est.std(ddof=1) / math.sqrt(len(est))
        # 4 standard errors: fails with probability ~6e-5 for an unbiased estimator, and the seed is fixed.
        assert abs(est.mean() - true_kl) < 4 * stderr, (estimator, est.mean(), true_kl, stderr)


def test_k3_is_never_negative_and_k1_sometimes_is() -> None:
    logp, logq = _samples(P, Q)
    assert (kl_k3(logp, logq) >= 0).all()
    assert (kl_k2(logp, logq) >= 0).all()
    assert (kl_k1(logp, logq) < 0).any()
    # Extreme ratios: still finite and non-negative.
    extreme = kl_k3(np.array([-50.0, 0.0]), np.array([0.0, -50.0]))
    assert np.isfinite(extreme).all() and (extreme >= 0).all()


def test_k2_bias_matches_its_expectation_and_is_second_order() -> None:
    # E_p[k2] = 0.5 * sum_i p_i (log q_i - log p_i)^2 exactly; it differs from the KL by a third-order term.
    for p, q in [(P, Q), (np.array([0.9, 0.1]), np.array([0.6, 0.4]))]:
        logp, logq = _samples(p, q)
        expected_k2 = 0.5 * float(np.sum(p * (np.log(q) - np.log(p)) ** 2))
        est = kl_k2(logp, logq)
        stderr = est.std(ddof=1) / math.sqrt(len(est))
        assert abs(est.mean() - expected_k2) < 4 * stderr
        bias = expected_k2 - categorical_kl(p, q)
        assert abs(bias) > 10 * stderr  # the bias is real, far beyond Monte Carlo error
    # Close distributions: the bias vanishes faster than the KL itself (relative bias -> 0).
    near_p, near_q = np.array([0.51, 0.49]), np.array([0.49, 0.51])
    kl = categorical_kl(near_p, near_q)
    k2_mean = 0.5 * float(np.sum(near_p * (np.log(near_q) - np.log(near_p)) ** 2))
    assert abs(k2_mean - kl) / kl < 0.01


def test_estimators_on_torch_keep_kind_dtype_and_gradient() -> None:
    logp = torch.log(torch.tensor([0.5, 0.25, 0.25], dtype=torch.float32)).requires_grad_(True)
    logq = torch.log(torch.tensor([0.25, 0.5, 0.25], dtype=torch.float32))
    for estimator in ("k1", "k2", "k3"):
        out = kl_estimate(logp, logq, estimator)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
        ref = kl_estimate(logp.detach().numpy(), logq.numpy(), estimator)
        np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-6)
    kl_k3(logp, logq).sum().backward()
    # d k3 / d logp = 1 - q/p
    np.testing.assert_allclose(logp.grad.numpy(), [1 - 0.5, 1 - 2.0, 0.0], atol=1e-6)


def test_exact_estimator_values() -> None:
    logp, logq = math.log(0.5), math.log(0.25)
    assert float(kl_k1(logp, logq)) == pytest.approx(math.log(2))
    assert float(kl_k2(logp, logq)) == pytest.approx(0.5 * math.log(2) ** 2)
    assert float(kl_k3(logp, logq)) == pytest.approx(0.5 - 1 + math.log(2))
    with pytest.raises(ValueError, match="unknown KL estimator 'k4'"):
        kl_estimate(logp, logq, "k4")


def test_adaptive_kl_controller_matches_hand_computed_values() -> None:
    ctl = AdaptiveKLController(value=0.1, target=6.0, horizon=10_000)
    # KL 9 > target: error 9/6 - 1 = 0.5 clipped to 0.2; beta = 0.1 * (1 + 0.2 * 256 / 10000)
    assert ctl.update(9.0, 256) == pytest.approx(0.1 * 1.00512)
    # KL 5.4: error -0.1; beta *= 1 - 0.1 * 256 / 10000
    assert ctl.update(5.4, 256) == pytest.approx(0.1 * 1.00512 * (1 - 0.00256))
    # KL 0: error -1 clipped to -0.2
    assert ctl.update(0.0, 10_000) == pytest.approx(0.1 * 1.00512 * 0.99744 * 0.8)
    # KL on target: unchanged
    before = ctl.value
    assert ctl.update(6.0, 500) == pytest.approx(before)
    assert ctl.error(6.6) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="target_kl must be"):
        AdaptiveKLController(value=0.1, target=0.0, horizon=10)
    assert FixedKLController(0.3).update(100.0, 10) == 0.3


def test_discounted_returns_with_dones_and_bootstrap() -> None:
    r = np.array([1.0, 0.0, 2.0, 1.0])
    d = np.array([0.0, 1.0, 0.0, 0.0])
    out = discounted_returns(r, 0.5, dones=d, last_value=4.0)
    # episode 1: [1 + 0.5*0, 0]; episode 2 bootstraps 4: G3 = 1 + 0.5*4 = 3, G2 = 2 + 0.5*3 = 3.5
    np.testing.assert_allclose(out, [1.0, 0.0, 3.5, 3.0])
    np.testing.assert_allclose(discounted_returns([1.0, 1.0, 1.0], 0.9), [2.71, 1.9, 1.0])
    t = discounted_returns(torch.tensor([1.0, 1.0, 1.0]), 0.9)
    assert isinstance(t, torch.Tensor)
    np.testing.assert_allclose(t.numpy(), [2.71, 1.9, 1.0], rtol=1e-6)


def test_gae_against_hand_computation_and_lambda_limits() -> None:
    r = np.array([1.0, 2.0, 3.0])
    v = np.array([0.5, 1.0, 1.5])
    d = np.array([0.0, 0.0, 1.0])
    gamma, lam = 0.9, 0.8
    d2 = 3.0 - 1.5
    d1 = 2.0 + 0.9 * 1.5 - 1.0
    d0 = 1.0 + 0.9 * 1.0 - 0.5
    a2 = d2
    a1 = d1 + gamma * lam * a2
    a0 = d0 + gamma * lam * a1
    adv, ret = gae(r, v, d, last_value=100.0, gamma=gamma, lam=lam)
    np.testing.assert_allclose(adv, [a0, a1, a2])
    np.testing.assert_allclose(ret, adv + v)
    # lam = 1: advantages are Monte Carlo returns minus values; lam = 0: one-step TD errors.
    adv1, _ = gae(r, v, d, 0.0, gamma, 1.0)
    np.testing.assert_allclose(adv1, discounted_returns(r, gamma, dones=d) - v)
    adv0, _ = gae(r, v, d, 0.0, gamma, 0.0)
    np.testing.assert_allclose(adv0, [d0, d1, d2])
    # batched torch input gives the same numbers per row
    tadv, _ = gae(
        torch.tensor(np.stack([r, r])),
        torch.tensor(np.stack([v, v])),
        torch.tensor(np.stack([d, d])),
        torch.tensor([100.0, 100.0], dtype=torch.float64),
        gamma,
        lam,
    )
    np.testing.assert_allclose(tadv.numpy(), [[a0, a1, a2]] * 2)
    with pytest.raises(ValueError, match="share a shape"):
        gae(r, v[:2], d, 0.0, gamma, lam)


def test_rloo_and_grpo_advantages() -> None:
    r = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5, 0.5])
    rloo = rloo_advantages(r, 4)
    # group 1: 1 - (0+0+1)/3 = 2/3, 0 - 2/3 = -2/3
    np.testing.assert_allclose(rloo[:4], [2 / 3, -2 / 3, -2 / 3, 2 / 3])
    np.testing.assert_allclose(rloo[4:], [1 / 3, 1 / 3, -1 / 3, -1 / 3])
    grpo = grpo_advantages(r, 4, eps=0.0)
    std1 = np.std([1, 0, 0, 1], ddof=1)
    np.testing.assert_allclose(grpo[:4], np.array([0.5, -0.5, -0.5, 0.5]) / std1)
    np.testing.assert_allclose(grpo_advantages(r, 4, scale=False)[:4], [0.5, -0.5, -0.5, 0.5])
    # all-equal group: zero advantage, no division by zero
    np.testing.assert_allclose(grpo_advantages([1.0, 1.0, 1.0], 3), [0.0, 0.0, 0.0])
    t = grpo_advantages(torch.tensor(r), 4, eps=0.0)
    np.testing.assert_allclose(t.numpy(), grpo)
    np.testing.assert_allclose(rloo_advantages(torch.tensor(r), 4).numpy(), rloo)
    with pytest.raises(ValueError, match="cannot be split into groups of 3"):
        rloo_advantages(r, 3)


def test_moving_average_baseline_and_whiten() -> None:
    b = MovingAverageBaseline(decay=0.5)
    np.testing.assert_allclose(b.advantages([1.0, 3.0]), [1.0, 3.0])  # first batch: baseline 0
    assert b.value == 2.0
    np.testing.assert_allclose(b.advantages([4.0]), [2.0])
    assert b.value == pytest.approx(3.0)
    w = whiten(np.array([1.0, 2.0, 3.0, 4.0]))
    assert w.mean() == pytest.approx(0.0, abs=1e-12) and w.std() == pytest.approx(1.0, abs=1e-6)
    assert rlmath.is_tensor(whiten(torch.tensor([1.0, 2.0])))


def test_masked_mean_whiten_and_explained_variance() -> None:
    x = np.array([[1.0, 2.0, 100.0], [3.0, 4.0, 5.0]])
    mask = np.array([[1, 1, 0], [1, 1, 1]])
    assert float(rlmath.masked_mean(x, mask)) == pytest.approx(15 / 5)
    np.testing.assert_allclose(rlmath.masked_mean(x, mask, axis=1), [1.5, 4.0])
    w = rlmath.masked_whiten(x, mask)
    sel = w[mask.astype(bool)]
    assert sel.mean() == pytest.approx(0.0, abs=1e-9) and sel.std() == pytest.approx(1.0, abs=1e-6)
    t = rlmath.masked_mean(torch.tensor(x), torch.tensor(mask), axis=1)
    np.testing.assert_allclose(t.numpy(), [1.5, 4.0])
    with pytest.raises(ValueError, match="selects no entry"):
        rlmath.masked_mean(x, np.zeros_like(mask))
    target = np.array([1.0, 2.0, 3.0, 4.0])
    assert rlmath.explained_variance(target, target) == 1.0
    assert rlmath.explained_variance(np.full(4, 2.5), target) == pytest.approx(0.0)
    assert math.isnan(rlmath.explained_variance(target, np.ones(4)))
