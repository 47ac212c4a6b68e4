"""``LMPolicy``: a Hugging Face causal language model as an RL policy over programs and tokens.

One object holds the model, its tokenizer and an optional scalar value head, and gives the trainers what
they need, each computed one way only:

* :meth:`LMPolicy.sample`: batched sampling with a KV cache (prompts left padded, completions right
  padded), EOS and stop strings; returns the texts, the token ids, the log-probability of every sampled
  token and the mask of real tokens. The EOS token, when sampled, is a real token (it is the action that
  ended the program), so the last ``True`` of a row's mask is where the sequence's reward belongs.
* :meth:`LMPolicy.score`: log-probs (with gradients), values and entropies of given completions, laid out
  exactly as :meth:`sample` laid them out, so ``score(...).logprobs`` equals ``sample(...).logprobs``.
* :meth:`LMPolicy.reference`: the frozen policy for KL terms: a copy, or with LoRA the same weights with
  the adapters switched off (no second copy in memory).
* :meth:`LMPolicy.step` / :meth:`LMPolicy.act`: the step interface for token-level environments; the KV
  cache is carried from one call to the next, so an episode costs one forward per token.

Log-probabilities are those of the distribution sampled from: ``log_softmax(logits / temperature)``
(temperature 0, greedy decoding, reports temperature-1 log-probs); ``top_p`` truncation is not renormalised
into them, as in TRL and vLLM.
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "DEFAULT_MODEL_DIR",
    "LMPolicy",
    "SampleOutput",
    "ScoreOutput",
    "StepOutput",
    "resolve_device",
    "resolve_dtype",
]

DEFAULT_MODEL_DIR: Path = Path(__file__).resolve().parent / "default"
"""Where the embedded default model lives (made by ``codegym pretrain``)."""

_POLICY_FILE = "codegym_policy.json"
_VALUE_HEAD_FILE = "value_head.safetensors"
_ADAPTER_DIR = "adapter"


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' per-file progress bars (loading and saving a 4 MB model needs none)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Return the device for ``"auto"`` (CUDA, then MPS, then CPU) or the device named."""
    if isinstance(device, torch.device):
        return device
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """Return the dtype for ``"auto"`` (bf16 on CUDA where supported, else fp32) or the one named."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    named = getattr(torch, str(dtype), None)
    if not isinstance(named, torch.dtype):
        raise ValueError(f"LMPolicy: dtype must be 'auto', a torch.dtype or its name, got {dtype!r}")
    return named


@dataclass
class SampleOutput:
    """What :meth:`LMPolicy.sample` returns: ``len(prompts) * n`` completions, prompt-major.

    Completion ``j`` of prompt ``i`` is row ``i * n + j``.

    Attributes:
        texts: Decoded completions, cut before EOS and before the first stop string, special tokens skipped.
        prompt_index: For each row, the index of its prompt.
        prompt_ids: For each row, the prompt's token ids (as the model saw them, without padding).
        completion_ids: ``[rows, T]`` sampled ids, right padded with the pad id after the last real token.
        logprobs: ``[rows, T]`` log-probability of each sampled token (0 where ``mask`` is False).
        mask: ``[rows, T]`` True on real tokens (the EOS token included when it was sampled).
        finished: For each row, True if it ended with EOS or a stop string, False if it hit the token budget.
        temperature: The temperature sampled at (pass it to :meth:`LMPolicy.score` to recompute logprobs).
    """

    texts: list[str]
    prompt_index: list[int]
    prompt_ids: list[list[int]]
    completion_ids: torch.Tensor
    logprobs: torch.Tensor
    mask: torch.Tensor
    finished: list[bool]
    temperature: float

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def lengths(self) -> torch.Tensor:
        """Number of real tokens in each row (``mask.sum(-1)``)."""
        return self.mask.sum(-1)


@dataclass
class ScoreOutput:
    """What :meth:`LMPolicy.score` returns, each ``[rows, T]`` and aligned with the completion ids.

    Attributes:
        logprobs: Log-probability of each completion token (0 where the mask is False); carries gradients.
        values: Value estimate of the state *before* each token (None unless asked for).
        entropy: Entropy of the next-token distribution at each position (None unless asked for).
    """

    logprobs: torch.Tensor
    values: torch.Tensor | None = None
    entropy: torch.Tensor | None = None


@dataclass
class StepOutput:
    """What :meth:`LMPolicy.step` returns for a batch of token-level observations.

    Attributes:
        logits: ``[rows, vocab]`` next-token logits (float32), restricted to the tokenizer's ids.
        values: ``[rows]`` value estimates of the current states (None without a value head).
    """

    logits: torch.Tensor
    values: torch.Tensor | None = None


class ValueHead(nn.Module):
    """A scalar value per position from the model's last hidden state (zero-initialised: V starts at 0)."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Map ``[..., hidden]`` to ``[...]`` values (computed in float32)."""
        return self.linear(hidden.float()).squeeze(-1)


