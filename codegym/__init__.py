"""CodeGym: code generation as Gymnasium reinforcement-learning environments.

Typical use::

    import codegym, gymnasium as gym
    suite = codegym.load_suite("basic")
    with codegym.Executor() as ex:
        result = ex.run(suite[0], suite[0].reference)
    env = gym.make("codegym/Basic-Program-v0")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codegym.execution.result import ExecutionResult, TestOutcome
from codegym.suites import list_suites, load_suite, register_suite
from codegym.tasks import AssertTest, CallTest, StdioTest, Task, TaskError, TaskSuite, TestCase

if TYPE_CHECKING:
    from codegym.execution.executor import Executor

__version__ = "0.1.0"

__all__ = [
    "AssertTest",
    "CallTest",
    "ExecutionResult",
    "Executor",
    "StdioTest",
    "Task",
    "TaskError",
    "TaskSuite",
    "TestCase",
    "TestOutcome",
    "list_suites",
    "load_suite",
    "register_suite",
]


try:  # register the codegym/<Suite>-<Kind>-v0 ids with Gymnasium (light: entry points are strings)
    from codegym.envs.registration import register_envs as _register_envs

    _register_envs()
except ImportError:  # pragma: no cover - a partial install without the envs package
    pass


def __getattr__(name: str) -> Any:
    # The executor is imported on first use so that `import codegym` stays light.
    if name == "Executor":
        from codegym.execution.executor import Executor

        return Executor
    raise AttributeError(f"module 'codegym' has no attribute {name!r}")
