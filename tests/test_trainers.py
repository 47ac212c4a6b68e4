"""REINFORCE and PPO: exact reward/done tables, learning on a custom env, errors, checkpoints and resume."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from tests.conftest import require

torch = require("torch", "train")
require("transformers", "train")

from codegym.agents.policy import LMPolicy  # noqa: E402
from codegym.agents.ppo import PPO, PPOConfig, episode_ends, token_rewards  # noqa: E402
from codegym.agents.reinforce import REINFORCE, REINFORCEConfig  # noqa: E402
from codegym.agents.train import RunConfig, run_training  # noqa: E402

from codegym import rlmath  # noqa: E402
from tests.lm_fixtures import tiny_model, tiny_tokenizer  # noqa: E402

PROMPTS = ["write letters:\n", "say words:\n", "letters please:\n"]


class LettersEnv(gym.Env):
    """A custom program-level env: reward = share of lowercase letters in the program (dense, learnable)."""

    def __init__(self, nan_reward: bool = False, ignore_seed: bool = False) -> None:
        self.observation_space = spaces.Text(64)
        self.action_space = spaces.Text(512)
        self.nan_reward = nan_reward
        self.ignore_seed = ignore_seed
        self.prompt = ""

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        rng = np.random.default_rng() if self.ignore_seed else self.np_random
        self.prompt = PROMPTS[int(rng.integers(len(PROMPTS)))]
        return self.prompt, {}

    def step(self, action):
        letters = sum(c.islower() for c in action)
        reward = math.nan if self.nan_reward else letters / max(1, len(action))
        return self.prompt, float(reward), True, False, {"passed": reward > 0.5}


def letters_envs(num_envs: int = 8, **kwargs) -> gym.vector.SyncVectorEnv:
    return gym.vector.SyncVectorEnv([lambda: LettersEnv(**kwargs) for _ in range(num_envs)])


@pytest.fixture()
def tokenizer():
    return tiny_tokenizer()


def tiny_policy(tokenizer, value_head: bool = False, seed: int = 0) -> LMPolicy:
    return LMPolicy.from_pretrained(
        tiny_model("gpt2", len(tokenizer), seed=seed),
        tokenizer=tokenizer,
        device="cpu",
        value_head=value_head,
    )


# ---- exact tables ---------------------------------------------------------------------------------------


def test_ppo_rewards_land_on_the_last_real_token_and_episodes_end_there():
    mask = torch.tensor([[True, True, True, False], [True, False, False, False], [True, True, True, True]])
    kl = torch.tensor([[0.1, 0.2, 0.3, 9.0], [0.5, 9.0, 9.0, 9.0], [0.0, 0.0, 0.0, 1.0]])
    rewards = token_rewards(torch.tensor([1.0, -0.5, 2.0]), mask, kl, beta=0.1)
    expected = torch.tensor(
        [[-0.01, -0.02, 1.0 - 0.03, 0.0], [-0.5 - 0.05, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0 - 0.1]]
    )
    assert torch.allclose(rewards, expected)
    assert episode_ends(mask).tolist() == [[0, 0, 1, 1], [1, 1, 1, 1], [0, 0, 0, 1]]


def test_ppo_advantages_do_not_leak_through_padding():
    # gamma = lambda = 1: every real token's advantage is the program's reward minus its value; padding
    # (value 0, done) neither adds nor bootstraps anything.
    mask = torch.tensor([[True, True, False], [True, True, True]])
    rewards = token_rewards(torch.tensor([1.0, 0.0]), mask, torch.zeros(2, 3), beta=0.0)
    values = torch.tensor([[0.25, 0.5, 0.0], [0.1, 0.2, 0.3]])
    adv, ret = rlmath.gae(rewards, values, episode_ends(mask), 0.0, 1.0, 1.0)
    assert torch.allclose(adv, torch.tensor([[0.75, 0.5, 0.0], [-0.1, -0.2, -0.3]]))
    assert torch.allclose(ret[mask], torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0]))


def test_reinforce_gradient_is_advantage_times_grad_logprob(tokenizer):
    """One epoch, one minibatch: the update's gradient equals -sum_i A_i grad sum_t log p / tokens."""
    policy = tiny_policy(tokenizer)
    envs = letters_envs(4)
    trainer = REINFORCE(policy, envs, REINFORCEConfig(baseline="none", group_size=2, max_new_tokens=6))
    captured = {}

    def capture_step(*args, **kwargs):
        captured["grads"] = [p.grad.clone() for p in policy.parameters()]

    trainer.optimizer.step = capture_step  # keep the weights, record the gradient the trainer computed
    sample_seed = trainer.config.seed * 1_000_003
    metrics = trainer.train_step()
    # Recompute by hand from the same rollout (same seeds -> same samples).
    from codegym.agents.rollout import collect_programs

    rollout = collect_programs(
        policy, envs, group_size=2, seed=sample_seed, max_new_tokens=6, temperature=1.0, top_p=1.0
    )
    s = rollout.sample
    policy.zero_grad()
    logp = policy.log_probs(s.prompt_ids, s.completion_ids, s.mask)
    adv = torch.tensor(rollout.rewards, dtype=torch.float32)
    manual = -(adv[:, None] * logp * s.mask).sum() / s.mask.sum()
    manual.backward()
    grads = [p.grad for p in policy.parameters()]
    norm = torch.sqrt(sum((g**2).sum() for g in grads))
    scale = min(1.0, 1.0 / (float(norm) + 1e-6))  # the trainer clips the global norm at 1.0
    for got, want in zip(captured["grads"], grads):
        assert torch.allclose(got, want * scale, atol=1e-6)
    assert metrics["rollout/reward"] == pytest.approx(float(adv.mean()))
    assert metrics["losses/approx_kl"] == pytest.approx(0.0, abs=1e-6)


