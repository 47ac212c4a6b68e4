"""Tokenizers for :class:`~codegym.envs.token.TokenEnv`: bytes, a suite's DSL vocabulary, or Hugging Face.

Every tokenizer maps text to ids in ``[0, vocab_size)`` and back, and names an end-of-sequence id. The
token environment uses ``vocab_size`` as the size of its ``Discrete`` action space and ``vocab_size`` itself
as the padding id of its observations (so padding never collides with a real token).

* :class:`ByteTokenizer`: ids 0-255 are the UTF-8 bytes, 256 is end-of-sequence (``vocab_size`` 257).
* :class:`DSLTokenizer`: the small vocabulary of a procedural suite (``arith``: 16 tokens; ``listops``),
  plus end-of-sequence. It also knows the suite's grammar, so the environment can offer action masks that
  only allow tokens after which the body can still become a valid program (for ``MaskablePPO``).
* :class:`HFTokenizer`: wraps any Hugging Face tokenizer (an object, a hub id or a local path).

:func:`make_tokenizer` builds one from a short spec (``"byte"``, ``"dsl"``, ``"dsl:listops"``, a hub id or
a path, or an object).
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from codegym.tasks import CallTest, Task

__all__ = ["ByteTokenizer", "DSLTokenizer", "HFTokenizer", "Tokenizer", "make_tokenizer"]


class Tokenizer:
    """The interface :class:`~codegym.envs.token.TokenEnv` needs from a tokenizer.

    Attributes:
        name: A short name for messages and ``repr``.
        vocab_size: Number of token ids; valid ids are ``0 .. vocab_size - 1``.
        eos_token_id: The id that ends a program.
    """

    name: str = "tokenizer"
    vocab_size: int
    eos_token_id: int

    def encode(self, text: str) -> list[int]:
        """Return the ids of ``text`` (no special tokens added)."""
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        """Return the text of ``ids`` (an end-of-sequence id inside ``ids`` is not expected)."""
        raise NotImplementedError

    def encode_prompt(self, task: Task) -> list[int]:
        """Return the ids that show ``task`` to the agent; by default the encoded prompt."""
        return self.encode(task.prompt)

    def program_parts(self, task: Task, completion: bool) -> tuple[str, str]:
        """Return the ``(prefix, suffix)`` text around the decoded body that makes the full program.

        Args:
            task: The current task.
            completion: Whether the body continues the prompt (HumanEval style: prefix is the prompt).
        """
        return (task.prompt if completion else ""), ""

    def action_mask(self, body_ids: Sequence[int], max_new_tokens: int, out: np.ndarray) -> np.ndarray:
        """Write into ``out`` (int8, ``vocab_size``) which ids may follow ``body_ids``; here every id."""
        out.fill(1)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, vocab_size={self.vocab_size}, eos={self.eos_token_id})"


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes as tokens: ids 0-255 are bytes and 256 is end-of-sequence.

    Decoding replaces invalid UTF-8 sequences with U+FFFD, so every id sequence decodes to some text.
    """

    name = "byte"
    vocab_size = 257
    eos_token_id = 256

    def encode(self, text: str) -> list[int]:
        """Return the UTF-8 bytes of ``text`` as ids."""
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        """Return the text of the byte ids (invalid UTF-8 becomes U+FFFD)."""
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def __eq__(self, other: object) -> bool:
        return type(other) is ByteTokenizer

    def __hash__(self) -> int:
        return hash(ByteTokenizer)


