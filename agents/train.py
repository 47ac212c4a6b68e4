"""``codegym train``: a training run that leaves a directory anyone can inspect and resume.

A run is ``runs/<env>__<algo>__<seed>__<time>/`` holding:

* ``config.json``: the command's arguments and the algorithm's config (what ``--resume`` reads back);
* ``metrics.jsonl``: one JSON line per update (namespaced keys, see docs/agents.md), and TensorBoard
  events in ``tb/``;
* ``checkpoint/``: the policy (Hugging Face format) and ``trainer.pt`` (optimizer, KL controller,
  baseline, update count, RNG states), written every ``--checkpoint-every`` updates and at the end;
* ``eval_before.json`` / ``eval_after.json``: held-out pass@1 (``codegym eval`` on the test split);
* ``curve.png``: the learning curve.

``--resume RUN`` restores the checkpoint and goes on with the same config until ``--updates``; each
update's sampling seed derives from the config's seed and the update number, so a resumed run takes the
same steps as one that never stopped. A non-finite loss stops the run, names the update, and leaves a
checkpoint of the last good state.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ALGOS = ("reinforce", "ppo", "expert-iteration")
"""The values of ``codegym train --algo``."""

__all__ = ["ALGOS", "RunConfig", "Run", "add_parser", "make_trainer", "plot_curve", "run_training"]


@dataclasses.dataclass
class RunConfig:
    """What a run is, besides the algorithm's own hyper-parameters."""

    env: str = "codegym/Arith-Program-v0"
    """Gymnasium id: program level (prompt text -> program text) or, for PPO, token level (-Token-)."""
    algo: str = "reinforce"
    """reinforce, ppo or expert-iteration."""
    model: str = "default"
    """Policy to start from: default, a local path, or a cached hub id."""
    num_envs: int = 32
    """Sub-environments per rollout (a multiple of the group size)."""
    updates: int = 100
    """Total updates of the run."""
    minutes: float = 0.0
    """Stop after this many minutes of training (0: no limit)."""
    suite_kwargs: str = "n=2000,seed=2,difficulty=1;2;3"
    """Suite arguments of the training env (its train split), key=value pairs; lists use ';'."""
    reward: str = ""
    """Training reward, a name from codegym.rewards.REWARDS such as coderl_graded (empty: the env's own)."""
    eval_suite_kwargs: str = "n=600,seed=1,difficulty=1;2;3"
    """Suite arguments of the held-out evaluation (its test split)."""
    eval_samples: int = 4
    """Samples per held-out task for pass@1 (0: no evaluation)."""
    eval_every: int = 0
    """Updates between held-out checks during training, logged as eval/pass_at_1 (0: before/after only)."""
    checkpoint_every: int = 25
    """Updates between checkpoints."""
    device: str = "auto"
    """auto (CUDA, then MPS, then CPU), cpu, cuda, ..."""
    run_dir: str = "runs"
    """Parent directory of runs."""
    seed: int = 0
    """One seed for everything (copied into the algorithm's config)."""


def parse_suite_kwargs(text: str) -> dict[str, Any]:
    """``"n=500,seed=1,difficulty=1;2;3"`` -> ``{"n": 500, "seed": 1, "difficulty": [1, 2, 3]}``.

    Raises:
        ValueError: for a pair without ``=``.
    """
    out: dict[str, Any] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in pair:
            raise ValueError(f"suite argument {pair!r} is not key=value")
        key, value = pair.split("=", 1)
        parts = value.split(";")
        converted = [_number(v) for v in parts]
        out[key.strip()] = converted if len(parts) > 1 else converted[0]
    return out


