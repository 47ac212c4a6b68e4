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
``ArithIO``           arith         examples only: the prompt shows input/output examples, no expression
``ListOpsIO``         listops       examples only: the prompt shows input/output examples, no steps
====================  ============  =====================================================================

The ``...IO`` ids make the env with ``examples_only=True`` (see :data:`EXAMPLES_ONLY_SUITE_IDS`).

Every id also has a ``vector_entry_point``: ``gym.make_vec(id, num_envs=n)`` gives a
:class:`~codegym.envs.vector.CodeVectorEnv` that executes its programs as one batch.
"""

from __future__ import annotations

from typing import Any

from gymnasium.envs.registration import register, registry

__all__ = ["ENV_KINDS", "EXAMPLES_ONLY_SUITE_IDS", "SUITE_IDS", "env_ids", "register_envs"]

SUITE_IDS: dict[str, str] = {
    "HumanEval": "humaneval",
    "Basic": "basic",
    "Arith": "arith",
    "ListOps": "listops",
    "MBPP": "mbpp",
    "APPS": "apps",
}
"""The suite part of an id -> the registered suite name."""

EXAMPLES_ONLY_SUITE_IDS: dict[str, str] = {"ArithIO": "arith", "ListOpsIO": "listops"}
"""The suite part of an examples-only id -> the suite, loaded with ``examples_only=True``.

Their specs carry ``kwargs={"suite": name, "examples_only": True}``: an environment argument, not a
``suite_kwargs`` entry, so that ``gym.make(id, suite_kwargs={...})`` keeps the variant."""

ENV_KINDS: dict[str, tuple[str, str]] = {
    "Program": ("codegym.envs.program:ProgramEnv", "codegym.envs.vector:make_program_vector"),
    "Repair": ("codegym.envs.repair:RepairEnv", "codegym.envs.vector:make_repair_vector"),
    "Token": ("codegym.envs.token:TokenEnv", "codegym.envs.vector:make_token_vector"),
}
"""The kind part of an id -> (entry point, vector entry point)."""

VERSION = 0


def _suite_parts() -> list[tuple[str, str, dict[str, Any]]]:
    """(suite part of the id, suite name, spec kwargs) of every id, plain suites first."""
    plain = [(part, name, {"suite": name}) for part, name in SUITE_IDS.items()]
    io = [
        (part, name, {"suite": name, "examples_only": True}) for part, name in EXAMPLES_ONLY_SUITE_IDS.items()
    ]
    return plain + io


def env_ids(*, include_data_suites: bool = True) -> list[str]:
    """Return every CodeGym id; MBPP/APPS ids (which need a data path) only if ``include_data_suites``."""
    return [
        f"codegym/{part}-{kind}-v{VERSION}"
        for part, name, _ in _suite_parts()
        if include_data_suites or name not in ("mbpp", "apps")
        for kind in ENV_KINDS
    ]


def register_envs() -> list[str]:
    """Register every CodeGym id that is not registered yet; return all ids. Safe to call twice."""
    ids = []
    for part, _, kwargs in _suite_parts():
        for kind, (entry_point, vector_entry_point) in ENV_KINDS.items():
            env_id = f"codegym/{part}-{kind}-v{VERSION}"
            ids.append(env_id)
            if env_id not in registry:
                register(
                    id=env_id,
                    entry_point=entry_point,
                    vector_entry_point=vector_entry_point,
                    kwargs=dict(kwargs),
                )
    return ids
