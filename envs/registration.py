"""Registration of the ``codegym/<Suite>-<Program|Repair|Token>-v0`` ids with Gymnasium.

:func:`register_envs` runs on ``import codegym``. It imports nothing but Gymnasium's registry: entry
points are strings, so environments and suites load only when an id is made.

====================  ============  =====================================================================
id suite part         suite         notes
====================  ============  =====================================================================
``HumanEval``         humaneval     164 problems; Token ids use the byte tokenizer and complete the prompt
``Basic``             basic         original tasks
``Arith``             arith         procedural; Token ids use the 16-token DSL vocabulary (+ EOS)
``ListOps``           listops       procedural; Token ids use the 16-statement DSL vocabulary (+ EOS)
``MBPP``              mbpp          needs the data: ``gym.make(id, suite_kwargs={"path": ...})``
``APPS``              apps          needs the data: ``gym.make(id, suite_kwargs={"path": ...})``
====================  ============  =====================================================================

Every id also has a ``vector_entry_point``: ``gym.make_vec(id, num_envs=n)`` gives a
:class:`~codegym.envs.vector.CodeVectorEnv` that executes its programs as one batch.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

__all__ = ["ENV_KINDS", "SUITE_IDS", "env_ids", "register_envs"]

SUITE_IDS: dict[str, str] = {
    "HumanEval": "humaneval",
    "Basic": "basic",
    "Arith": "arith",
    "ListOps": "listops",
    "MBPP": "mbpp",
    "APPS": "apps",
}
"""The suite part of an id -> the registered suite name."""

ENV_KINDS: dict[str, tuple[str, str]] = {
    "Program": ("codegym.envs.program:ProgramEnv", "codegym.envs.vector:make_program_vector"),
    "Repair": ("codegym.envs.repair:RepairEnv", "codegym.envs.vector:make_repair_vector"),
    "Token": ("codegym.envs.token:TokenEnv", "codegym.envs.vector:make_token_vector"),
}
"""The kind part of an id -> (entry point, vector entry point)."""

VERSION = 0


def env_ids(*, include_data_suites: bool = True) -> list[str]:
    """Return every CodeGym id; MBPP/APPS ids (which need a data path) only if ``include_data_suites``."""
    return [
        f"codegym/{suite}-{kind}-v{VERSION}"
        for suite, name in SUITE_IDS.items()
        if include_data_suites or name not in ("mbpp", "apps")
        for kind in ENV_KINDS
    ]


def register_envs() -> list[str]:
    """Register every CodeGym id that is not registered yet; return all ids. Safe to call twice."""
    ids = []
    for suite, name in SUITE_IDS.items():
        for kind, (entry_point, vector_entry_point) in ENV_KINDS.items():
            env_id = f"codegym/{suite}-{kind}-v{VERSION}"
            ids.append(env_id)
            if env_id not in registry:
                register(
                    id=env_id,
                    entry_point=entry_point,
                    vector_entry_point=vector_entry_point,
                    kwargs={"suite": name},
                )
    return ids
