"""Reward wrappers on small tabular environments: shaping invariance (Ng et al. 1999), KL, sparse delivery."""

from __future__ import annotations

import math
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

from codegym.rlmath import categorical_kl
from codegym.wrappers import KLRegularizer, PotentialShaping, SparseReward

GAMMA = 0.9
N_STATES = 6  # 0..4 on a line, 5 is the goal
LEFT, RIGHT, LOITER = 0, 1, 2


class LineWorld(gym.Env[int, int]):
    """A deterministic chain: walk right from state 0 to the goal (state 5, +1, terminal).

    ``options={"state": s}`` starts in state ``s`` so that a test can read the reward table through any
    wrapper. Episodes are truncated after 50 steps.
    """

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = spaces.Discrete(N_STATES)
        self.action_space = spaces.Discrete(3)
        self.state = 0
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        self.state = int((options or {}).get("state", 0))
        self.t = 0
        return self.state, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        if action == RIGHT:
            self.state += 1
        elif action == LEFT:
            self.state = max(0, self.state - 1)
        self.t += 1
        terminated = self.state == N_STATES - 1
        return self.state, (1.0 if terminated else 0.0), terminated, self.t >= 50 and not terminated, {}


class LoiterBonus(gym.Wrapper):
    """A shaping bonus that is NOT potential based: +0.2 for loitering in state 2 (like a per-line bonus)."""

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        state = self.env.unwrapped.state
        obs, reward, terminated, truncated, info = self.env.step(action)
        bonus = 0.2 if (state == 2 and action == LOITER) else 0.0
        return obs, float(reward) + bonus, terminated, truncated, info