def _number(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _algo_config_class(algo: str) -> type:
    if algo == "reinforce":
        from codegym.agents.reinforce import REINFORCEConfig

        return REINFORCEConfig
    if algo == "ppo":
        from codegym.agents.ppo import PPOConfig

        return PPOConfig
    if algo == "expert-iteration":
        from codegym.agents.expert_iteration import ExpertIterationConfig

        return ExpertIterationConfig
    raise ValueError(f"codegym train: --algo must be one of {', '.join(ALGOS)}, got {algo!r}")


def make_envs(run: RunConfig, policy: Any = None, algo_config: Any = None) -> Any:
    """The training vector env: the train split of ``run.env``'s suite with ``run.suite_kwargs``.

    A token-level id (``...-Token-v0``) gets the policy's tokenizer (its actions are the policy's token
    ids) and the algorithm's ``max_new_tokens`` as its token budget.
    """
    import gymnasium as gym

    import codegym  # noqa: F401  (registers the ids)

    kwargs: dict[str, Any] = {"split": "train", "suite_kwargs": parse_suite_kwargs(run.suite_kwargs)}
    if is_token_env_id(run.env):
        if policy is None:
            raise ValueError(f"codegym train: the token-level env {run.env} needs the policy's tokenizer")
        kwargs["tokenizer"] = policy.tokenizer
        if algo_config is not None:
            kwargs["max_new_tokens"] = int(algo_config.max_new_tokens)
    if run.reward:
        from codegym.rewards import get_reward

        kwargs["reward_fn"] = get_reward(run.reward)
    return gym.make_vec(run.env, num_envs=run.num_envs, **kwargs)


def is_token_env_id(env_id: str) -> bool:
    """Whether a registered id is a token-level env (its entry point is a ``TokenEnv``)."""
    import gymnasium as gym

    import codegym  # noqa: F401  (registers the ids)

    entry = gym.spec(env_id).entry_point
    return isinstance(entry, str) and entry.endswith(":TokenEnv")


def make_trainer(run: RunConfig, algo_config: Any, policy: Any = None) -> Any:
    """Build the policy (unless given), the envs and the trainer for ``run``."""
    from codegym.agents.policy import LMPolicy

    if policy is None:
        policy = LMPolicy.from_pretrained(run.model, device=run.device, value_head=run.algo == "ppo")
    envs = make_envs(run, policy, algo_config)
    if run.algo == "reinforce":
        from codegym.agents.reinforce import REINFORCE

        return REINFORCE(policy, envs, algo_config)
    if run.algo == "expert-iteration":
        from codegym.agents.expert_iteration import ExpertIteration

        return ExpertIteration(policy, envs, algo_config)
    from codegym.agents.ppo import PPO

    return PPO(policy, envs, algo_config)


def heldout_tasks(run: RunConfig) -> list[Any]:
    """The held-out tasks: the test split of the env's suite built with ``eval_suite_kwargs``.

    An examples-only id (``codegym/ArithIO-Program-v0``) is evaluated on the examples-only variant: its
    spec's ``examples_only`` joins the suite arguments, as it does when the env is made.
    """
    import gymnasium as gym
    from codegym.envs.base import with_examples_only

    import codegym

    spec_kwargs = gym.spec(run.env).kwargs or {}
    suite = spec_kwargs.get("suite")
    if not isinstance(suite, str):
        raise ValueError(f"codegym train: cannot tell the suite of {run.env} for the held-out evaluation")
    suite_kwargs = with_examples_only(
        parse_suite_kwargs(run.eval_suite_kwargs),
        spec_kwargs.get("examples_only", False),
        where=f"codegym train ({run.env})",
    )
    return list(codegym.load_suite(suite, **suite_kwargs).split("test"))


class Run:
    """A run directory: config, metrics (JSONL + TensorBoard), checkpoints, evaluation, curve."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.metrics_path = path / "metrics.jsonl"
        self.checkpoint_path = path / "checkpoint"
        self.reference_path = path / "reference"
        self._writer: Any = None

    @classmethod
    def create(cls, run: RunConfig, algo_config: Any) -> Run:
        """Make ``runs/<env>__<algo>__<seed>__<time>/`` and write its config."""
        env_name = run.env.replace("/", "-")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(run.run_dir) / f"{env_name}__{run.algo}__{run.seed}__{stamp}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = Path(run.run_dir) / f"{env_name}__{run.algo}__{run.seed}__{stamp}-{suffix}"
        path.mkdir(parents=True)
        out = cls(path)
        config = {"run": dataclasses.asdict(run), "algo_config": dataclasses.asdict(algo_config)}
        (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        return out

    def read_config(self) -> tuple[RunConfig, Any]:
        """The run's configs, as written by :meth:`create`."""
        data = json.loads((self.path / "config.json").read_text())
        run = RunConfig(**data["run"])
        algo_config = _algo_config_class(run.algo)(**data["algo_config"])
        return run, algo_config

    def log(self, metrics: dict[str, float]) -> None:
        """Append one update's metrics to metrics.jsonl and TensorBoard."""
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(metrics) + "\n")
        writer = self._tensorboard()
        if writer is not None:
            step = int(metrics["update"])
            for key, value in metrics.items():
                if key != "update" and isinstance(value, float) and np.isfinite(value):
                    writer.add_scalar(key, value, step)
            writer.flush()

    def _tensorboard(self) -> Any:
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is in the train extra; without it, JSONL only
                self._writer = False
                return None
            self._writer = SummaryWriter(str(self.path / "tb"))
        return self._writer or None

    def history(self) -> list[dict[str, float]]:
        """The metrics logged so far."""
        if not self.metrics_path.exists():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text().splitlines() if line.strip()]

    def truncate_history(self, updates: int) -> None:
        """Keep the first ``updates`` lines of metrics.jsonl (a resumed run rewrites what came after)."""
        kept = [m for m in self.history() if int(m["update"]) <= updates]
        self.metrics_path.write_text("".join(json.dumps(m) + "\n" for m in kept))

    def save_checkpoint(self, trainer: Any) -> None:
        """Write the policy and the trainer state (atomically: a crash mid-write keeps the old one)."""
        tmp = self.path / "checkpoint.tmp"
        if tmp.exists():
            _rmtree(tmp)
        trainer.policy.save_pretrained(tmp)
        state = {
            "trainer": trainer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
        }
        torch.save(state, tmp / "trainer.pt")
        if self.checkpoint_path.exists():
            _rmtree(self.checkpoint_path)
        tmp.rename(self.checkpoint_path)

    def load_checkpoint(self, trainer: Any) -> None:
        """Restore the trainer state (the policy was loaded from the checkpoint directory)."""
        state = torch.load(self.checkpoint_path / "trainer.pt", weights_only=False)
        trainer.load_state_dict(state["trainer"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])

    def close(self) -> None:
        """Close the TensorBoard writer."""
        if self._writer:
            self._writer.close()


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


