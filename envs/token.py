"""``TokenEnv``: the agent writes the program one token at a time.

Action: ``Discrete(vocab_size)``, the next token id. Emitting ``eos_token_id`` ends the program: it is
executed and the episode ends with ``terminated=True``. After ``max_new_tokens`` actions without it the
program is executed as it is and the episode ends with ``truncated=True``. Every other step returns reward
0.0, executes nothing, and writes one id into a preallocated buffer (the returned observation is a copy of
that buffer, because Gymnasium requires that returned data is never reused).

Observation (``observation="ids"``): ``MultiDiscrete([vocab_size + 1] * (max_prompt_tokens +
max_new_tokens))``, int64. The first ``max_prompt_tokens`` slots hold the prompt, right-aligned (left
padded; a longer prompt keeps its last ``max_prompt_tokens`` tokens); the generated tokens follow from
slot ``max_prompt_tokens`` on. The padding id is ``vocab_size`` (never a real token), so the non-padding
ids, in order, are exactly prompt + generated tokens.

Observation (``observation="dict"``): ``Dict(ids=..., length=Discrete(max_new_tokens + 1),
action_mask=MultiBinary(vocab_size))`` with the number of generated tokens and the mask of allowed next
tokens. For DSL tokenizers the mask follows the suite's grammar (only tokens after which a valid body still
fits in the budget, and end-of-sequence once the body is complete), so a masked policy always writes a
syntactically valid program; for other tokenizers every token is allowed. :meth:`TokenEnv.action_masks`
returns the same mask for sb3-contrib's ``MaskablePPO``. Masks are advice: an unmasked agent may emit any
id in range.

The program executed is ``prefix + decode(body) + suffix``: for DSL tokenizers the task's
``program_prefix``/``program_suffix``; otherwise ``task.prompt`` as prefix when the prompt is a code stub
(completion, HumanEval style; ``completion=None`` decides per task) and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from codegym.envs.base import CodeEnv, max_length
from codegym.envs.tokenizers import DSLTokenizer, Tokenizer, make_tokenizer
from gymnasium import spaces

from codegym.execution.result import ExecutionResult
from codegym.tasks import Task, TaskSuite

__all__ = ["TokenEnv"]

TokenObs = Any  # np.ndarray, or dict with observation="dict"


def _is_code_stub(task: Task) -> bool:
    """True when the prompt is the start of the program (a ``def`` of the entry point), as in HumanEval."""
    return bool(task.entry_point) and f"def {task.entry_point}(" in task.prompt


class TokenEnv(CodeEnv[TokenObs, int]):
    """Token-level program writing: ``Discrete`` actions, padded id observations, execution at the end.

    Args:
        suite: A suite name or :class:`TaskSuite` (default ``"arith"``).
        tokenizer: ``None`` (the suite's DSL vocabulary if it has one, else bytes), ``"byte"``, ``"dsl"``,
            a Hugging Face tokenizer (object, hub id or local path) or a
            :class:`~codegym.envs.tokenizers.Tokenizer`.
        max_new_tokens: The token budget (actions per episode, end-of-sequence included); default
            ``max(8, 2 * longest reference body + 2)`` for DSL tokenizers, 512 for bytes, 256 otherwise.
        max_prompt_tokens: Prompt slots of the observation; default the longest encoded prompt of the suite.
        observation: ``"ids"`` (the padded id array) or ``"dict"`` (ids, length, action mask).
        grammar_mask: Use the DSL grammar for action masks (when the tokenizer has one).
        completion: Prefix the program with the prompt; ``None`` does so when the prompt is a code stub.
        **kwargs: Task, reward and executor arguments of :class:`~codegym.envs.base.CodeEnv`.

    Raises:
        ValueError: for a bad budget or observation kind (naming the value).
    """

    def __init__(
        self,
        suite: str | TaskSuite = "arith",
        *,
        tokenizer: Any = None,
        max_new_tokens: int | None = None,
        max_prompt_tokens: int | None = None,
        observation: Literal["ids", "dict"] = "ids",
        grammar_mask: bool = True,
        completion: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(suite, **kwargs)
        name = type(self).__name__
        if observation not in ("ids", "dict"):
            raise ValueError(f"{name}: observation must be 'ids' or 'dict', got {observation!r}")
        self.tokenizer: Tokenizer = make_tokenizer(tokenizer, suite=self.suite_name)
        tasks = self.all_tasks
        if max_new_tokens is None:
            if isinstance(self.tokenizer, DSLTokenizer):
                longest = max_length([len(t.metadata.get("reference_tokens", ())) for t in tasks])
                max_new_tokens = max(8, 2 * longest + 2)
            else:
                max_new_tokens = 512 if self.tokenizer.name == "byte" else 256
        if type(max_new_tokens) is not int or max_new_tokens < 2:
            raise ValueError(f"{name}: max_new_tokens must be an int >= 2, got {max_new_tokens!r}")
        self._prompt_cache: dict[str, np.ndarray] = {}
        if max_prompt_tokens is None:
            max_prompt_tokens = max_length([len(self._prompt_ids(t)) for t in tasks])
        elif type(max_prompt_tokens) is not int or max_prompt_tokens < 1:
            raise ValueError(f"{name}: max_prompt_tokens must be a positive int, got {max_prompt_tokens!r}")
        self.max_new_tokens = max_new_tokens
        self.max_prompt_tokens = max_prompt_tokens
        self.observation_kind = observation
        self.completion = completion
        self.grammar_mask = bool(grammar_mask) and isinstance(self.tokenizer, DSLTokenizer)
        self.vocab_size = self.tokenizer.vocab_size
        self.eos_token_id = self.tokenizer.eos_token_id
        self.pad_token_id = self.vocab_size
        length = max_prompt_tokens + max_new_tokens
        ids_space = spaces.MultiDiscrete(np.full(length, self.vocab_size + 1, dtype=np.int64), dtype=np.int64)
        if observation == "ids":
            self.observation_space = ids_space
        else:
            self.observation_space = spaces.Dict(
                {
                    "ids": ids_space,
                    "length": spaces.Discrete(max_new_tokens + 1),
                    "action_mask": spaces.MultiBinary(self.vocab_size),
                }
            )
        self.action_space = spaces.Discrete(self.vocab_size)
        # Preallocated episode state: non-terminal steps only write into these.
        self._ids = np.full(length, self.pad_token_id, dtype=np.int64)
        self._mask = np.ones(self.vocab_size, dtype=np.int8)
        self._n = 0
        self._ending: str | None = None
        self._prefix = ""
        self._suffix = ""

    # ---- prompt and program ----------------------------------------------------------------------------

    def _prompt_ids(self, task: Task) -> np.ndarray:
        ids = self._prompt_cache.get(task.task_id)
        if ids is None:
            ids = np.asarray(self.tokenizer.encode_prompt(task), dtype=np.int64)
            self._prompt_cache[task.task_id] = ids
        return ids

    @property
    def prompt_ids(self) -> np.ndarray:
        """The current task's prompt ids, a copy (observations keep the last ``max_prompt_tokens``)."""
        if self.task is None:
            return np.zeros(0, dtype=np.int64)
        return self._prompt_ids(self.task).copy()

    @property
    def body_ids(self) -> np.ndarray:
        """The generated token ids so far (a copy)."""
        start = self.max_prompt_tokens
        return self._ids[start : start + self._n].copy()

    @property
    def current_text(self) -> str:
        """The decoded body written so far."""
        start = self.max_prompt_tokens
        return self.tokenizer.decode(self._ids[start : start + self._n].tolist())

    @property
    def current_program(self) -> str:
        """The full program the body so far would make: prefix + body + suffix."""
        return self._prefix + self.current_text + self._suffix

    # ---- episode ---------------------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[TokenObs, dict[str, Any]]:
        """Start an episode: choose a task (``options={"task_id": ...}`` picks one) and encode its prompt.

        Args:
            seed: Seeds ``self.np_random``, which samples the task.
            options: ``{"task_id": id}`` or None, as for ``ProgramEnv.reset``.

        Returns:
            The padded prompt ids (or the Dict observation) and ``info`` with ``task_id`` and ``difficulty``.
        """
        info = self._begin_episode(seed, options)
        task = self.task
        assert task is not None
        completion = _is_code_stub(task) if self.completion is None else self.completion
        self._prefix, self._suffix = self.tokenizer.program_parts(task, completion)
        prompt = self._prompt_ids(task)[-self.max_prompt_tokens :]
        self._ids.fill(self.pad_token_id)
        self._ids[self.max_prompt_tokens - len(prompt) : self.max_prompt_tokens] = prompt
        self._n = 0
        self._ending = None
        return self._observe(), info

    def _observe(self) -> TokenObs:
        if self.observation_kind == "ids":
            return self._ids.copy()
        return {
            "ids": self._ids.copy(),
            "length": np.int64(self._n),
            "action_mask": self.action_masks().astype(np.int8),
        }

    def action_masks(self) -> np.ndarray:
        """The allowed next token ids as a bool array of ``vocab_size`` (for sb3-contrib's MaskablePPO)."""
        if self.grammar_mask and self.task is not None:
            start = self.max_prompt_tokens
            # The body may use max_new_tokens - 1 tokens so that end-of-sequence always fits in the budget.
            self.tokenizer.action_mask(
                self._ids[start : start + self._n], self.max_new_tokens - 1, self._mask
            )
            return self._mask.astype(bool)
        return np.ones(self.vocab_size, dtype=bool)

    def _token(self, action: Any) -> int:
        """Return ``action`` as an int token id, or raise naming the value and the valid range."""
        if type(action) is int:
            token = action
        elif isinstance(action, np.integer):
            token = int(action)
        elif isinstance(action, np.ndarray) and action.size == 1 and np.issubdtype(action.dtype, np.integer):
            token = int(action.reshape(()))
        else:
            raise TypeError(
                f"{type(self).__name__}.step: the action must be an int token id in [0, {self.vocab_size}), "
                f"got {type(action).__name__} {action!r:.60}"
            )
        if not 0 <= token < self.vocab_size:
            raise ValueError(
                f"{type(self).__name__}.step: token id {token} is out of range [0, {self.vocab_size}) "
                f"for tokenizer {self.tokenizer.name}"
            )
        return token

    def _prepare(self, action: Any) -> str | None:
        self._check_running()
        token = self._token(action)
        if token == self.eos_token_id:
            self._ending = "eos"
        else:
            self._ids[self.max_prompt_tokens + self._n] = token
            self._n += 1
            # The budget counts actions, end-of-sequence included: a body of max_new_tokens - 1 tokens can
            # still be ended with EOS, a body of max_new_tokens tokens is cut and executed as it is.
            if self._n < self.max_new_tokens:
                return None
            self._ending = "budget"
        return self.current_program

    def step(self, action: int) -> tuple[TokenObs, float, bool, bool, dict[str, Any]]:
        """Append a token; on end-of-sequence or at the budget, execute the program and end the episode.

        Args:
            action: A token id in ``[0, vocab_size)``; ``eos_token_id`` ends the program.

        Returns:
            ``(observation, reward, terminated, truncated, info)``: non-terminal steps give reward 0 and an
            empty info; the executing step gives the reward and the result summary.

        Raises:
            RuntimeError: before ``reset()`` or after the episode ended.
            TypeError: for a non-integer action; ValueError: for an id outside ``[0, vocab_size)``.
        """
        program = self._prepare(action)
        if program is None:
            return self._observe(), 0.0, False, False, {}
        return self._conclude(self._execute(program))

    def _conclude(self, result: ExecutionResult | None) -> tuple[TokenObs, float, bool, bool, dict[str, Any]]:
        if result is None:
            return self._observe(), 0.0, False, False, {}
        reward, info = self._score(self.current_program, result)
        info["num_tokens"] = self._n
        terminated = self._ending == "eos"
        self._done = True
        return self._observe(), float(reward), terminated, not terminated, info

    def _render_program(self) -> str:
        return self.current_program