@dataclass
class _StepState:
    """The KV cache of :meth:`LMPolicy.step`: rows right-aligned, one column per cached token."""

    ids: list[list[int]]
    cache: Any
    attention: torch.Tensor  # [rows, columns] bool
    next_position: torch.Tensor  # [rows] long: each row's count of real tokens
    logits: torch.Tensor  # [rows, vocab] float32
    values: torch.Tensor | None


class LMPolicy(nn.Module):
    """A causal language model with its tokenizer and an optional value head, as an RL policy.

    Build it with :meth:`from_pretrained`. It is an ``nn.Module``: ``policy.parameters()`` are the
    trainable parameters (the LoRA adapters and value head only, when LoRA is on).

    Args:
        model: A ``transformers`` causal LM (or a ``peft`` model wrapping one).
        tokenizer: Its tokenizer; must have an EOS token. Without a pad token, EOS pads (masks decide).
        value_head: Add a scalar value head (for PPO), or pass a :class:`ValueHead`.
        lora: Whether ``model`` carries LoRA adapters (set by :meth:`from_pretrained`).

    Raises:
        ValueError: if the tokenizer has no EOS token.
    """

    def __init__(
        self, model: Any, tokenizer: Any, *, value_head: bool | ValueHead = False, lora: bool = False
    ) -> None:
        super().__init__()
        if getattr(tokenizer, "eos_token_id", None) is None:
            raise ValueError(f"LMPolicy: tokenizer {type(tokenizer).__name__} has no eos_token_id")
        self.model = model
        self.tokenizer = tokenizer
        self.lora = bool(lora)
        config = model.config
        if isinstance(value_head, ValueHead):
            self.value_head: ValueHead | None = value_head
        elif value_head:
            self.value_head = ValueHead(_hidden_size(config)).to(_model_device(model))
        else:
            self.value_head = None
        self.eos_token_id = int(tokenizer.eos_token_id)
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_token_id = int(pad) if pad is not None else self.eos_token_id
        self.vocab_size = int(len(tokenizer))
        self.context_length = _context_length(config)
        self._frozen = False
        self._adapters_off = False
        self._reference: LMPolicy | None = None
        self._step_state: _StepState | None = None
        self._cache_kwarg, self._cache_attr = _cache_argument_names(model)

    # ---- construction ----------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        model: Any = "default",
        *,
        tokenizer: Any = None,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
        value_head: bool | None = None,
        lora: bool | Mapping[str, Any] | Any = None,
    ) -> LMPolicy:
        """Load a policy.

        Args:
            model: ``"default"`` (the embedded model), a local directory in the Hugging Face format (one
                written by :meth:`save_pretrained` included), a hub id already in the local cache, or a
                ``transformers.PreTrainedModel``.
            tokenizer: The tokenizer (object or path); default: the one saved beside the model.
            device: ``"auto"`` (CUDA, then MPS, then CPU) or a device.
            dtype: ``"auto"`` (bf16 on CUDA where supported, fp32 elsewhere) or a dtype.
            value_head: Add a value head; ``None``: only if the saved policy has one (then it is loaded).
            lora: ``None``/``False`` (full fine-tuning), ``True`` (LoRA with peft's defaults for the model
                type, r=8, alpha=16), a dict of ``peft.LoraConfig`` arguments, or a ``LoraConfig``.
                A saved policy with adapters loads them trainable whatever this says.

        Raises:
            FileNotFoundError: for a name that is no local directory and not in the local cache (naming
                what was tried), or for the default model when it has not been made.
            ValueError: for a corrupt model file (naming it) or a missing tokenizer.
            ImportError: if ``lora`` is asked for and ``peft`` is not installed.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
        source: Path | None = None
        saved: dict[str, Any] = {}
        if isinstance(model, PreTrainedModel):
            hf_model = model.to(device=torch_device, dtype=torch_dtype)
            if tokenizer is None:
                raise ValueError("LMPolicy.from_pretrained: a model object needs tokenizer=...")
        else:
            if not isinstance(model, (str, Path)):
                raise TypeError(
                    "LMPolicy.from_pretrained: model must be 'default', a path, a hub id or a "
                    f"PreTrainedModel, got {type(model).__name__}"
                )
            source = _locate(str(model))
            saved = _read_policy_file(source)
            with _quiet_transformers():
                hf_model = _load_model(AutoModelForCausalLM, source, torch_dtype).to(torch_device)
            if tokenizer is None:
                tokenizer = source
        if isinstance(tokenizer, (str, Path)):
            tokenizer = _load_tokenizer(
                AutoTokenizer, Path(tokenizer) if Path(tokenizer).exists() else tokenizer
            )
        hf_model.eval()  # dropout off: sampling and log-probs must agree
        adapter = source / _ADAPTER_DIR if source is not None else None
        use_lora = False
        if adapter is not None and (adapter / "adapter_config.json").exists():
            peft = _import_peft()
            hf_model = peft.PeftModel.from_pretrained(hf_model, str(adapter), is_trainable=True)
            use_lora = True
        elif lora not in (None, False):
            hf_model = _apply_lora(hf_model, lora)
            use_lora = True
        want_head = bool(saved.get("value_head", False)) if value_head is None else bool(value_head)
        head: bool | ValueHead = want_head
        if want_head and source is not None and (source / _VALUE_HEAD_FILE).exists():
            head = _load_value_head(source / _VALUE_HEAD_FILE, _hidden_size(hf_model.config))
            head.to(torch_device)
        return cls(hf_model, tokenizer, value_head=head, lora=use_lora)

    def save_pretrained(self, path: str | Path) -> Path:
        """Save model, tokenizer, value head and LoRA adapters in the Hugging Face format (safetensors).

        With LoRA the base weights go to ``path`` and the adapters to ``path/adapter`` (peft's format), so
        that :meth:`from_pretrained` restores the same trainable policy.
        """
        from safetensors.torch import save_file

        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        with _quiet_transformers():
            if self.lora:
                base = self.model.get_base_model()
                base.save_pretrained(out, state_dict=_base_state_dict(self.model))
                self.model.save_pretrained(str(out / _ADAPTER_DIR))
            else:
                self.model.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        if self.value_head is not None:
            state = {k: v.detach().cpu().contiguous() for k, v in self.value_head.state_dict().items()}
            save_file(state, str(out / _VALUE_HEAD_FILE))
        info = {"format": 1, "value_head": self.value_head is not None, "lora": self.lora}
        (out / _POLICY_FILE).write_text(json.dumps(info, indent=2) + "\n")
        return out

    @property
    def device(self) -> torch.device:
        """The device the model's parameters are on."""
        return _model_device(self.model)

    # ---- reference -------------------------------------------------------------------------------------

    def reference(self) -> LMPolicy:
        """The frozen reference policy for KL terms (created once; no value head; never trained).

        Without LoRA it is a deep copy of the model taken now; with LoRA it shares this policy's weights
        and runs with the adapters disabled, so it costs no memory.
        """
        if self._reference is None:
            if self.lora:
                ref = LMPolicy(self.model, self.tokenizer, lora=True)
                ref._adapters_off = True
            else:
                frozen = copy.deepcopy(self.model)
                frozen.requires_grad_(False)
                frozen.eval()
                ref = LMPolicy(frozen, self.tokenizer)
            ref._frozen = True
            # A plain attribute would register the reference as a submodule (its weights in parameters()).
            object.__setattr__(self, "_reference", ref)
        assert self._reference is not None
        return self._reference

    def use_reference(self, reference: LMPolicy) -> LMPolicy:
        """Make ``reference`` (frozen here) what :meth:`reference` returns: a resumed run's starting model."""
        reference.model.requires_grad_(False)
        reference.model.eval()
        reference._frozen = True
        object.__setattr__(self, "_reference", reference)
        return reference

    @contextmanager
    def _forward_mode(self) -> Iterator[None]:
        adapters = self.model.disable_adapter() if self._adapters_off else nullcontext()
        grad = torch.no_grad() if self._frozen else nullcontext()
        with adapters, grad:
            yield

    # ---- tokens ----------------------------------------------------------------------------------------

    def encode_prompt(self, prompt: str) -> list[int]:
        """Token ids of a prompt as the model sees it (with the tokenizer's special tokens, e.g. BOS)."""
        return list(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids with special tokens skipped."""
        return str(
            self.tokenizer.decode(
                [int(i) for i in ids], skip_special_tokens=True, clean_up_tokenization_spaces=False
            )
        )

    def _forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        cache: Any = None,
        hidden: bool = False,
    ) -> tuple[torch.Tensor, Any, torch.Tensor | None]:
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": attention_mask.long(),
            "position_ids": position_ids,
            "use_cache": cache is not None,
            "output_hidden_states": hidden,
        }
        if cache is not None:
            kwargs[self._cache_kwarg] = cache
        out = self.model(**kwargs)
        last_hidden = out.hidden_states[-1] if hidden else None
        return out.logits, getattr(out, self._cache_attr, None) if cache is not None else None, last_hidden

    def _new_cache(self) -> Any:
        from transformers import DynamicCache

        return DynamicCache()

    # ---- sampling --------------------------------------------------------------------------------------

    def sample(
        self,
        prompts: Sequence[str],
        *,
        n: int = 1,
        max_new_tokens: int = 64,
        temperature: float = 1.0,
        top_p: float = 1.0,
        stop: Sequence[str] | None = None,
        seed: int | None = None,
    ) -> SampleOutput:
        """Sample ``n`` completions of each prompt with a KV cache.

        Args:
            prompts: The prompts (e.g. the observations of a program-level env).
            n: Completions per prompt (rows are prompt-major).
            max_new_tokens: Token budget of each completion (EOS included).
            temperature: Softmax temperature; 0 means greedy.
            top_p: Nucleus sampling mass (1.0: off).
            stop: Strings that end a completion (the text is cut before the first one; the tokens that
                produced it stay in ``completion_ids`` and ``mask``, since they were the actions taken).
            seed: Seeds this call's sampling (same seed, same device -> same completions); None: torch's
                global generator.

        Raises:
            ValueError: for ``n < 1``, a negative temperature, ``top_p`` outside (0, 1], a bad token budget,
                an empty stop string, or a prompt whose tokens plus ``max_new_tokens`` exceed the context.
        """
        prompts = _check_prompts(prompts)
        if type(n) is not int or n < 1:
            raise ValueError(f"LMPolicy.sample: n must be an int >= 1, got {n!r}")
        if type(max_new_tokens) is not int or max_new_tokens < 1:
            raise ValueError(f"LMPolicy.sample: max_new_tokens must be an int >= 1, got {max_new_tokens!r}")
        if not temperature >= 0:
            raise ValueError(f"LMPolicy.sample: temperature must be >= 0 (0 = greedy), got {temperature!r}")
        if not 0 < top_p <= 1:
            raise ValueError(f"LMPolicy.sample: top_p must be in (0, 1], got {top_p!r}")
        stops = list(stop or ())
        if any(not isinstance(s, str) or not s for s in stops):
            raise ValueError(f"LMPolicy.sample: stop strings must be non-empty str, got {stops!r}")
        encoded = [self.encode_prompt(p) for p in prompts]
        for i, ids in enumerate(encoded):
            if len(ids) + max_new_tokens > self.context_length:
                raise ValueError(
                    f"LMPolicy.sample: prompt {i} is {len(ids)} tokens; with max_new_tokens={max_new_tokens} "
                    f"that is {len(ids) + max_new_tokens} > the model's context of {self.context_length}"
                )
        rows = [ids for ids in encoded for _ in range(n)]
        device = self.device
        generator = None
        if seed is not None:
            generator = torch.Generator(device=device)
            generator.manual_seed(int(seed))
        input_ids, attention = _left_pad(rows, self.pad_token_id, device)
        positions = _positions(attention)
        batch = len(rows)
        tokens = torch.full((batch, max_new_tokens), self.pad_token_id, dtype=torch.long, device=device)
        logprobs = torch.zeros((batch, max_new_tokens), dtype=torch.float32, device=device)
        mask = torch.zeros((batch, max_new_tokens), dtype=torch.bool, device=device)
        finished = torch.zeros(batch, dtype=torch.bool, device=device)
        stop_window = max((len(s) for s in stops), default=0)
        was_training = self.model.training
        self.model.eval()
        try:
            with self._forward_mode(), torch.no_grad():
                cache = self._new_cache()
                logits, cache, _ = self._forward(input_ids, attention, positions, cache)
                next_logits = logits[:, -1]
                length = 0
                for t in range(max_new_tokens):
                    chosen, chosen_logprob = _choose(next_logits, temperature, top_p, generator)
                    live = ~finished
                    tokens[:, t] = torch.where(live, chosen, self.pad_token_id)
                    logprobs[:, t] = torch.where(live, chosen_logprob, 0.0)
                    mask[:, t] = live
                    length = t + 1
                    finished = finished | (live & (chosen == self.eos_token_id))
                    if stops:
                        finished = finished | self._hits_stop(
                            tokens, mask, t, live & ~finished, stops, stop_window
                        )
                    if bool(finished.all()) or t == max_new_tokens - 1:
                        break
                    attention = torch.cat(
                        [attention, torch.ones((batch, 1), dtype=torch.bool, device=device)], 1
                    )
                    positions = positions[:, -1:] + 1
                    logits, cache, _ = self._forward(chosen[:, None], attention, positions, cache)
                    next_logits = logits[:, -1]
        finally:
            self.model.train(was_training)
        tokens, logprobs, mask = tokens[:, :length], logprobs[:, :length], mask[:, :length]
        texts = []
        for row in range(batch):
            text = self.decode(tokens[row][mask[row]].tolist())
            texts.append(_cut_at_stop(text, stops))
        return SampleOutput(
            texts=texts,
            prompt_index=[i for i in range(len(prompts)) for _ in range(n)],
            prompt_ids=[list(ids) for ids in rows],
            completion_ids=tokens,
            logprobs=logprobs,
            mask=mask,
            finished=finished.tolist(),
            temperature=float(temperature),
        )

    def _hits_stop(
        self,
        tokens: torch.Tensor,
        mask: torch.Tensor,
        t: int,
        candidates: torch.Tensor,
        stops: list[str],
        window: int,
    ) -> torch.Tensor:
        """Rows among ``candidates`` whose text now ends a stop string (only the last tokens are decoded)."""
        hit = torch.zeros_like(candidates)
        start = max(0, t + 1 - window)  # every token is at least one character
        for row in torch.nonzero(candidates).flatten().tolist():
            tail = self.decode(tokens[row, start : t + 1][mask[row, start : t + 1]].tolist())
            if any(s in tail for s in stops):
                hit[row] = True
        return hit

    # ---- scoring (with gradients) ----------------------------------------------------------------------

    def score(
        self,
        prompt_ids: Sequence[Sequence[int]],
        completion_ids: torch.Tensor,
        completion_mask: torch.Tensor | None = None,
        *,
        temperature: float = 1.0,
        values: bool = False,
        entropy: bool = False,
    ) -> ScoreOutput:
        """Log-probs (and optionally values and entropies) of completions given their prompts, in one forward.

        Args:
            prompt_ids: Each row's prompt ids (``SampleOutput.prompt_ids``).
            completion_ids: ``[rows, T]`` completion ids, right padded.
            completion_mask: ``[rows, T]`` True on real tokens; default all True.
            temperature: The sampling temperature (0 is treated as 1, as in :meth:`sample`).
            values: Also return the value head's estimates (needs ``value_head``).
            entropy: Also return the entropy of each next-token distribution.

        Raises:
            ValueError: for mismatched shapes, a missing value head, or sequences beyond the context.
        """
        completion_ids = torch.as_tensor(completion_ids, device=self.device)
        if completion_ids.dim() != 2 or completion_ids.shape[0] != len(prompt_ids):
            raise ValueError(
                f"LMPolicy.score: completion_ids must be [rows, T] with rows = {len(prompt_ids)} prompts, "
                f"got shape {tuple(completion_ids.shape)}"
            )
        if completion_mask is None:
            completion_mask = torch.ones_like(completion_ids, dtype=torch.bool)
        completion_mask = torch.as_tensor(completion_mask, device=self.device).bool()
        if completion_mask.shape != completion_ids.shape:
            raise ValueError(
                f"LMPolicy.score: mask shape {tuple(completion_mask.shape)} != ids shape "
                f"{tuple(completion_ids.shape)}"
            )
        if values and self.value_head is None:
            raise ValueError(
                "LMPolicy.score: values=True needs a value head (from_pretrained(..., value_head=True))"
            )
        prompt_tensor, prompt_mask = _left_pad([list(p) for p in prompt_ids], self.pad_token_id, self.device)
        longest = int(prompt_mask.sum(-1).max()) + completion_ids.shape[1]
        if longest > self.context_length:
            raise ValueError(
                f"LMPolicy.score: {longest} tokens exceed the model's context of {self.context_length}"
            )
        width, length = prompt_tensor.shape[1], completion_ids.shape[1]
        ids = torch.cat([prompt_tensor, completion_ids.masked_fill(~completion_mask, self.pad_token_id)], 1)
        attention = torch.cat([prompt_mask, completion_mask], 1)
        with self._forward_mode():
            logits, _, hidden = self._forward(ids, attention, _positions(attention), hidden=values)
        step_logits = logits[:, width - 1 : width - 1 + length].float()
        if temperature > 0:
            step_logits = step_logits / temperature
        log_dist = torch.log_softmax(step_logits, dim=-1)
        token_logprobs = log_dist.gather(-1, completion_ids[..., None]).squeeze(-1)
        token_logprobs = token_logprobs.masked_fill(~completion_mask, 0.0)
        out = ScoreOutput(logprobs=token_logprobs)
        if values:
            assert self.value_head is not None and hidden is not None
            out.values = self.value_head(hidden[:, width - 1 : width - 1 + length]).masked_fill(
                ~completion_mask, 0.0
            )
        if entropy:
            out.entropy = -(log_dist.exp() * log_dist).sum(-1).masked_fill(~completion_mask, 0.0)
        return out

    def log_probs(
        self,
        prompt_ids: Sequence[Sequence[int]],
        completion_ids: torch.Tensor,
        completion_mask: torch.Tensor | None = None,
        *,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """``[rows, T]`` log-probs of the completion tokens, with gradients (see :meth:`score`)."""
        return self.score(prompt_ids, completion_ids, completion_mask, temperature=temperature).logprobs

    def values(
        self,
        prompt_ids: Sequence[Sequence[int]],
        completion_ids: torch.Tensor,
        completion_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``[rows, T]`` value estimates of the state before each completion token (see :meth:`score`)."""
        out = self.score(prompt_ids, completion_ids, completion_mask, values=True)
        assert out.values is not None
        return out.values

    # ---- the step interface for token-level environments -----------------------------------------------

    def reset_steps(self) -> None:
        """Forget the KV cache of :meth:`step` (the next call re-encodes every row)."""
        self._step_state = None

    def step(self, obs: Any) -> StepOutput:
        """Next-token logits (and values) for token-level observations, carrying the KV cache across calls.

        ``obs`` is a TokenEnv observation (the padded id array, or its Dict with ``ids``), one or a batch
        from a vector env. Ids ``>= len(tokenizer)`` are padding. A row whose ids extend the ids this
        policy saw for that row last time costs a forward of the new tokens only; any other row (a reset,
        a new episode) is encoded afresh. Runs without gradients (rollouts).

        Raises:
            ValueError: for an observation longer than the context, or a row with no tokens.
        """
        rows = _observation_rows(obs, self.vocab_size)
        with self._forward_mode(), torch.no_grad():
            return self._step_rows(rows)

    def act(self, obs: Any, *, temperature: float = 1.0, generator: torch.Generator | None = None) -> Any:
        """Sample the next token for token-level observations (see :meth:`step`).

        An observation Dict with an ``action_mask`` restricts the choice to allowed tokens.

        Returns:
            An ``int`` for one observation, an int64 array for a batch.
        """
        out = self.step(obs)
        logits = out.logits
        allowed = _observation_mask(obs)
        if allowed is not None:
            allowed_t = torch.as_tensor(allowed, device=logits.device).reshape(logits.shape[0], -1).bool()
            logits = logits.masked_fill(~allowed_t[:, : logits.shape[1]], float("-inf"))
        chosen, _ = _choose(logits, temperature, 1.0, generator)
        actions = chosen.cpu().numpy().astype(np.int64)
        return int(actions[0]) if _is_single(obs) else actions

    def _step_rows(self, rows: list[list[int]]) -> StepOutput:
        """One step: continuing rows forward their new tokens; new episodes are encoded on their own.

        A row whose ids extend what it had costs a forward of its new tokens (one per step), in one batch
        with every continuing row. A row that starts a new episode (a reset) is encoded alone, batched
        with the other resets only, and its keys and values are spliced into the right-aligned end of
        its cache row (the row's old columns masked), so one reset never widens every row by a whole
        prompt. Caches without per-layer key/value tensors take the slower path of one shared chunk.
        """
        state = self._step_state
        count = len(rows)
        for i, row in enumerate(rows):
            if not row:
                raise ValueError(f"LMPolicy.step: observation row {i} holds no tokens")
            if len(row) > self.context_length:
                raise ValueError(
                    f"LMPolicy.step: row {i} is {len(row)} tokens, beyond the model's context "
                    f"of {self.context_length}"
                )
        if state is None or len(state.ids) != count:
            state = self._rebuilt(state, rows)
            self._step_state = state
            return StepOutput(logits=state.logits, values=state.values)
        new_tokens: list[list[int]] = []
        fresh: list[int] = []  # rows starting a new episode
        for i, row in enumerate(rows):
            known = state.ids[i]
            if known and len(row) >= len(known) and row[: len(known)] == known:
                new_tokens.append(row[len(known) :])
            else:
                fresh.append(i)
                new_tokens.append([])
        splice = bool(fresh) and _spliceable(state.cache)
        if fresh and not splice:  # one shared chunk: the reset rows' prompts pad every row
            for i in fresh:
                state.attention[i] = False
                state.next_position[i] = 0
                state.ids[i] = []
                new_tokens[i] = rows[i]
        width = max(len(t) for t in new_tokens)
        longest = max(len(r) for r in rows)
        if state.attention.shape[1] + max(width, longest if splice else 0) > 2 * longest + 32:
            state = self._rebuilt(state, rows)  # drop columns left behind by reset rows
            self._step_state = state
            return StepOutput(logits=state.logits, values=state.values)
        if width > 0:
            self._forward_new_tokens(state, new_tokens, width)
        if splice:
            self._splice_fresh_rows(state, rows, fresh)
        self._step_state = state
        return StepOutput(logits=state.logits, values=state.values)

    def _forward_new_tokens(self, state: _StepState, new_tokens: list[list[int]], width: int) -> None:
        """Append each row's new tokens (right-aligned in a chunk of ``width`` columns) to the cache."""
        device = self.device
        count = len(new_tokens)
        chunk = torch.full((count, width), self.pad_token_id, dtype=torch.long, device=device)
        chunk_mask = torch.zeros((count, width), dtype=torch.bool, device=device)
        positions = torch.zeros((count, width), dtype=torch.long, device=device)
        for i, new in enumerate(new_tokens):
            if new:
                chunk[i, width - len(new) :] = torch.tensor(new, dtype=torch.long, device=device)
                chunk_mask[i, width - len(new) :] = True
                start = int(state.next_position[i])
                positions[i, width - len(new) :] = torch.arange(start, start + len(new), device=device)
        attention = torch.cat([state.attention, chunk_mask], 1)
        logits, cache, hidden = self._forward(
            chunk, attention, positions, state.cache, hidden=self.value_head is not None
        )
        changed = torch.tensor([bool(t) for t in new_tokens], device=device)
        state.logits = torch.where(changed[:, None], logits[:, -1, : self.vocab_size].float(), state.logits)
        if self.value_head is not None and hidden is not None:
            values = self.value_head(hidden[:, -1])
            state.values = values if state.values is None else torch.where(changed, values, state.values)
        state.cache = cache
        state.attention = attention
        state.next_position = state.next_position + chunk_mask.sum(-1)
        for i, new in enumerate(new_tokens):
            state.ids[i].extend(new)

    def _splice_fresh_rows(self, state: _StepState, rows: list[list[int]], fresh: list[int]) -> None:
        """Encode the rows in ``fresh`` from scratch and write them into the right end of their cache rows."""
        part = self._rebuilt(None, [rows[i] for i in fresh])
        width = part.attention.shape[1]
        columns = state.attention.shape[1]
        if columns < width:  # room for the longest new row: masked columns on the left of every row
            extra = width - columns
            state.attention = torch.cat(
                [torch.zeros((len(rows), extra), dtype=torch.bool, device=self.device), state.attention], 1
            )
            for layer in state.cache.layers:
                layer.keys = torch.cat([layer.keys.new_zeros(_widened(layer.keys, extra)), layer.keys], 2)
                layer.values = torch.cat(
                    [layer.values.new_zeros(_widened(layer.values, extra)), layer.values], 2
                )
            columns = width
        index = torch.tensor(fresh, dtype=torch.long, device=self.device)
        for layer, new in zip(state.cache.layers, part.cache.layers):
            layer.keys[index, :, columns - width :] = new.keys.to(layer.keys.dtype)
            layer.values[index, :, columns - width :] = new.values.to(layer.values.dtype)
            layer.keys[index, :, : columns - width] = 0
            layer.values[index, :, : columns - width] = 0
        state.attention[index] = False
        state.attention[index, columns - width :] = part.attention
        state.next_position[index] = part.next_position
        state.logits[index] = part.logits
        if part.values is not None:
            state.values = part.values.new_zeros(len(rows)) if state.values is None else state.values
            state.values[index] = part.values
        for i in fresh:
            state.ids[i] = list(rows[i])

    def _rebuilt(self, state: _StepState | None, rows: list[list[int]]) -> _StepState:
        """Encode every row afresh into a compact cache (the first step, or resets left columns behind)."""
        device = self.device
        input_ids, attention = _left_pad(rows, self.pad_token_id, device)
        logits, cache, hidden = self._forward(
            input_ids, attention, _positions(attention), self._new_cache(), hidden=self.value_head is not None
        )
        values = (
            self.value_head(hidden[:, -1]) if self.value_head is not None and hidden is not None else None
        )
        return _StepState(
            ids=[list(r) for r in rows],
            cache=cache,
            attention=attention,
            next_position=attention.sum(-1),
            logits=logits[:, -1, : self.vocab_size].float(),
            values=values,
        )


# ---- helpers --------------------------------------------------------------------------------------------


def _spliceable(cache: Any) -> bool:
    """Whether ``cache`` holds one ``[batch, heads, columns, dim]`` key and value tensor per layer."""
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(
        isinstance(getattr(layer, "keys", None), torch.Tensor)
        and isinstance(getattr(layer, "values", None), torch.Tensor)
        and layer.keys.dim() == 4
        and not getattr(layer, "is_sliding", False)
        for layer in layers
    )


def _widened(tensor: torch.Tensor, extra: int) -> tuple[int, ...]:
    """The shape of ``extra`` zero columns to put before ``tensor``'s sequence axis (axis 2)."""
    shape = list(tensor.shape)
    shape[2] = extra
    return tuple(shape)


def _check_prompts(prompts: Sequence[str]) -> list[str]:
    if isinstance(prompts, str):
        raise TypeError("LMPolicy.sample: prompts must be a sequence of str, not one str (wrap it in a list)")
    items = list(prompts)
    if not items:
        raise ValueError("LMPolicy.sample: prompts is empty")
    for i, p in enumerate(items):
        if not isinstance(p, str):
            raise TypeError(f"LMPolicy.sample: prompt {i} must be a str, got {type(p).__name__}")
    return items


def _left_pad(
    rows: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad id lists into ``[rows, width]`` ids and a bool attention mask."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r) :] = torch.tensor(list(r), dtype=torch.long)
            mask[i, width - len(r) :] = True
    return ids.to(device), mask.to(device)


def _positions(attention: torch.Tensor) -> torch.Tensor:
    """Position ids that count real tokens only (padding gets 0), so padding never shifts a sequence."""
    return (attention.long().cumsum(-1) - 1).clamp(min=0)


def _choose(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick one token per row; return it and its log-prob under ``softmax(logits / temperature)``."""
    logits = logits.float()
    if temperature == 0:
        chosen = logits.argmax(-1)
        log_dist = torch.log_softmax(logits, -1)
    else:
        log_dist = torch.log_softmax(logits / temperature, -1)
        probs = log_dist.exp()
        if top_p < 1.0:
            sorted_probs, order = probs.sort(-1, descending=True)
            outside = sorted_probs.cumsum(-1) - sorted_probs > top_p  # keeps at least the top token
            sorted_probs = sorted_probs.masked_fill(outside, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        chosen = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return chosen, log_dist.gather(-1, chosen[:, None]).squeeze(-1)


def _cut_at_stop(text: str, stops: Sequence[str]) -> str:
    cut = len(text)
    for s in stops:
        at = text.find(s)
        if at != -1:
            cut = min(cut, at)
    return text[:cut]


def _observation_ids(obs: Any) -> np.ndarray:
    if isinstance(obs, Mapping):
        if "ids" not in obs:
            raise ValueError(
                f"LMPolicy.step: a Dict observation needs an 'ids' entry, got keys {sorted(obs)}"
            )
        obs = obs["ids"]
    return np.asarray(obs)


def _is_single(obs: Any) -> bool:
    return _observation_ids(obs).ndim == 1


def _observation_rows(obs: Any, vocab_size: int) -> list[list[int]]:
    ids = _observation_ids(obs)
    if ids.ndim == 1:
        ids = ids[None]
    if ids.ndim != 2:
        raise ValueError(
            f"LMPolicy.step: observation ids must be 1-D or [rows, length], got shape {ids.shape}"
        )
    return [[int(t) for t in row if 0 <= t < vocab_size] for row in ids]


def _observation_mask(obs: Any) -> np.ndarray | None:
    if isinstance(obs, Mapping) and "action_mask" in obs:
        return np.asarray(obs["action_mask"])
    return None


def _hidden_size(config: Any) -> int:
    for name in ("hidden_size", "n_embd", "d_model"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"LMPolicy: cannot find the hidden size in config {type(config).__name__}")


def _context_length(config: Any) -> int:
    for name in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 1 << 30  # no absolute limit in the config (e.g. some RoPE models): the user's budget decides


def _model_device(model: Any) -> torch.device:
    return next(model.parameters()).device


def _cache_argument_names(model: Any) -> tuple[str, str]:
    """The forward keyword and output attribute of the KV cache (``cache`` in transformers 5.x)."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        params = {}
    if "cache" in params or "past_key_values" not in params:
        base = getattr(model, "get_base_model", None)
        inner = base() if callable(base) else model
        params = inspect.signature(inner.forward).parameters
    return ("cache", "cache") if "cache" in params else ("past_key_values", "past_key_values")


def _locate(name: str) -> Path:
    """Resolve ``"default"``, a local directory or a cached hub id to a directory; raise naming each try."""
    if name == "default":
        if not (DEFAULT_MODEL_DIR / "config.json").exists():
            raise FileNotFoundError(
                f"LMPolicy: the default model is missing from {DEFAULT_MODEL_DIR} "
                "(make it with `codegym pretrain`)"
            )
        return DEFAULT_MODEL_DIR
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"LMPolicy: {path} is a directory but has no config.json")
        return path
    tried = ["not 'default'", f"no directory {path.resolve()}"]
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception as exc:  # noqa: BLE001  (any failure means: not in the local cache)
        tried.append(f"not in the local Hugging Face cache ({type(exc).__name__})")
    raise FileNotFoundError(
        f"LMPolicy: cannot load model {name!r}: " + "; ".join(tried) + " (no network is used)"
    )


def _read_policy_file(source: Path) -> dict[str, Any]:
    path = source / _POLICY_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"LMPolicy: {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"LMPolicy: {path} must hold a JSON object, got {type(data).__name__}")
    return data


def _load_model(auto: Any, source: Path, dtype: torch.dtype) -> Any:
    try:
        return auto.from_pretrained(str(source), dtype=dtype, local_files_only=True)
    except Exception as exc:  # noqa: BLE001  (re-raised naming the file)
        weights = [p.name for p in source.glob("*.safetensors")] + [p.name for p in source.glob("*.bin")]
        raise ValueError(
            f"LMPolicy: cannot load the model in {source} "
            f"(config.json, {', '.join(weights) or 'no weights file'}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _load_tokenizer(auto: Any, source: Path | str) -> Any:
    try:
        return auto.from_pretrained(str(source), local_files_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(
            f"LMPolicy: cannot load the tokenizer from {source}: {type(exc).__name__}: {exc}"
        ) from exc


def _load_value_head(path: Path, hidden_size: int) -> ValueHead:
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"LMPolicy: cannot read the value head {path}: {type(exc).__name__}: {exc}") from exc
    head = ValueHead(hidden_size)
    try:
        head.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(
            f"LMPolicy: value head {path} does not fit hidden size {hidden_size}: {exc}"
        ) from exc
    return head


def _import_peft() -> Any:
    try:
        import peft
    except ImportError as exc:
        raise ImportError("LoRA needs peft: pip install 'codegym[train]'") from exc
    return peft


def _apply_lora(model: Any, lora: Any) -> Any:
    peft = _import_peft()
    if isinstance(lora, peft.LoraConfig):
        config = lora
    else:
        options: dict[str, Any] = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0}
        if isinstance(lora, Mapping):
            options.update(lora)
        elif lora is not True:
            raise TypeError(f"LMPolicy: lora must be True, a dict or a peft.LoraConfig, got {lora!r}")
        options.setdefault("task_type", "CAUSAL_LM")
        if getattr(model.config, "model_type", "") == "gpt2":
            options.setdefault("fan_in_fan_out", True)  # GPT-2's Conv1D stores weights transposed
        config = peft.LoraConfig(**options)
    return peft.get_peft_model(model, config)


def _base_state_dict(peft_model: Any) -> dict[str, torch.Tensor]:
    """The base model's weights under their original names (LoRA layers and adapters left out)."""
    state = {}
    for key, value in peft_model.get_base_model().state_dict().items():
        if "lora_" in key:
            continue
        state[key.replace(".base_layer.", ".")] = value
    return state