def plot_curve(history: list[dict[str, float]], path: Path, title: str) -> Path | None:
    """Save the learning curve (pass rate or reward per update, with a moving average) as a PNG."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = "rollout/pass_rate" if "rollout/pass_rate" in history[0] else "rollout/reward"
    x = [m["update"] for m in history]
    y = [m[key] for m in history]
    window = max(1, len(y) // 10)
    smooth = np.convolve(y, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot(x, y, alpha=0.35, label=key)
    ax.plot(x[window - 1 :], smooth, label=f"moving average ({window})")
    ax.set_xlabel("update")
    ax.set_ylabel(key.split("/")[-1])
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def run_training(
    run: RunConfig,
    algo_config: Any,
    *,
    resume: str | Path | None = None,
    progress: bool = True,
    policy: Any = None,
    on_update: Callable[[dict[str, float]], None] | None = None,
) -> tuple[Run, list[dict[str, float]]]:
    """Train ``run`` (or resume one) and return the run directory and its whole metrics history.

    Raises:
        FloatingPointError: when a loss is not finite (after saving the last good checkpoint).
    """
    from codegym.agents.policy import LMPolicy
    from tqdm.auto import tqdm

    if resume is not None:
        out = Run(Path(resume))
        run, algo_config = out.read_config()
        policy = LMPolicy.from_pretrained(out.checkpoint_path, device=run.device)
        if out.reference_path.exists():  # the KL term stays anchored to the model the run started from
            policy.use_reference(LMPolicy.from_pretrained(out.reference_path, device=run.device))
        trainer = make_trainer(run, algo_config, policy)
        out.load_checkpoint(trainer)
        out.truncate_history(trainer.update_count)
    else:
        algo_config = dataclasses.replace(algo_config, seed=run.seed)
        torch.manual_seed(run.seed)
        np.random.seed(run.seed)
        random.seed(run.seed)
        out = Run.create(run, algo_config)
        trainer = make_trainer(run, algo_config, policy)
        if trainer.reference is not None and not trainer.policy.lora:
            trainer.reference.save_pretrained(out.reference_path)
        if run.eval_samples > 0:
            _evaluate_into(trainer.policy, run, out.path / "eval_before.json")
    started = time.perf_counter()
    bar = tqdm(total=run.updates, initial=trainer.update_count, desc=f"{run.algo}", disable=not progress)
    try:
        while trainer.update_count < run.updates:
            if run.minutes and time.perf_counter() - started > 60 * run.minutes:
                break
            try:
                metrics = trainer.train_step()
            except FloatingPointError as exc:
                bar.close()
                raise FloatingPointError(
                    f"{exc}; the last good checkpoint is in {out.checkpoint_path} (update "
                    f"{_checkpoint_update(out)}); resume with --resume {out.path}"
                ) from exc
            if run.eval_every > 0 and run.eval_samples > 0 and trainer.update_count % run.eval_every == 0:
                report = _evaluate(trainer.policy, run)
                metrics["eval/pass_at_1"] = float(report["pass_at_k"]["1"])
            out.log(metrics)
            if on_update is not None:
                on_update(metrics)
            bar.update(1)
            postfix = {
                "pass_rate": f"{metrics.get('rollout/pass_rate', float('nan')):.2f}",
                "kl": f"{metrics['rollout/kl_ref']:.3f}",
                "reward": f"{metrics['rollout/reward']:.2f}",
            }
            if "eval/pass_at_1" in metrics:
                postfix["heldout"] = f"{metrics['eval/pass_at_1']:.3f}"
            bar.set_postfix(postfix)
            if trainer.update_count % run.checkpoint_every == 0:
                out.save_checkpoint(trainer)
    finally:
        bar.close()
    out.save_checkpoint(trainer)
    history = out.history()
    plot_curve(history, out.path / "curve.png", f"{run.env} {run.algo} seed {run.seed}")
    if run.eval_samples > 0:
        _evaluate_into(trainer.policy, run, out.path / "eval_after.json")
    out.close()
    return out, history


def _checkpoint_update(out: Run) -> int | str:
    path = out.checkpoint_path / "trainer.pt"
    if not path.exists():
        return "none yet"
    return int(torch.load(path, weights_only=False)["trainer"]["update_count"])


def _evaluate(policy: Any, run: RunConfig) -> dict[str, Any]:
    """Held-out pass@1 of ``policy`` on :func:`heldout_tasks` (the report as a dict)."""
    from codegym.agents.evaluation import evaluate

    import codegym

    tasks = heldout_tasks(run)
    report = evaluate(
        policy, codegym.TaskSuite("heldout", tasks), split=None, n=run.eval_samples, k=(1,), progress=False
    )
    return report.to_dict()


def _evaluate_into(policy: Any, run: RunConfig, path: Path) -> dict[str, Any]:
    data = _evaluate(policy, run)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return data


# ---- the command line ------------------------------------------------------------------------------------


def _field_help(cls: type) -> dict[str, str]:
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
                docs[node.target.id] = str(nxt.value.value)
    return docs


def _add_fields(parser: argparse.ArgumentParser | Any, cls: type, skip: tuple[str, ...] = ()) -> None:
    docs = _field_help(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        text = f"{docs.get(f.name, '')} (default {f.default})"
        if isinstance(f.default, bool):
            parser.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        else:
            parser.add_argument(flag, dest=f.name, type=type(f.default), default=None, help=text)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``codegym train``: every RunConfig field and every field of both algorithm configs is a flag."""
    from codegym.agents.expert_iteration import ExpertIterationConfig
    from codegym.agents.ppo import PPOConfig
    from codegym.agents.reinforce import REINFORCEConfig

    p = sub.add_parser(
        "train",
        help="train an LLM policy with PPO, REINFORCE or expert iteration (program level; PPO also at "
        "token level)",
    )
    _add_fields(p, RunConfig)
    p.add_argument("--resume", default=None, metavar="RUN", help="resume the run in this directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    seen = {f.name for f in dataclasses.fields(RunConfig)}
    for cls, algo in ((REINFORCEConfig, "reinforce"), (PPOConfig, "ppo"), (ExpertIterationConfig, ALGOS[2])):
        group = p.add_argument_group(f"{cls.__name__} (--algo {algo})")
        names = tuple(f.name for f in dataclasses.fields(cls) if f.name in seen)
        _add_fields(group, cls, skip=names)
        seen |= {f.name for f in dataclasses.fields(cls)}
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    values = vars(args)
    try:
        run = RunConfig(
            **{f.name: values[f.name] for f in dataclasses.fields(RunConfig) if values[f.name] is not None}
        )
        cls = _algo_config_class(run.algo)
        algo_config = cls(
            **{f.name: values[f.name] for f in dataclasses.fields(cls) if values.get(f.name) is not None}
        )
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        out, history = run_training(run, algo_config, resume=args.resume, progress=not args.quiet)
    except FloatingPointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"run: {out.path}  ({len(history)} updates)")
    for name in ("eval_before.json", "eval_after.json"):
        path = out.path / name
        if path.exists():
            data = json.loads(path.read_text())
            print(f"{name}: held-out pass@1 = {data['pass_at_k']['1']:.3f}")
    print(f"curve: {out.path / 'curve.png'}")
    return 0