def _table(env: gym.Env) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read (reward, next state, terminal) for every non-terminal state and action through the wrappers."""
    n_actions = env.action_space.n
    rewards = np.zeros((N_STATES - 1, n_actions))
    nxt = np.zeros((N_STATES - 1, n_actions), dtype=int)
    term = np.zeros((N_STATES - 1, n_actions), dtype=bool)
    for s in range(N_STATES - 1):
        for a in range(n_actions):
            env.reset(options={"state": s})
            s2, r, terminated, _, _ = env.step(a)
            rewards[s, a], nxt[s, a], term[s, a] = r, s2, terminated
    return rewards, nxt, term


def _optimal_policy(env: gym.Env, gamma: float = GAMMA) -> tuple[np.ndarray, np.ndarray]:
    rewards, nxt, term = _table(env)
    v = np.zeros(N_STATES)
    for _ in range(2000):
        q = rewards + gamma * np.where(term, 0.0, v[nxt])
        v_new = np.append(q.max(axis=1), 0.0)
        if np.abs(v_new - v).max() < 1e-12:
            break
        v = v_new
    q = rewards + gamma * np.where(term, 0.0, v[nxt])
    return q.argmax(axis=1), q


def test_potential_shaping_keeps_the_optimal_policy_and_a_bonus_changes_it() -> None:
    base_policy, base_q = _optimal_policy(LineWorld())
    assert base_policy.tolist() == [RIGHT] * 5
    assert base_q[0, RIGHT] == pytest.approx(GAMMA**4)

    rng = np.random.default_rng(0)
    potentials = [rng.normal(0, 5, N_STATES) for _ in range(5)]
    potentials.append(np.array([0.0, 0.0, 10.0, 0.0, 0.0, 0.0]))  # a lure at state 2
    potentials.append(-np.arange(N_STATES, dtype=float) * 3)  # potential falling towards the goal
    for phi in potentials:
        shaped = PotentialShaping(
            LineWorld(), potential=lambda env, obs, phi=phi: float(phi[obs]), gamma=GAMMA
        )
        policy, q = _optimal_policy(shaped)
        assert policy.tolist() == base_policy.tolist(), phi
        # Ng et al.: Q_shaped(s, a) = Q(s, a) - Phi(s), for every state and action.
        np.testing.assert_allclose(q, base_q - phi[:-1, None], atol=1e-9)

    bonus_policy, _ = _optimal_policy(LoiterBonus(LineWorld()))
    assert bonus_policy[2] == LOITER  # 0.2 / (1 - 0.9) = 2 > 0.9**2: the agent farms the bonus forever
    assert bonus_policy.tolist() != base_policy.tolist()


def test_potential_shaping_terms_and_info() -> None:
    phi = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    env = PotentialShaping(LineWorld(), potential=lambda env, obs: float(phi[obs]), gamma=0.5)
    _, info = env.reset(options={"state": 3})
    assert info["potential"] == 8.0
    _, r, _, _, info = env.step(LEFT)  # 3 -> 2: 0 + 0.5 * 4 - 8
    assert r == -6.0 and info["shaping"] == -6.0 and info["reward_components"] == {"shaping": -6.0}
    _, r, _, _, _ = env.step(RIGHT)  # 2 -> 3: 0.5 * 8 - 4
    assert r == 0.0
    _, r, _, _, _ = env.step(RIGHT)  # 3 -> 4
    assert r == 0.5 * 16 - 8
    _, r, terminated, _, info = env.step(RIGHT)  # 4 -> goal: terminal potential is 0
    assert terminated and r == 1.0 + 0.0 - 16.0 and info["potential"] == 0.0
    with pytest.raises(ValueError, match="gamma must be in"):
        PotentialShaping(LineWorld(), potential=lambda env, obs: 0.0, gamma=1.5)
    bad = PotentialShaping(LineWorld(), potential=lambda env, obs: math.nan)
    with pytest.raises(RuntimeError, match="returned nan"):
        bad.reset()


def test_sparse_reward_delivers_the_sum_at_the_end() -> None:
    phi = np.arange(N_STATES, dtype=float)
    shaped = PotentialShaping(LineWorld(), potential=lambda env, obs: float(phi[obs]), gamma=1.0)
    env = SparseReward(shaped)
    env.reset()
    rewards, infos = [], []
    for _ in range(5):
        _, r, terminated, truncated, info = env.step(RIGHT)
        rewards.append(r)
        infos.append(info)
    assert rewards[:4] == [0.0] * 4
    # gamma = 1: shaping telescopes to -Phi(s0) = 0; the goal reward 1 arrives whole at the end.
    assert terminated and rewards[4] == pytest.approx(1.0)
    assert [i["withheld_reward"] for i in infos] == pytest.approx([1.0, 1.0, 1.0, 1.0, -3.0])
    assert infos[4]["episode_reward"] == pytest.approx(1.0)


# ---- KL regularizer on a one-step bandit over three "programs" ------------------------------------------

POLICY = np.array([0.7, 0.2, 0.1])
REFERENCE = np.array([0.2, 0.3, 0.5])
BANDIT_REWARD = np.array([1.0, 0.5, 0.0])


class Bandit(gym.Env[int, int]):
    """One step: choose program 0, 1 or 2 and get BANDIT_REWARD[action]."""

    def __init__(self) -> None:
        self.observation_space = spaces.Discrete(1)
        self.action_space = spaces.Discrete(3)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        return 0, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        return 0, float(BANDIT_REWARD[action]), True, False, {"reward_components": {"pass_fail": 1.0}}


def _logprob(probs: np.ndarray) -> Any:
    return lambda obs, action: math.log(probs[int(action)])


@pytest.mark.parametrize("estimator", ["k1", "k2", "k3"])
def test_kl_regularizer_subtracts_beta_times_the_estimate(estimator: str) -> None:
    env = KLRegularizer(Bandit(), _logprob(POLICY), _logprob(REFERENCE), beta=0.5, estimator=estimator)
    for action in range(3):
        env.reset()
        _, r, _, _, info = env.step(action)
        log_ratio = math.log(REFERENCE[action] / POLICY[action])
        kl = {"k1": -log_ratio, "k2": 0.5 * log_ratio**2, "k3": math.exp(log_ratio) - 1 - log_ratio}[
            estimator
        ]
        assert info["kl"] == pytest.approx(kl)
        assert r == pytest.approx(BANDIT_REWARD[action] - 0.5 * kl)
        assert info["beta"] == 0.5 and info["kl_penalty"] == pytest.approx(-0.5 * kl)
        assert info["reward_components"] == pytest.approx({"pass_fail": 1.0, "kl_penalty": -0.5 * kl})
        assert info["episode_kl"] == pytest.approx(kl)


def test_kl_regularizer_expected_penalty_is_the_true_kl_for_k1_and_k3() -> None:
    true_kl = categorical_kl(POLICY, REFERENCE)
    for estimator in ("k1", "k3"):
        env = KLRegularizer(Bandit(), _logprob(POLICY), _logprob(REFERENCE), beta=1.0, estimator=estimator)
        expected_penalty = 0.0
        for action in range(3):
            env.reset()
            _, r, _, _, _ = env.step(action)
            expected_penalty += POLICY[action] * (BANDIT_REWARD[action] - r)
        assert expected_penalty == pytest.approx(true_kl, abs=1e-12)


def test_kl_regularizer_adaptive_beta_matches_hand_computed_values() -> None:
    env = KLRegularizer(
        Bandit(), _logprob(POLICY), _logprob(REFERENCE), beta=0.1, estimator="k1", target_kl=0.5, horizon=10
    )
    beta = 0.1
    for action in (0, 0, 2, 1):
        env.reset()
        _, r, _, _, info = env.step(action)
        kl = math.log(POLICY[action] / REFERENCE[action])
        assert info["beta"] == pytest.approx(beta)  # the beta applied is the one before the update
        assert r == pytest.approx(BANDIT_REWARD[action] - beta * kl)
        error = min(max(kl / 0.5 - 1, -0.2), 0.2)
        beta = beta * (1 + error * 1 / 10)
        assert env.beta == pytest.approx(beta)
    # action 0: KL 1.2528 -> +0.2 twice; action 2: KL -1.609 -> -0.2; action 1: KL -0.405 -> -0.2
    assert env.beta == pytest.approx(0.1 * 1.02 * 1.02 * 0.98 * 0.98)


def test_kl_regularizer_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="unknown estimator 'k9'"):
        KLRegularizer(Bandit(), _logprob(POLICY), _logprob(REFERENCE), estimator="k9")
    with pytest.raises(ValueError, match="beta must be a finite number >= 0, got -1"):
        KLRegularizer(Bandit(), _logprob(POLICY), _logprob(REFERENCE), beta=-1)
    with pytest.raises(ValueError, match="target_kl must be"):
        KLRegularizer(Bandit(), _logprob(POLICY), _logprob(REFERENCE), target_kl=-1.0)


def test_wrappers_pass_check_env_on_tabular_envs() -> None:
    phi = np.arange(N_STATES, dtype=float)
    for env in (
        PotentialShaping(LineWorld(), lambda env, obs: float(phi[obs]), 0.9),
        SparseReward(LineWorld()),
        KLRegularizer(Bandit(), _logprob(POLICY), _logprob(REFERENCE), 0.1, "k3"),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env, skip_render_check=True)
        # The only warning allowed is the checker's note that it was given a wrapped environment.
        messages = [str(w.message) for w in caught]
        assert all("different from the unwrapped" in m for m in messages), messages


@pytest.mark.parametrize(
    ("code", "viable", "compiles"),
    [
        ("def f(x):\n", True, False),  # open block: a valid beginning
        ("def f(x):\n    return x\n", True, True),
        ("x = (1,\n", True, False),  # open bracket
        ("if x:\n    y = 1\nelse:\n", True, False),
        ("x = )\n", False, False),
        ("def f(x):\n    return x +\n", False, False),
        ("", True, True),
    ],
)
def test_line_scorers_table(code: str, viable: bool, compiles: bool) -> None:
    from codegym.wrappers import prefix_is_viable, score_compiles, score_parses

    assert prefix_is_viable(code) is viable
    assert score_parses(None, code) == (1.0 if viable else -1.0)  # type: ignore[arg-type]
    assert score_compiles(None, code) == (1.0 if compiles else 0.0)  # type: ignore[arg-type]


def test_dense_reward_rejects_unknown_scorers() -> None:
    from codegym.wrappers import DenseReward

    with pytest.raises(ValueError, match="unknown line scorer 'lints'"):
        DenseReward(LineWorld(), line_scorer="lints")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="line_scale must be a finite number, got inf"):
        DenseReward(LineWorld(), line_scale=math.inf)