# ---- learning on a custom env -----------------------------------------------------------------------


@pytest.mark.parametrize("algo", ["reinforce", "ppo"])
def test_training_on_a_custom_env_changes_parameters_and_raises_reward(tokenizer, algo):
    torch.manual_seed(0)
    policy = tiny_policy(tokenizer, value_head=algo == "ppo")
    before = [p.detach().clone() for p in policy.model.parameters()]
    envs = letters_envs(16)
    if algo == "reinforce":
        trainer = REINFORCE(
            policy, envs, REINFORCEConfig(baseline="grpo", group_size=4, learning_rate=3e-3, max_new_tokens=8)
        )
    else:
        trainer = PPO(
            policy, envs, PPOConfig(learning_rate=3e-3, max_new_tokens=8, kl_coef=0.0, num_minibatches=2)
        )
    history = trainer.learn(50)
    rewards = [m["rollout/reward"] for m in history]
    assert np.mean(rewards[-5:]) > np.mean(rewards[:5]) + 0.2, rewards
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.model.parameters()))
    for key in (
        "rollout/pass_rate",
        "losses/policy",
        "losses/approx_kl",
        "charts/beta",
        "time/sandbox_share",
    ):
        assert key in history[-1]


@pytest.mark.parametrize("algo", ["reinforce", "ppo"])
def test_both_trainers_run_on_cuda_when_present(tokenizer, algo):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here: the same trainers run on a GPU with device='auto'")
    policy = LMPolicy.from_pretrained(
        tiny_model("gpt2", len(tokenizer)), tokenizer=tokenizer, device="auto", value_head=algo == "ppo"
    )
    assert policy.device.type == "cuda"
    before = [p.detach().clone() for p in policy.model.parameters()]
    if algo == "reinforce":
        trainer = REINFORCE(policy, letters_envs(8), REINFORCEConfig(baseline="grpo", group_size=4))
    else:
        trainer = PPO(policy, letters_envs(8), PPOConfig(num_minibatches=2))
    history = trainer.learn(3)
    assert all(math.isfinite(m["losses/policy"]) for m in history)
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.model.parameters()))


@pytest.mark.parametrize("baseline", ["none", "moving_average", "rloo", "grpo"])
@pytest.mark.parametrize("kl_estimator", ["k1", "k3"])
def test_every_baseline_and_kl_estimator_runs(tokenizer, baseline, kl_estimator):
    policy = tiny_policy(tokenizer)
    config = REINFORCEConfig(
        baseline=baseline,
        group_size=2,
        max_new_tokens=6,
        kl_coef=0.1,
        kl_estimator=kl_estimator,
        kl_target=1.0,
    )
    trainer = REINFORCE(policy, letters_envs(4), config)
    first, second = trainer.learn(2)
    assert first["rollout/kl_ref"] == pytest.approx(0.0, abs=1e-5)  # the policy starts as its reference
    assert math.isfinite(second["rollout/kl_ref"]) and second["charts/beta"] != 0.1  # adaptive beta moved


# ---- errors ----------------------------------------------------------------------------------------------


def test_config_errors_name_the_numbers(tokenizer):
    with pytest.raises(ValueError, match="baseline 'grpo' needs group_size >= 2, got 1"):
        REINFORCEConfig(baseline="grpo", group_size=1)
    with pytest.raises(ValueError, match="baseline must be one of"):
        REINFORCEConfig(baseline="mean")
    with pytest.raises(ValueError, match="num_envs=6 is not a multiple of group_size=4"):
        REINFORCE(tiny_policy(tokenizer), letters_envs(6), REINFORCEConfig(group_size=4))
    with pytest.raises(ValueError, match="num_envs=8 does not divide into num_minibatches=3"):
        PPO(tiny_policy(tokenizer, value_head=True), letters_envs(8), PPOConfig(num_minibatches=3))
    with pytest.raises(ValueError, match="needs a policy with a value head"):
        PPO(tiny_policy(tokenizer), letters_envs(8))
    with pytest.raises(ValueError, match="gae_lambda must be in"):
        PPOConfig(gae_lambda=1.5)


