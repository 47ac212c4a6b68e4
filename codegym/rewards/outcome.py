"""Execution-outcome rewards: functions of the verdict and per-test outcomes of an :class:`ExecutionResult`.

Every function here is pure and cheap: it reads ``result`` (and, for :func:`compiles`, the program text)
and never runs code. Statuses are grouped as follows (see :data:`codegym.execution.result.STATUSES`):

========================  ====================================================================
group                     statuses
========================  ====================================================================
passed                    ``passed``
failed tests              ``failed``
syntax / compile error    ``syntax_error``
runtime error             ``runtime_error``, ``timeout``, ``memory_limit``, ``output_limit``,
                          ``sandbox_error``
========================  ====================================================================

``sandbox_error`` is the executor's own fault, not a verdict on the program; the graded rewards score it
like a runtime error so that a program can never earn more by breaking the sandbox than by failing
honestly.
"""

from __future__ import annotations

import ast
import warnings

from codegym.execution.result import ExecutionResult
from codegym.rewards.base import check_reward_args
from codegym.tasks import Task

RUNTIME_ERROR_STATUSES: frozenset[str] = frozenset(
    {"runtime_error", "timeout", "memory_limit", "output_limit", "sandbox_error"}
)
"""Statuses that the graded rewards (CodeRL, RLTF) score as a runtime error."""

CODERL_SYNTAX_ERROR = -1.0
CODERL_RUNTIME_ERROR = -0.6
CODERL_FAILED = -0.3
CODERL_PASSED = 1.0


def pass_fail(task: Task, program: str, result: ExecutionResult) -> float:
    """Sparse outcome reward: 1.0 if every hidden test passed, else 0.0.

    Formula: ``R = 1[status == "passed"]`` (the unit-test reward of CodeRL, Le et al. 2022, and of most
    RL-for-code work since).

    Args:
        task: The task (unused; part of the reward contract).
        program: The candidate program (unused).
        result: Its execution result.

    Returns:
        1.0 or 0.0.
    """
    check_reward_args("pass_fail", result=result)
    return 1.0 if result.status == "passed" else 0.0


def pass_rate(task: Task, program: str, result: ExecutionResult) -> float:
    """Partial-credit reward: the fraction of hidden tests passed, in [0, 1].

    Formula: ``R = (#passed tests) / (#tests)``, 0.0 when no test ran (a syntax error runs none).

    Args:
        task: The task (unused).
        program: The candidate program (unused).
        result: Its execution result.

    Returns:
        ``result.pass_rate``.
    """
    check_reward_args("pass_rate", result=result)
    return float(result.pass_rate)


def coderl_graded(task: Task, program: str, result: ExecutionResult) -> float:
    """CodeRL's graded outcome reward (Le et al. 2022, "CodeRL", eq. for r(W)).

    Formula::

        R = -1.0  if the program does not compile (syntax_error)
            -0.6  if it raises at run time (runtime_error, timeout, memory/output limit, sandbox_error)
            -0.3  if it runs but fails a test (failed)
            +1.0  if every test passes (passed)

    Args:
        task: The task (unused).
        program: The candidate program (unused).
        result: Its execution result.

    Returns:
        One of -1.0, -0.6, -0.3, 1.0.
    """
    check_reward_args("coderl_graded", result=result)
    status = result.status
    if status == "passed":
        return CODERL_PASSED
    if status == "failed":
        return CODERL_FAILED
    if status == "syntax_error":
        return CODERL_SYNTAX_ERROR
    if status in RUNTIME_ERROR_STATUSES:
        return CODERL_RUNTIME_ERROR
    raise ValueError(f"task {result.task_id or task.task_id}: unknown execution status {status!r}")


def rltf_adaptive(task: Task, program: str, result: ExecutionResult) -> float:
    """RLTF's adaptive feedback reward (Liu et al. 2023, "RLTF", coarse + adaptive feedback).

    Like :func:`coderl_graded`, except that a program that runs but fails some tests earns credit for
    the tests it passes::

        R = -1.0                       syntax_error
            -0.6                       runtime error group (see module docstring)
            -0.3 + 1.3 * pass_rate     failed  (pass_rate in [0, 1), so R in [-0.3, 1.0))
            +1.0                       passed

    Args:
        task: The task (unused).
        program: The candidate program (unused).
        result: Its execution result.

    Returns:
        A float in [-1, 1].
    """
    check_reward_args("rltf_adaptive", result=result)
    if result.status == "failed":
        return CODERL_FAILED + (CODERL_PASSED - CODERL_FAILED) * float(result.pass_rate)
    return coderl_graded(task, program, result)


def program_compiles(program: str) -> bool:
    """Return True if ``program`` compiles as Python source (``compile(program, ..., "exec")``).

    Warnings raised while compiling (e.g. invalid escape sequences) are ignored; null bytes and
    recursion overflows in the parser count as not compiling.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(program, "<candidate>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True


def compiles(task: Task, program: str, result: ExecutionResult) -> float:
    """PPOCoder's compiler signal (Shojaee et al. 2023): +1.0 if the program compiles, -1.0 otherwise.

    Decided from the program text (Python's own parser), not from the execution status, so it agrees
    with the executor's ``syntax_error`` verdict and also works on a result of any status. On its own this
    reward is trivially gamed (``print("hello world")`` earns the maximum; see docs/rewards.md).

    Args:
        task: The task (unused).
        program: The candidate program.
        result: Its execution result (unused).

    Returns:
        1.0 or -1.0.
    """
    check_reward_args("compiles", program=program)
    return 1.0 if program_compiles(program) else -1.0
