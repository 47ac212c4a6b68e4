"""Completions per second of CodeGym's REINFORCE (GRPO baseline) against TRL's ``GRPOTrainer``.

Same model (the embedded default, a fresh copy for each trainer), same prompts (the train split of
``arith`` with ``n=2000, seed=2, difficulty=[1, 2, 3]``), same batch (32 completions = 8 prompts x 4),
same completion budget, same learning rate, no KL term, and the same CodeGym reward: ours through the
program-level vector env, TRL's through ``codegym.rewards.trl_reward_func`` on the same executor
settings. Each round times ``--updates`` optimizer steps of each trainer after two warm-up steps,
alternating which one goes first; the ratio is per round, the median over rounds is reported.

TRL is needed only here: ``pip install trl==1.16.0``. Run: ``python bench/trainer_throughput.py``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from typing import Any

import gymnasium as gym
import torch
from codegym.agents.policy import LMPolicy
from codegym.agents.reinforce import REINFORCE, REINFORCEConfig

import codegym

SUITE_KWARGS = {"n": 2000, "seed": 2, "difficulty": [1, 2, 3]}
BATCH, GROUP = 32, 4


def _ours(updates: int, max_new_tokens: int, lr: float, seed: int) -> float:
    """Completions/s of CodeGym's REINFORCE over ``updates`` updates (after 2 warm-up updates)."""
    policy = LMPolicy.from_pretrained("default", device="cpu")
    envs = gym.make_vec("codegym/Arith-Program-v0", num_envs=BATCH, split="train", suite_kwargs=SUITE_KWARGS)
    config = REINFORCEConfig(
        baseline="grpo", group_size=GROUP, learning_rate=lr, max_new_tokens=max_new_tokens, seed=seed
    )
    trainer = REINFORCE(policy, envs, config)
    try:
        trainer.learn(2)
        start = time.perf_counter()
        trainer.learn(updates)
        return updates * BATCH / (time.perf_counter() - start)
    finally:
        envs.close()


def _trl(updates: int, max_new_tokens: int, lr: float, seed: int) -> float:
    """Completions/s of TRL's GRPOTrainer over ``updates`` steps (after 2 warm-up steps)."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from codegym.rewards import trl_reward_func

    policy = LMPolicy.from_pretrained("default", device="cpu")
    tasks = list(codegym.load_suite("arith", **SUITE_KWARGS).split("train"))
    data = Dataset.from_dict({"prompt": [t.prompt for t in tasks], "task_id": [t.task_id for t in tasks]})
    reward = trl_reward_func(tasks)
    stamps: list[float] = []

    class _Clock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(
            output_dir=out,
            use_cpu=True,
            bf16=False,
            per_device_train_batch_size=BATCH,
            num_generations=GROUP,
            max_completion_length=max_new_tokens,
            learning_rate=lr,
            lr_scheduler_type="constant",
            warmup_steps=0,
            beta=0.0,
            temperature=1.0,
            max_steps=updates + 2,
            logging_steps=10_000,
            save_strategy="no",
            report_to=[],
            disable_dropout=True,
            seed=seed,
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        trainer = GRPOTrainer(
            model=policy.model,
            reward_funcs=reward,
            args=args,
            train_dataset=data,
            processing_class=policy.tokenizer,
            callbacks=[_Clock()],
        )
        try:
            trainer.train()
        finally:
            reward.close()
    return updates * BATCH / (stamps[-1] - stamps[1])


def main() -> None:
    """Print each round's completions/s for both trainers and the median ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=20, help="timed updates per trainer and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5 renames, not ours
    print(
        f"default model on cpu, torch threads {torch.get_num_threads()}, batch {BATCH} = "
        f"{BATCH // GROUP} prompts x {GROUP}, max_new_tokens {args.max_new_tokens}, "
        f"{args.updates} timed updates per trainer and round"
    )
    ratios = []
    for r in range(args.rounds):
        if r % 2 == 0:
            ours = _ours(args.updates, args.max_new_tokens, args.learning_rate, r)
            theirs = _trl(args.updates, args.max_new_tokens, args.learning_rate, r)
        else:
            theirs = _trl(args.updates, args.max_new_tokens, args.learning_rate, r)
            ours = _ours(args.updates, args.max_new_tokens, args.learning_rate, r)
        ratios.append(ours / theirs)
        print(
            f"round {r}: CodeGym REINFORCE {ours:6.1f} completions/s, TRL GRPOTrainer {theirs:6.1f}/s, "
            f"ratio {ratios[-1]:.2f}",
            flush=True,
        )
    print(
        f"median ratio {statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f}; "
        "target >= 1.5)"
    )


if __name__ == "__main__":
    main()
