"""``ProgramEnv``: the agent writes a whole program in one action (a contextual bandit by default).

Spaces:

* action: ``Text(max_length=max_program_chars, min_length=0, charset=PROGRAM_CHARSET)``, where
  :data:`PROGRAM_CHARSET` is printable ASCII (``string.printable``: letters, digits, punctuation, space,
  tab, newline, CR, VT, FF; 100 characters). ``step`` accepts any ``str`` up to ``max_program_chars``
  characters (a non-ASCII character in a comment is not an error); a longer string or a non-string raises.
* observation (``observation="text"``): ``Text(max_length=max_prompt_chars, min_length=0,
  charset=OBS_CHARSET)`` holding the prompt; :data:`PROGRAM_CHARSET` plus every character of the suite's
  prompts. ``max_prompt_chars`` defaults to the longest prompt of the suite, so no prompt is cut.
* observation (``observation="dict"``): ``Dict(prompt=..., feedback=Text(max_feedback_chars),
  previous=Text(max_program_chars))``: the executor's feedback on the previous attempt (status line plus
  ``result.feedback``) and the previous attempt itself; both empty at reset. Characters outside the charset
  become ``?`` and overlong text is cut (ending in ``...``).

With ``completion=True`` the program executed is ``task.prompt + action`` (for completion-style models
continuing a HumanEval-style prompt); otherwise the action is the full program.

Episodes: ``max_attempts=1`` (the default) is a one-step episode that always ends with ``terminated=True``.
With more attempts (see :class:`~codegym.envs.repair.RepairEnv`) the episode ends with ``terminated=True``
when a program passes and ``truncated=True`` when the attempt budget runs out.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any, Literal

from codegym.envs.base import CodeEnv, clip_text, max_length
from gymnasium import spaces

from codegym.execution.result import ExecutionResult
from codegym.tasks import TaskSuite

__all__ = ["OBS_CHARSET_BASE", "PROGRAM_CHARSET", "ProgramEnv"]

PROGRAM_CHARSET: str = string.printable
"""The action space's character set: printable ASCII including whitespace (100 characters)."""

OBS_CHARSET_BASE: str = string.printable
"""Characters every observation space contains; the suite's prompt characters are added to these."""

ProgramObs = Any  # str, or dict[str, str] with observation="dict"


