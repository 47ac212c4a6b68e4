"""Helpers shared by the reward wrappers: what code an environment holds, and info bookkeeping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym


def is_token_env(env: gym.Env) -> bool:
    """True for a token-level environment (one exposing ``current_text``, as :class:`TokenEnv` does)."""
    return hasattr(env.unwrapped, "current_text")


def current_code(env: gym.Env) -> str:
    """The program an environment holds now: the token env's program so far, else the last program run."""
    base = env.unwrapped
    if hasattr(base, "current_text"):
        return str(base.current_program)
    return str(getattr(base, "last_program", None) or "")


def program_prefix(env: gym.Env) -> str:
    """The text a token environment puts before the generated body (the prompt for completion tasks)."""
    base = env.unwrapped
    # TokenEnv keeps prefix + body + suffix; the prefix is what current_program starts with besides the body.
    return str(getattr(base, "program_prefix", getattr(base, "_prefix", "")))


def add_components(info: Mapping[str, Any], pieces: Mapping[str, float], **extra: Any) -> dict[str, Any]:
    """A copy of ``info`` with ``pieces`` added to ``info["reward_components"]`` and ``extra`` keys set.

    The environment's own dict is never changed (it may be reused or shared).
    """
    out = dict(info)
    components = dict(out.get("reward_components") or {})
    components.update(pieces)
    out["reward_components"] = components
    out.update(extra)
    return out
