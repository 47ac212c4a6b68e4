"""PPO and REINFORCE at token level: what a rollout records, learning on a custom token env, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from tests.conftest import require

torch = require("torch", "train")
require("transformers", "train")

from codegym.agents.policy import LMPolicy  # noqa: E402
from codegym.agents.ppo import PPO, PPOConfig  # noqa: E402
from codegym.agents.reinforce import REINFORCE, REINFORCEConfig  # noqa: E402
from codegym.agents.rollout import collect_tokens  # noqa: E402

from codegym.rewards import get_reward  # noqa: E402
from tests.lm_fixtures import tiny_model, tiny_tokenizer  # noqa: E402


class CountingEnv(gym.Env):
    """A custom token env: reward 1 per token whose id is even; EOS terminates, the budget truncates.

    Observation: ``[prompt (2 ids) + budget]`` ids padded with ``vocab_size`` (TokenEnv's convention).
    """

    def __init__(
        self, vocab_size: int, eos_token_id: int, budget: int = 5, stop_on_odd: bool = False
    ) -> None:
        self.stop_on_odd = stop_on_odd
        self.vocab_size = vocab_size
        self.eos = eos_token_id
        self.budget = budget
        self.observation_space = spaces.MultiDiscrete([vocab_size + 1] * (2 + budget))
        self.action_space = spaces.Discrete(vocab_size)
        self.ids = np.full(2 + budget, vocab_size, dtype=np.int64)
        self.n = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.ids[:] = self.vocab_size
        self.ids[:2] = self.np_random.integers(2, 40, size=2)
        self.n = 0
        return self.ids.copy(), {}

    def step(self, action):
        action = int(action)
        if action == self.eos or (self.stop_on_odd and action % 2):
            return self.ids.copy(), 0.0, True, False, {"passed": False}
        self.ids[2 + self.n] = action
        self.n += 1
        reward = 1.0 if action % 2 == 0 else 0.0
        truncated = self.n == self.budget
        info = {"passed": True} if truncated else {}
        return self.ids.copy(), reward, False, truncated, info


@pytest.fixture()
def tokenizer():
    return tiny_tokenizer()


def _policy(tokenizer, seed: int = 0, random_values: bool = False) -> LMPolicy:
    policy = LMPolicy.from_pretrained(
        tiny_model("gpt2", len(tokenizer), seed=seed), tokenizer=tokenizer, device="cpu", value_head=True
    )
    if random_values:  # the value head starts at 0; a bootstrap check needs values that differ
        with torch.no_grad():
            torch.nn.init.normal_(policy.value_head.linear.weight, std=1.0)
            policy.value_head.linear.bias.fill_(0.37)
    return policy


def _envs(tokenizer, num_envs: int = 4, budget: int = 5, **kw) -> gym.vector.SyncVectorEnv:
    v, eos = len(tokenizer), kw.pop("eos", tokenizer.eos_token_id)
    return gym.vector.SyncVectorEnv([lambda: CountingEnv(v, eos, budget, **kw) for _ in range(num_envs)])


def test_a_token_rollout_skips_reset_steps_and_bootstraps_only_truncations(tokenizer):
    torch.manual_seed(0)
    policy = _policy(tokenizer, random_values=True)
    envs = _envs(tokenizer, num_envs=3, budget=4, eos=-1)  # no EOS: every episode ends at the budget
    steps = 11
    rollout = collect_tokens(policy, None, envs, num_steps=steps, seed=7, temperature=1.0)
    lengths = rollout.mask.sum(-1).tolist()
    # Per env: an episode of 4 actions, a reset step, 4 more, a reset step, then 1 action cut by the end.
    assert lengths == [4] * 6 + [1] * 3
    assert sum(lengths) == 3 * (steps - 2)
    assert rollout.episode_lengths == [4] * 6
    assert not rollout.terminated.any()
    # Truncated and cut segments are bootstrapped with V of the observation they stopped at.
    for row, context in enumerate(rollout.prompt_ids):
        final = context + rollout.completion_ids[row, : lengths[row]].tolist()
        policy.reset_steps()
        out = policy.step(np.array([final + [len(tokenizer)]]))  # V of the state after the last action
        assert rollout.bootstrap[row] == pytest.approx(float(out.values[0]), abs=1e-4), row
        assert abs(float(rollout.bootstrap[row])) > 1e-3
    # Rewards are the env's: 1 for each even token.
    real = rollout.completion_ids[rollout.mask]
    assert torch.equal(rollout.env_rewards[rollout.mask], (real % 2 == 0).float())


def test_a_terminated_episode_is_not_bootstrapped(tokenizer):
    torch.manual_seed(0)
    policy = _policy(tokenizer, random_values=True)
    envs = _envs(tokenizer, 4, budget=50, stop_on_odd=True)  # an odd token terminates
    rollout = collect_tokens(policy, None, envs, num_steps=12, seed=1, temperature=1.0)
    done = rollout.terminated
    assert done.sum() >= 4
    assert torch.all(rollout.bootstrap[done] == 0.0)
    last = rollout.completion_ids[done, :].gather(1, (rollout.mask[done].sum(-1, keepdim=True) - 1))
    assert torch.all(last % 2 == 1)  # each terminated segment ends with the odd token that ended it
    assert torch.all(rollout.bootstrap[~done] != 0.0)  # cut by the rollout's end: bootstrapped


def test_ppo_learns_on_a_custom_token_env(tokenizer):
    torch.manual_seed(0)
    policy = _policy(tokenizer)
    before = [p.detach().clone() for p in policy.parameters()]
    trainer = PPO(
        policy,
        _envs(tokenizer, num_envs=8, budget=5),
        PPOConfig(learning_rate=3e-3, num_steps=12, kl_coef=0.0, num_minibatches=2, gamma=1.0),
    )
    history = trainer.learn(30)
    rewards = [m["rollout/reward"] for m in history]
    assert np.mean(rewards[-5:]) > np.mean(rewards[:5]) + 0.5, rewards
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))
    assert history[-1]["rollout/episodes"] >= 8
    assert "rollout/pass_rate" in history[-1] and "losses/explained_variance" in history[-1]


def test_ppo_runs_on_a_codegym_token_env_with_a_kl_reference(tokenizer):
    policy = _policy(tokenizer)
    envs = gym.make_vec(
        "codegym/Arith-Token-v0",
        num_envs=4,
        tokenizer=policy.tokenizer,
        max_new_tokens=8,
        suite_kwargs={"n": 30, "seed": 2, "difficulty": [1]},
        reward_fn=get_reward("coderl_graded"),  # graded: a random model's failures differ, so it learns
    )
    trainer = PPO(policy, envs, PPOConfig(num_steps=9, kl_coef=0.1))
    history = trainer.learn(2)
    assert history[-1]["rollout/episodes"] >= 4
    assert history[-1]["rollout/kl_ref"] != 0.0  # the policy moved away from its reference after one update
    assert 0.0 <= history[-1]["rollout/pass_rate"] <= 1.0


def test_token_envs_that_do_not_fit_the_policy_are_refused(tokenizer):
    policy = _policy(tokenizer)
    wrong = gym.vector.SyncVectorEnv([lambda: CountingEnv(len(tokenizer) + 5, 0) for _ in range(2)])
    with pytest.raises(ValueError, match=r"Discrete\(\d+\) but the policy's vocabulary has"):
        PPO(policy, wrong, PPOConfig())
    same_step = gym.vector.SyncVectorEnv(
        [lambda: CountingEnv(len(tokenizer), 0) for _ in range(2)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    with pytest.raises(ValueError, match="NEXT_STEP"):
        PPO(policy, same_step, PPOConfig())
    with pytest.raises(ValueError, match="group_size applies at program level"):
        PPO(policy, _envs(tokenizer, 2), PPOConfig(group_size=2))
    with pytest.raises(ValueError, match="top_p 1.0"):
        PPO(policy, _envs(tokenizer, 2), PPOConfig(top_p=0.9))


# ---- REINFORCE at token level ------------------------------------------------------------------------------


def test_a_first_episode_rollout_holds_one_whole_episode_per_env_in_groups(tokenizer):
    torch.manual_seed(0)
    policy = _policy(tokenizer)
    envs = _envs(tokenizer, num_envs=6, budget=4, stop_on_odd=True)
    rollout = collect_tokens(
        policy, None, envs, num_steps=4, seed=3, temperature=1.0, group_size=3, first_episode_only=True
    )
    assert len(rollout.prompt_ids) == 6 == len(rollout.episode_returns)  # one row per env, env order
    assert rollout.prompt_ids[0] == rollout.prompt_ids[1] == rollout.prompt_ids[2]  # a group shares a task
    assert rollout.prompt_ids[3] == rollout.prompt_ids[4] == rollout.prompt_ids[5]
    assert rollout.prompt_ids[0] != rollout.prompt_ids[3]
    lengths = rollout.mask.sum(-1)
    for row in range(6):
        actions = rollout.completion_ids[row, : int(lengths[row])]
        # A whole episode: it ends at the first odd token (terminated) or at the budget (truncated) ...
        odd = (actions % 2 == 1).nonzero().flatten().tolist()
        assert bool(rollout.terminated[row]) == bool(odd) and (not odd or odd[0] == len(actions) - 1)
        assert bool(odd) or len(actions) == 4
        # ... and its return is the sum of its per-token rewards (1 per even token).
        assert rollout.episode_returns[row] == float((actions % 2 == 0).sum())
    with pytest.raises(ValueError, match="did not end within num_steps=3"):
        collect_tokens(
            policy,
            None,
            _envs(tokenizer, 2, budget=5, eos=-1),
            num_steps=3,
            seed=0,
            temperature=1.0,
            first_episode_only=True,
        )


def test_reinforce_learns_on_a_custom_token_env(tokenizer):
    torch.manual_seed(0)
    policy = LMPolicy.from_pretrained(
        tiny_model("gpt2", len(tokenizer)), tokenizer=tokenizer, device="cpu", value_head=False
    )
    before = [p.detach().clone() for p in policy.parameters()]
    trainer = REINFORCE(
        policy,
        _envs(tokenizer, num_envs=16, budget=5),
        REINFORCEConfig(baseline="rloo", group_size=4, learning_rate=1e-2, max_new_tokens=5),
    )
    history = trainer.learn(30)
    rewards = [m["rollout/reward"] for m in history]
    assert np.mean(rewards[-5:]) > np.mean(rewards[:5]) + 0.5, rewards
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))
    assert "rollout/pass_rate" in history[-1] and 0.0 <= history[-1]["rollout/zero_signal_groups"] <= 1.0


@pytest.mark.parametrize("kl_estimator", ["k1", "k3"])
def test_reinforce_runs_on_a_codegym_token_env_with_a_kl_reference(tokenizer, kl_estimator):
    policy = LMPolicy.from_pretrained(tiny_model("gpt2", len(tokenizer)), tokenizer=tokenizer, device="cpu")
    envs = gym.make_vec(
        "codegym/Arith-Token-v0",
        num_envs=4,
        tokenizer=policy.tokenizer,
        max_new_tokens=8,
        suite_kwargs={"n": 30, "seed": 2, "difficulty": [1]},
        reward_fn=get_reward("coderl_graded"),
    )
    config = REINFORCEConfig(  # baseline none: a random model's graded rewards may all tie in a group
        baseline="none",
        group_size=2,
        max_new_tokens=8,
        kl_coef=0.1,
        kl_estimator=kl_estimator,
        learning_rate=1e-2,
    )
    first, second = REINFORCE(policy, envs, config).learn(2)
    assert first["rollout/kl_ref"] == pytest.approx(0.0, abs=1e-5)  # the policy starts as its reference
    assert second["rollout/kl_ref"] != 0.0
    assert 0.0 <= second["rollout/pass_rate"] <= 1.0


def test_reinforce_refuses_token_envs_it_cannot_drive(tokenizer):
    policy = _policy(tokenizer)
    wrong = gym.vector.SyncVectorEnv([lambda: CountingEnv(len(tokenizer) + 5, 0) for _ in range(2)])
    with pytest.raises(ValueError, match=r"Discrete\(\d+\) but the policy's vocabulary has"):
        REINFORCE(policy, wrong, REINFORCEConfig(group_size=2))
    with pytest.raises(ValueError, match="top_p must be 1, got 0.9"):
        REINFORCE(policy, _envs(tokenizer, 2), REINFORCEConfig(group_size=2, top_p=0.9))
    with pytest.raises(ValueError, match="did not end within num_steps=3"):
        REINFORCE(
            policy, _envs(tokenizer, 2, budget=5, eos=-1), REINFORCEConfig(group_size=2, max_new_tokens=3)
        ).train_step()
