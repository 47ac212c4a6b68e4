"""``RepairEnv``: multi-turn program writing with execution feedback.

The observation is a ``Dict`` with the prompt, the executor's feedback on the previous attempt and the
previous attempt itself (both empty at reset). Each step executes one program. The episode ends with
``terminated=True`` when a program passes every hidden test, and with ``truncated=True`` when
``max_attempts`` attempts have failed. The feedback never reveals the expected value of a hidden test (the
executor only describes visible examples and exceptions).
"""

from __future__ import annotations

from typing import Any, Literal

from codegym.envs.program import ProgramEnv

from codegym.tasks import TaskSuite

__all__ = ["RepairEnv"]


class RepairEnv(ProgramEnv):
    """A :class:`ProgramEnv` with several attempts and feedback in the observation.

    Args:
        suite: A suite name or :class:`TaskSuite`.
        max_attempts: The attempt budget (at least 2).
        observation: ``"dict"`` (prompt, feedback, previous attempt); ``"text"`` hides the feedback.
        **kwargs: Every other argument of :class:`ProgramEnv`.

    Raises:
        ValueError: if ``max_attempts`` is below 2.
    """

    def __init__(
        self,
        suite: str | TaskSuite = "basic",
        *,
        max_attempts: int = 3,
        observation: Literal["text", "dict"] = "dict",
        **kwargs: Any,
    ) -> None:
        if type(max_attempts) is not int or max_attempts < 2:
            raise ValueError(
                f"RepairEnv: max_attempts must be an int >= 2, got {max_attempts!r} (use ProgramEnv for 1)"
            )
        super().__init__(suite, max_attempts=max_attempts, observation=observation, **kwargs)