def test_a_group_whose_env_ignores_its_seed_is_an_error(tokenizer):
    trainer = REINFORCE(
        tiny_policy(tokenizer), letters_envs(8, ignore_seed=True), REINFORCEConfig(group_size=8)
    )
    with pytest.raises(ValueError, match="same seed but show different prompts"):
        for _ in range(5):  # 3 prompts: some group eventually disagrees
            trainer.train_step()


@pytest.mark.parametrize("algo", ["reinforce", "ppo"])
def test_a_nan_loss_stops_with_the_update_number(tokenizer, algo):
    envs = letters_envs(4, nan_reward=True)
    if algo == "reinforce":
        trainer = REINFORCE(tiny_policy(tokenizer), envs, REINFORCEConfig(baseline="none", group_size=2))
    else:
        trainer = PPO(tiny_policy(tokenizer, value_head=True), envs, PPOConfig(whiten_advantages=False))
    with pytest.raises(FloatingPointError, match="loss is nan at update 0"):
        trainer.train_step()


# ---- runs, checkpoints, resume ---------------------------------------------------------------------------


def _run_config(tmp_path, **kw) -> RunConfig:
    base = dict(
        env="codegym/Arith-Program-v0",
        num_envs=4,
        updates=4,
        eval_samples=0,
        checkpoint_every=2,
        device="cpu",
        run_dir=str(tmp_path),
        suite_kwargs="n=50,seed=2,difficulty=1",
    )
    base.update(kw)
    return RunConfig(**base)


def _comparable(history):
    return [
        {k: v for k, v in m.items() if not k.startswith(("time/", "charts/completions"))} for m in history
    ]


@pytest.mark.parametrize("algo", ["reinforce", "ppo"])
def test_a_killed_run_resumes_exactly(tokenizer, tmp_path, algo):
    algo_config = (
        REINFORCEConfig(group_size=2, max_new_tokens=12, learning_rate=1e-3, kl_coef=0.05)
        if algo == "reinforce"
        else PPOConfig(max_new_tokens=12, learning_rate=1e-3)
    )
    straight_dir, history = run_training(
        _run_config(tmp_path / "a", algo=algo),
        algo_config,
        policy=tiny_policy(tokenizer, value_head=algo == "ppo"),
        progress=False,
    )

    def kill_after_third(metrics):
        if metrics["update"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(
            _run_config(tmp_path / "b", algo=algo),
            algo_config,
            policy=tiny_policy(tokenizer, value_head=algo == "ppo"),
            progress=False,
            on_update=kill_after_third,
        )
    (killed,) = list((tmp_path / "b").iterdir())
    assert len((killed / "metrics.jsonl").read_text().splitlines()) == 3  # update 3 logged, checkpoint at 2
    resumed_dir, resumed = run_training(None, None, resume=killed, progress=False)
    assert len(resumed) == 4 and [m["update"] for m in resumed] == [1.0, 2.0, 3.0, 4.0]
    assert _comparable(resumed) == _comparable(history)
    a = LMPolicy.from_pretrained(straight_dir.checkpoint_path, device="cpu")
    b = LMPolicy.from_pretrained(resumed_dir.checkpoint_path, device="cpu")
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    # The KL reference is the model the run started from, saved once: not the checkpoint it resumed from.
    for name in ("config.json", "metrics.jsonl", "curve.png", "checkpoint/trainer.pt", "reference"):
        assert (resumed_dir.path / name).exists()
    assert list((resumed_dir.path / "tb").iterdir())
    config = json.loads((resumed_dir.path / "config.json").read_text())
    assert config["run"]["algo"] == algo and resumed_dir.path.name.startswith(
        f"codegym-Arith-Program-v0__{algo}__0__"
    )


@pytest.mark.slow
def test_the_main_job_runs_end_to_end_and_reports_honestly(tmp_path: Path) -> None:
    # `make demo` in short: the harness check, held-out pass@1 before and after, a run directory with
    # the curve; its exit status says whether held-out pass@1 rose, as eval_after.json shows.
    proc = subprocess.run(
        [sys.executable, "-m", "codegym", "demo", "--minutes", "0.1", "--eval-samples", "1", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout
    assert "harness: 107/107 references pass, 0/107 junk programs pass: OK" in out, out + proc.stderr
    assert "held-out pass@1 before:" in out and "held-out pass@1 after:" in out
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "curve.png").stat().st_size > 0
    before = json.loads((run_dir / "eval_before.json").read_text())["pass_at_k"]["1"]
    after = json.loads((run_dir / "eval_after.json").read_text())["pass_at_k"]["1"]
    assert proc.returncode == (0 if after > before else 1), out
    assert ("check: held-out pass@1 rose: OK" in out) == (after > before)
