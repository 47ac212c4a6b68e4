"""LLM policies, evaluation and trainers (installed as ``codegym.agents``).

The names below load on first use, so ``import codegym.agents`` works without the ``train`` extra; using a
name that needs PyTorch or ``transformers`` without them raises an ImportError naming the extra.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "LMPolicy": "codegym.agents.policy",
    "SampleOutput": "codegym.agents.policy",
    "ScoreOutput": "codegym.agents.policy",
    "StepOutput": "codegym.agents.policy",
    "resolve_device": "codegym.agents.policy",
    "evaluate": "codegym.agents.evaluation",
    "EvalReport": "codegym.agents.evaluation",
    "estimate_pass_at_k": "codegym.agents.evaluation",
    "REINFORCE": "codegym.agents.reinforce",
    "REINFORCEConfig": "codegym.agents.reinforce",
    "PPO": "codegym.agents.ppo",
    "PPOConfig": "codegym.agents.ppo",
    "ExpertIteration": "codegym.agents.expert_iteration",
    "ExpertIterationConfig": "codegym.agents.expert_iteration",
    "Candidate": "codegym.agents.search",
    "RerankReport": "codegym.agents.search",
    "Verifier": "codegym.agents.search",
    "lever_scores": "codegym.agents.search",
    "rerank_evaluate": "codegym.agents.search",
    "train_verifier": "codegym.agents.search",
    "RunConfig": "codegym.agents.train",
    "run_training": "codegym.agents.train",
}

__all__ = sorted(_EXPORTS)

_NEEDS = ("torch", "transformers", "tokenizers", "safetensors")


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'codegym.agents' has no attribute {name!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name in _NEEDS or (exc.name or "").split(".")[0] in _NEEDS:
            raise ImportError(
                f"codegym.agents.{name} needs {exc.name!r}, which is not installed: "
                "pip install 'codegym[train]' (see the README's set-up)"
            ) from exc
        raise
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
