"""Gymnasium environments for code generation (installed as ``codegym.envs``).

* :class:`ProgramEnv`: one program per step (``Text`` spaces); a contextual bandit by default.
* :class:`RepairEnv`: several attempts with execution feedback in the observation.
* :class:`TokenEnv`: one token per step (``Discrete`` actions), execution at end-of-sequence.
* :class:`CodeVectorEnv`: a vector of them that executes its programs in one batch.
* Tokenizers (:mod:`codegym.envs.tokenizers`) and task samplers, including a curriculum
  (:mod:`codegym.envs.curriculum`).

The classes load on first access, so that ``import codegym`` (which registers the ids) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from codegym.envs.registration import env_ids, register_envs

_LAZY: dict[str, str] = {
    "CodeEnv": "codegym.envs.base",
    "ProgramEnv": "codegym.envs.program",
    "RepairEnv": "codegym.envs.repair",
    "TokenEnv": "codegym.envs.token",
    "CodeVectorEnv": "codegym.envs.vector",
    "Tokenizer": "codegym.envs.tokenizers",
    "ByteTokenizer": "codegym.envs.tokenizers",
    "DSLTokenizer": "codegym.envs.tokenizers",
    "HFTokenizer": "codegym.envs.tokenizers",
    "make_tokenizer": "codegym.envs.tokenizers",
    "TaskSampler": "codegym.envs.curriculum",
    "UniformSampler": "codegym.envs.curriculum",
    "CurriculumSampler": "codegym.envs.curriculum",
}

__all__ = [*sorted(_LAZY), "env_ids", "register_envs"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'codegym.envs' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