class DSLTokenizer(Tokenizer):
    """The vocabulary of a procedural suite's DSL plus end-of-sequence, with its grammar for action masks.

    The suite module (``codegym.suites.<dsl>``) provides ``VOCAB`` (the body tokens),
    ``valid_next_tokens(prefix_tokens, max_len)`` and ``can_end(prefix_tokens)``. Token ``i`` is
    ``VOCAB[i]``; ``len(VOCAB)`` is end-of-sequence. A body decodes to ``"".join(tokens)`` (or with the
    module's ``JOIN`` string when it defines one), and the program is
    ``metadata["program_prefix"] + body + metadata["program_suffix"]``.

    The prompt shown to the agent is the task statement written in the DSL (see :meth:`encode_prompt`):
    the same information the text prompt states, in a vocabulary an MLP policy can read.

    Args:
        dsl: The suite name (``"arith"`` or ``"listops"``) whose module defines the vocabulary.
    """

    def __init__(self, dsl: str = "arith") -> None:
        try:
            module = importlib.import_module(f"codegym.suites.{dsl}")
        except ImportError:
            raise ValueError(
                f"DSLTokenizer: unknown DSL {dsl!r}; expected a suite with a VOCAB, e.g. 'arith'"
            ) from None
        vocab = getattr(module, "VOCAB", None)
        if not vocab:
            raise ValueError(f"DSLTokenizer: suite module codegym.suites.{dsl} defines no VOCAB")
        self.name = f"dsl:{dsl}"
        self.dsl = dsl
        self.tokens: tuple[str, ...] = tuple(vocab)
        self.vocab_size = len(self.tokens) + 1
        self.eos_token_id = len(self.tokens)
        self.join: str = str(getattr(module, "JOIN", ""))
        self._index = {tok: i for i, tok in enumerate(self.tokens)}
        # Longest match first, so that multi-character tokens win over their prefixes.
        self._by_length = sorted(self.tokens, key=len, reverse=True)
        self._valid_next: Callable[..., frozenset[str]] | None = getattr(module, "valid_next_tokens", None)
        self._can_end: Callable[[Sequence[str]], bool] | None = getattr(module, "can_end", None)
        step_names: dict[str, str] = dict(getattr(module, "STEP_NAMES", {}) or {})
        self._step_tokens = {name: token for token, name in step_names.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        # The grammar functions are module attributes: rebuild from the DSL name.
        return (DSLTokenizer, (self.dsl,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DSLTokenizer) and other.dsl == self.dsl

    def __hash__(self) -> int:
        return hash((DSLTokenizer, self.dsl))

    @property
    def has_grammar(self) -> bool:
        """Whether the DSL provides ``valid_next_tokens`` and ``can_end`` for action masks."""
        return self._valid_next is not None and self._can_end is not None

    def encode(self, text: str, *, skip_unknown: bool = False) -> list[int]:
        """Split ``text`` into DSL tokens (longest match first; whitespace between tokens is ignored).

        Args:
            text: The text to encode.
            skip_unknown: Drop characters that start no token instead of raising.

        Raises:
            ValueError: naming the position and character that starts no token (unless ``skip_unknown``).
        """
        ids: list[int] = []
        pos, n = 0, len(text)
        while pos < n:
            for tok in self._by_length:
                if text.startswith(tok, pos):
                    ids.append(self._index[tok])
                    pos += len(tok)
                    break
            else:
                if text[pos].isspace():
                    pos += 1
                    continue
                if not skip_unknown:
                    raise ValueError(
                        f"{self.name}: no token starts at position {pos} ({text[pos]!r}) of {text!r:.80}"
                    )
                pos += 1
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Return the body text: the tokens joined (by ``""`` unless the DSL module sets ``JOIN``)."""
        return self.join.join(self.tokens[int(i)] for i in ids)

    def encode_prompt(self, task: Task) -> list[int]:
        """Return the task statement in DSL tokens.

        ``arith`` prompts state an expression (``metadata["expression"]``), which is encoded; ``listops``
        prompts list named steps (``metadata["steps"]``), which map to their tokens through the module's
        ``STEP_NAMES``; other tasks fall back to the DSL tokens found in the prompt text.

        Examples-only tasks (``metadata["examples_only"]``) state nothing but their visible examples,
        written ``(input)output`` one after the other and encoded as far as the vocabulary spells them:
        ``arith`` spells integers (``f(-2) == 5`` is ``( - 2 ) 5``), ``listops`` spells no list, so its
        examples-only prompts are empty.
        """
        if task.metadata.get("examples_only") is True:
            shown = "".join(
                f"({', '.join(map(repr, t.args))}){t.expected!r}"
                for t in task.visible_tests
                if isinstance(t, CallTest)
            )
            return self.encode(shown, skip_unknown=True)
        expression = task.metadata.get("expression")
        if isinstance(expression, str) and expression:
            return self.encode(expression, skip_unknown=True)
        steps = task.metadata.get("steps")
        if steps and self._step_tokens:
            return [self._index[self._step_tokens[name]] for name in steps if name in self._step_tokens]
        return self.encode(task.prompt, skip_unknown=True)

    def program_parts(self, task: Task, completion: bool) -> tuple[str, str]:
        """Return the task's ``program_prefix`` and ``program_suffix`` (required for DSL tasks).

        Raises:
            ValueError: if the task carries no program template.
        """
        try:
            return str(task.metadata["program_prefix"]), str(task.metadata["program_suffix"])
        except KeyError:
            raise ValueError(
                f"{self.name}: task {task.task_id} has no metadata program_prefix/program_suffix; "
                "DSL tokenizers only work on procedural suites (arith, listops)"
            ) from None

    def action_mask(self, body_ids: Sequence[int], max_new_tokens: int, out: np.ndarray) -> np.ndarray:
        """Allow the tokens after which a valid body still fits in ``max_new_tokens``; EOS when complete.

        Without a grammar, or after an invalid prefix (an unmasked agent may emit one), every id is allowed.
        If the grammar allows nothing, end-of-sequence is allowed so that a masked policy can always act.
        """
        if not self.has_grammar:
            out.fill(1)
            return out
        prefix = [self.tokens[int(i)] for i in body_ids]
        try:
            # One token of the budget is kept for end-of-sequence only if the body is not complete yet.
            allowed = self._valid_next(prefix, max_new_tokens)  # type: ignore[misc]
            complete = self._can_end(prefix)  # type: ignore[misc]
        except ValueError:
            out.fill(1)
            return out
        out.fill(0)
        for tok in allowed:
            out[self._index[tok]] = 1
        if complete or not out.any():
            out[self.eos_token_id] = 1
        return out


class HFTokenizer(Tokenizer):
    """Any Hugging Face tokenizer: an object, or a hub id or local path loaded with ``AutoTokenizer``.

    The prompt is encoded with the tokenizer's special tokens (e.g. a BOS token); bodies decode with
    special tokens skipped. ``vocab_size`` is ``len(tokenizer)`` (it counts added tokens).

    Args:
        tokenizer: A ``transformers`` tokenizer object, or a name/path for ``AutoTokenizer.from_pretrained``.
        eos_token_id: Overrides the tokenizer's own end-of-sequence id (required if it has none).
        **from_pretrained_kwargs: Passed to ``AutoTokenizer.from_pretrained`` (e.g. ``local_files_only``).

    Raises:
        ImportError: if ``transformers`` is not installed and a name or path is given.
        ValueError: if no end-of-sequence id is known.
    """

    def __init__(
        self, tokenizer: Any, *, eos_token_id: int | None = None, **from_pretrained_kwargs: Any
    ) -> None:
        if isinstance(tokenizer, str):
            try:
                from transformers import AutoTokenizer
            except ImportError as exc:
                raise ImportError(
                    "loading a Hugging Face tokenizer by name needs transformers: pip install 'codegym[hf]'"
                ) from exc
            self.name = tokenizer
            tokenizer = AutoTokenizer.from_pretrained(tokenizer, **from_pretrained_kwargs)
        else:
            self.name = str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
        for attr in ("encode", "decode"):
            if not callable(getattr(tokenizer, attr, None)):
                raise TypeError(f"HFTokenizer: {type(tokenizer).__name__} has no {attr}() method")
        self.hf = tokenizer
        eos = eos_token_id if eos_token_id is not None else getattr(tokenizer, "eos_token_id", None)
        if eos is None:
            raise ValueError(
                f"HFTokenizer: tokenizer {self.name!r} has no eos_token_id; pass eos_token_id=..."
            )
        self.vocab_size = int(len(tokenizer))
        self.eos_token_id = int(eos)
        if not 0 <= self.eos_token_id < self.vocab_size:
            raise ValueError(
                f"HFTokenizer: eos_token_id {self.eos_token_id} is outside [0, {self.vocab_size})"
            )

    def encode(self, text: str) -> list[int]:
        """Return the ids of ``text`` without special tokens."""
        return list(self.hf.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        """Return the text of ``ids``, skipping special tokens."""
        return str(
            self.hf.decode(
                [int(i) for i in ids], skip_special_tokens=True, clean_up_tokenization_spaces=False
            )
        )

    def encode_prompt(self, task: Task) -> list[int]:
        """Return the prompt's ids with the tokenizer's special tokens (e.g. BOS) added."""
        return list(self.hf.encode(task.prompt, add_special_tokens=True))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HFTokenizer) and other.hf is self.hf

    def __hash__(self) -> int:
        return id(self.hf)


def make_tokenizer(spec: Any = None, *, suite: str | None = None) -> Tokenizer:
    """Build a tokenizer from a spec.

    Args:
        spec: ``None`` (the suite's DSL vocabulary if it has one, else bytes), ``"byte"``, ``"dsl"``
            (the suite's DSL), ``"dsl:<suite>"``, a :class:`Tokenizer`, a Hugging Face tokenizer object, or
            any other string (a Hugging Face hub id or local path).
        suite: The suite name, used by ``None`` and ``"dsl"``.

    Raises:
        ValueError: for ``"dsl"`` on a suite without a DSL vocabulary.
    """
    if isinstance(spec, Tokenizer):
        return spec
    if spec is None:
        if suite is not None and _has_dsl(suite):
            return DSLTokenizer(suite)
        return ByteTokenizer()
    if isinstance(spec, str):
        if spec == "byte":
            return ByteTokenizer()
        if spec == "dsl" or spec.startswith("dsl:"):
            dsl = spec[4:] if spec.startswith("dsl:") else suite
            if not dsl or not _has_dsl(dsl):
                raise ValueError(
                    f"tokenizer 'dsl': suite {dsl!r} has no DSL vocabulary (arith and listops have one)"
                )
            return DSLTokenizer(dsl)
        builtin = ["byte", "dsl", "dsl:arith", "dsl:listops"]
        close = difflib.get_close_matches(spec.lower(), builtin, n=1, cutoff=0.75)
        if close and not os.path.exists(spec):  # a typo of a built-in name, not a hub id or a path
            raise ValueError(
                f"tokenizer {spec!r} is not a built-in tokenizer (did you mean {close[0]!r}?); "
                f"built-ins: {', '.join(builtin)}; any other string is a Hugging Face hub id or path"
            )
        try:
            return HFTokenizer(spec)
        except OSError as exc:
            raise OSError(
                f"tokenizer {spec!r} is not a built-in ({', '.join(builtin)}) and Hugging Face could not "
                f"load it as a hub id or local path: {exc}"
            ) from exc
    return HFTokenizer(spec)


def _has_dsl(suite: str) -> bool:
    try:
        module = importlib.import_module(f"codegym.suites.{suite}")
    except ImportError:
        return False
    return bool(getattr(module, "VOCAB", None))