class ProgramEnv(CodeEnv[ProgramObs, str]):
    """Observation: the task prompt (and feedback); action: a whole program as text.

    Args:
        suite: A suite name or :class:`TaskSuite` (see :class:`~codegym.envs.base.CodeEnv` for the task
            and executor arguments, passed as keywords).
        completion: Execute ``task.prompt + action`` instead of ``action``.
        max_attempts: Attempts per episode (1: a bandit; more: repair with feedback).
        observation: ``"text"`` (the prompt) or ``"dict"`` (prompt, feedback, previous attempt).
        max_program_chars: Maximum length of an action.
        max_prompt_chars: Size of the prompt observation; default the longest prompt of the suite.
        max_feedback_chars: Size of the feedback observation.
        reward_mode: ``"attempt"``: each attempt earns its reward; ``"improvement"``: an attempt earns its
            reward minus the previous attempt's (the sum over an episode is the last attempt's reward, so
            repeated partial attempts cannot out-earn one good one).
        **kwargs: Task, reward and executor arguments of :class:`~codegym.envs.base.CodeEnv`.

    Raises:
        ValueError: for a bad limit, observation kind or reward mode (naming the value).
    """

    def __init__(
        self,
        suite: str | TaskSuite = "basic",
        *,
        completion: bool = False,
        max_attempts: int = 1,
        observation: Literal["text", "dict"] = "text",
        max_program_chars: int = 8192,
        max_prompt_chars: int | None = None,
        max_feedback_chars: int = 1024,
        reward_mode: Literal["attempt", "improvement"] = "attempt",
        **kwargs: Any,
    ) -> None:
        super().__init__(suite, **kwargs)
        name = type(self).__name__
        for arg, value in (("max_attempts", max_attempts), ("max_program_chars", max_program_chars)):
            if type(value) is not int or value < 1:
                raise ValueError(f"{name}: {arg} must be a positive int, got {value!r}")
        if type(max_feedback_chars) is not int or max_feedback_chars < 16:
            raise ValueError(f"{name}: max_feedback_chars must be an int >= 16, got {max_feedback_chars!r}")
        if observation not in ("text", "dict"):
            raise ValueError(f"{name}: observation must be 'text' or 'dict', got {observation!r}")
        if reward_mode not in ("attempt", "improvement"):
            raise ValueError(f"{name}: reward_mode must be 'attempt' or 'improvement', got {reward_mode!r}")
        self.completion = bool(completion)
        self.max_attempts = max_attempts
        self.observation_kind = observation
        self.max_program_chars = max_program_chars
        self.max_feedback_chars = max_feedback_chars
        self.reward_mode = reward_mode
        tasks = self.all_tasks
        if max_prompt_chars is None:
            max_prompt_chars = max_length([len(t.prompt) for t in tasks])
        elif type(max_prompt_chars) is not int or max_prompt_chars < 1:
            raise ValueError(f"{name}: max_prompt_chars must be a positive int, got {max_prompt_chars!r}")
        self.max_prompt_chars = max_prompt_chars
        chars = set(OBS_CHARSET_BASE)
        for t in tasks:
            chars.update(t.prompt)
        self.obs_charset: frozenset[str] = frozenset(chars)
        prompt_space = spaces.Text(max_prompt_chars, min_length=0, charset=self.obs_charset)
        if observation == "text":
            self.observation_space = prompt_space
        else:
            self.observation_space = spaces.Dict(
                {
                    "prompt": prompt_space,
                    "feedback": spaces.Text(max_feedback_chars, min_length=0, charset=self.obs_charset),
                    "previous": spaces.Text(max_program_chars, min_length=0, charset=self.obs_charset),
                }
            )
        self.action_space = spaces.Text(max_program_chars, min_length=0, charset=PROGRAM_CHARSET)
        self.attempts = 0
        self._last_score = 0.0
        self._pending: str | None = None

    # ---- episode ---------------------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[ProgramObs, dict[str, Any]]:
        """Start an episode: choose a task (``options={"task_id": ...}`` picks one) and show its prompt.

        Args:
            seed: Seeds ``self.np_random`` (the task sampler's randomness).
            options: ``{"task_id": id}`` fixes this episode's task; any other key is a ValueError.

        Returns:
            ``(observation, info)``; ``info`` holds ``task_id`` and ``difficulty``.

        Raises:
            KeyError: for an unknown task id; ValueError: for an unknown option.
        """
        info = self._begin_episode(seed, options)
        self.attempts = 0
        self._last_score = 0.0
        self._pending = None
        return self._observe("", ""), info

    def _observe(self, feedback: str, previous: str) -> ProgramObs:
        assert self.task is not None
        prompt = clip_text(self.task.prompt, self.max_prompt_chars, self.obs_charset)
        if self.observation_kind == "text":
            return prompt
        return {
            "prompt": prompt,
            "feedback": clip_text(feedback, self.max_feedback_chars, self.obs_charset),
            "previous": clip_text(previous, self.max_program_chars, self.obs_charset),
        }

    def _prepare(self, action: str) -> str:
        task = self._check_running()
        if not isinstance(action, str):
            raise TypeError(
                f"{type(self).__name__}.step: the action must be the program as a str, got "
                f"{type(action).__name__} {action!r:.60}"
            )
        if len(action) > self.max_program_chars:
            raise ValueError(
                f"{type(self).__name__}.step: program of {len(action)} characters exceeds "
                f"max_program_chars={self.max_program_chars} (task {task.task_id})"
            )
        program = task.prompt + action if self.completion else str(action)
        self._pending = action
        return program

    def _conclude(
        self, result: ExecutionResult | None
    ) -> tuple[ProgramObs, float, bool, bool, dict[str, Any]]:
        assert result is not None and self._pending is not None and self.task is not None
        action = self._pending
        self._pending = None
        program = self.task.prompt + action if self.completion else action
        score, info = self._score(program, result)
        self.attempts += 1
        info["attempt"] = self.attempts
        reward = score - self._last_score if self.reward_mode == "improvement" else score
        self._last_score = score
        if self.max_attempts == 1:
            terminated, truncated = True, False
        else:
            terminated = result.passed
            truncated = not terminated and self.attempts >= self.max_attempts
        self._done = terminated or truncated
        feedback = self._feedback_text(result)
        return self._observe(feedback, action), float(reward), terminated, truncated, info

    def _feedback_text(self, result: ExecutionResult) -> str:
        passed = f"passed {result.num_passed}/{len(result.tests)} tests"
        head = f"attempt {self.attempts}/{self.max_attempts}: {result.status}, {passed}"
        return f"{head}\n{result.feedback}" if result.feedback else head
