"""``DenseReward``: extra reward pieces during the episode, per completed line and per passing test."""

from __future__ import annotations

import codeop
import warnings
from collections.abc import Callable
from typing import Any, Literal, SupportsFloat

import gymnasium as gym
from gymnasium.core import ActType, ObsType

from codegym.rewards.outcome import program_compiles
from codegym.tasks import Task
from codegym.wrappers._common import add_components, is_token_env, program_prefix

LineScorer = Callable[[Task, str], float]
"""``scorer(task, code_so_far) -> float``: scores the program up to and including a completed line."""


def prefix_is_viable(code: str) -> bool:
    """True when ``code`` is valid Python or a valid beginning of it (an open block or bracket).

    Uses :func:`codeop.compile_command` (what the interactive interpreter uses to decide whether to wait
    for more input): complete and incomplete input are viable; a definite syntax error is not.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            codeop.compile_command(code, "<prefix>", "exec")
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError):
        return False
    return True


def score_parses(task: Task, code: str) -> float:
    """Line score ``"parses"``: +1.0 if the code so far is still a viable Python prefix, else -1.0."""
    return 1.0 if prefix_is_viable(code) else -1.0


def score_compiles(task: Task, code: str) -> float:
    """Line score ``"compiles"``: 1.0 if the code so far compiles as it stands (blocks closed), else 0.0."""
    return 1.0 if program_compiles(code) else 0.0


LINE_SCORERS: dict[str, LineScorer] = {"parses": score_parses, "compiles": score_compiles}


class DenseReward(gym.Wrapper[ObsType, ActType, ObsType, ActType], gym.utils.RecordConstructorArgs):
    """Add reward pieces during the episode: per completed line (token env) and per passing test.

    The environment's own reward (its ``reward_fn``, given at the executing step) is kept; the pieces are
    added to it and logged in ``info["dense"]`` and in ``info["reward_components"]`` as ``dense.line``
    and ``dense.tests``.

    * ``line`` (token environments only): each time the generated text completes a line (a newline is
      written), ``line_scale * scorer(task, code)`` where ``code`` is the program prefix plus the body up
      to that newline. Scorers: ``"parses"`` (+1 while the code is a viable Python prefix, -1 once it is
      not), ``"compiles"`` (1 if it compiles as it stands), or any ``scorer(task, code) -> float`` such
      as a process reward model. Several lines completed by one token are scored one by one.
    * ``tests`` (every environment, at executing steps): ``test_scale * (pass_rate_t - pass_rate_prev)``,
      credit per newly passing hidden test, where ``pass_rate_prev`` is the previous attempt's in this
      episode (0 at the start). Over an episode the pieces telescope to ``test_scale * final pass_rate``,
      so a repair agent cannot farm credit by breaking and fixing the same test.

    Dense line rewards are *not* policy invariant: with ``"parses"`` an agent can earn more by writing
    more valid lines. That is part of what CodeGym lets you study; :class:`PotentialShaping` is the
    shaping that provably leaves the optimal policy unchanged.

    Args:
        env: A CodeGym environment (token, program or repair).
        line_scorer: ``"parses"``, ``"compiles"``, a callable ``scorer(task, code) -> float``, or None
            for no line pieces.
        line_scale: Multiplier of the line piece.
        test_scale: Multiplier of the test piece (0 disables it).

    Raises:
        ValueError: for an unknown scorer name or a non-finite scale.
    """

    def __init__(
        self,
        env: gym.Env[ObsType, ActType],
        line_scorer: Literal["parses", "compiles"] | LineScorer | None = "parses",
        line_scale: float = 0.05,
        test_scale: float = 1.0,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self,
            _disable_deepcopy=True,
            line_scorer=line_scorer,
            line_scale=line_scale,
            test_scale=test_scale,
        )
        gym.Wrapper.__init__(self, env)
        if isinstance(line_scorer, str):
            if line_scorer not in LINE_SCORERS:
                raise ValueError(
                    f"DenseReward: unknown line scorer {line_scorer!r}; expected one of "
                    f"{', '.join(LINE_SCORERS)} or a callable scorer(task, code) -> float"
                )
            line_scorer = LINE_SCORERS[line_scorer]
        elif line_scorer is not None and not callable(line_scorer):
            raise ValueError(f"DenseReward: line_scorer must be a name or callable, got {line_scorer!r:.80}")
        for name, value in (("line_scale", line_scale), ("test_scale", test_scale)):
            if not isinstance(value, (int, float)) or value != value or abs(value) == float("inf"):
                raise ValueError(f"DenseReward: {name} must be a finite number, got {value!r}")
        self.line_scorer: LineScorer | None = line_scorer
        self.line_scale = float(line_scale)
        self.test_scale = float(test_scale)
        self._token_env = is_token_env(env)
        self._lines_done = 0
        self._last_pass_rate = 0.0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Reset the environment and the episode's line and test bookkeeping."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._lines_done = 0
        self._last_pass_rate = 0.0
        return obs, info

    def _line_piece(self) -> float:
        if self.line_scorer is None or not self._token_env:
            return 0.0
        base: Any = self.env.unwrapped
        body = str(base.current_text)
        newlines = [i for i, ch in enumerate(body) if ch == "\n"]
        if len(newlines) <= self._lines_done:
            return 0.0
        prefix = program_prefix(self.env)
        piece = 0.0
        for end in newlines[self._lines_done :]:
            piece += self.line_scale * float(self.line_scorer(base.task, prefix + body[: end + 1]))
        self._lines_done = len(newlines)
        return piece

    def _test_piece(self, info: dict[str, Any]) -> float | None:
        if "pass_rate" not in info or self.test_scale == 0.0:
            return None
        rate = float(info["pass_rate"])
        piece = self.test_scale * (rate - self._last_pass_rate)
        self._last_pass_rate = rate
        return piece

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step and add the line and test pieces to the reward."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        pieces = {"dense.line": self._line_piece()}
        tests = self._test_piece(info)
        if tests is not None:
            pieces["dense.tests"] = tests
        dense = sum(pieces.values())
        info = add_components(info, pieces, dense={k.split(".", 1)[1]: v for k, v in pieces.items()})
        return obs, float(reward) + dense, terminated, truncated, info
