"""``codegym pretrain``: the embedded default code model, made from the project's own data.

The corpus is prompt/program pairs in the format every CodeGym agent uses (the model reads the task
prompt, the Program env's observation, and continues with the full program and EOS):

* ``arith`` and ``listops`` tasks from the procedural generators, *train split only* (the split is a
  property of the program, so no generated seed or size can leak a test program into the corpus);
* the train splits of ``basic`` and ``humaneval`` (those that fit in the context).

A byte-level BPE tokenizer is trained on the corpus, a small GPT-2 is trained on it with the loss on the
program tokens only (the prompt is context, not something to imitate), and everything is saved in the
Hugging Face format (safetensors) with ``codegym.json`` recording how it was made. One seed fixes the
corpus, the tokenizer, the initial weights and the batch order.

The model is deliberately under-trained: RL needs a start that gets some tasks right (a reward signal)
and many wrong (room to learn). See docs/default-model.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import codegym
from codegym.tasks import Task

__all__ = ["Corpus", "Example", "PretrainConfig", "build_corpus", "pretrain", "train_tokenizer"]

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"


@dataclass(frozen=True)
class Example:
    """One training pair: the model sees ``prompt`` and learns to write ``program`` then EOS."""

    prompt: str
    program: str
    source: str

    @property
    def text(self) -> str:
        """The full training text: prompt, program, EOS."""
        return self.prompt + self.program + EOS_TOKEN


@dataclass
class Corpus:
    """The pretraining examples and where they came from."""

    examples: list[Example]

    @property
    def texts(self) -> list[str]:
        """Every example's full text."""
        return [e.text for e in self.examples]

    @property
    def sources(self) -> dict[str, int]:
        """Example count per source."""
        return dict(sorted(Counter(e.source for e in self.examples).items()))


@dataclass
class PretrainConfig:
    """Everything that determines the default model (``codegym pretrain`` makes each field a flag)."""

    seed: int = 0
    """Seeds the corpus, the tokenizer's input order, the weights and the batch order."""
    steps: int = 1000
    """Optimizer steps (the run also stops at ``minutes``)."""
    minutes: float = 15.0
    """Wall-clock budget in minutes."""
    batch_size: int = 32
    """Examples per step."""
    lr: float = 2e-3
    """Peak AdamW learning rate (linear warm-up over 5% of the steps, then cosine decay to 10%)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    arith_tasks: int = 3000
    """Generated ``arith`` tasks (depths ``arith_depths``) before the test split is dropped."""
    arith_depths: tuple[int, ...] = (1, 2, 3)
    """Expression depths of the generated ``arith`` tasks."""
    listops_tasks: int = 3000
    """Generated ``listops`` tasks (lengths ``listops_depths``) before the test split is dropped."""
    listops_depths: tuple[int, ...] = (1, 2, 3)
    """Pipeline lengths of the generated ``listops`` tasks."""
    include_basic: bool = True
    """Add the ``basic`` suite's train split."""
    include_humaneval: bool = True
    """Add the ``humaneval`` train split (problems that fit in the context)."""
    vocab_size: int = 512
    """BPE vocabulary size (special tokens included)."""
    n_embd: int = 128
    """Hidden size."""
    n_layer: int = 4
    """Transformer blocks."""
    n_head: int = 4
    """Attention heads."""
    n_positions: int = 512
    """Context length in tokens."""

    def __post_init__(self) -> None:
        for name in (
            "steps",
            "batch_size",
            "arith_tasks",
            "listops_tasks",
            "vocab_size",
            "n_embd",
            "n_layer",
        ):
            value = getattr(self, name)
            if (
                type(value) is not int
                or value < 0
                or (value == 0 and name not in ("arith_tasks", "listops_tasks"))
            ):
                raise ValueError(f"PretrainConfig: {name} must be a positive int, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"PretrainConfig: n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        if not self.minutes > 0 or not self.lr > 0:
            raise ValueError(f"PretrainConfig: minutes and lr must be > 0, got {self.minutes!r}, {self.lr!r}")
        self.arith_depths = tuple(self.arith_depths)
        self.listops_depths = tuple(self.listops_depths)


def _pair(task: Task, source: str) -> Example:
    return Example(prompt=task.prompt, program=task.reference, source=source)


def build_corpus(config: PretrainConfig | None = None) -> Corpus:
    """The pretraining examples for ``config`` (never a test-split task of any suite).

    Procedural tasks are generated with seeds derived from ``config.seed`` and only their ``"train"``
    split is kept; duplicates (depth-1 expressions repeat) are kept once per distinct prompt.
    """
    config = config or PretrainConfig()
    examples: list[Example] = []
    seen: set[str] = set()

    def add(task: Task, source: str) -> None:
        if task.split == "test" or task.prompt in seen:
            return
        seen.add(task.prompt)
        examples.append(_pair(task, source))

    if config.arith_tasks:
        suite = codegym.load_suite(
            "arith", n=config.arith_tasks, seed=1000 + config.seed, difficulty=list(config.arith_depths)
        )
        for task in suite.split("train"):
            add(task, "arith (train split)")
    if config.listops_tasks:
        suite = codegym.load_suite(
            "listops", n=config.listops_tasks, seed=1000 + config.seed, difficulty=list(config.listops_depths)
        )
        for task in suite.split("train"):
            add(task, "listops (train split)")
    if config.include_basic:
        for task in codegym.load_suite("basic").split("train"):
            add(task, "basic (train split)")
    if config.include_humaneval:
        for task in codegym.load_suite("humaneval").split("train"):
            add(task, "humaneval (train split)")
    random.Random(config.seed).shuffle(examples)
    return Corpus(examples)


def train_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained on ``texts``, with EOS ``<|endoftext|>`` and pad ``<|pad|>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([t.removesuffix(EOS_TOKEN) for t in texts], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN, model_max_length=1 << 30
    )


def _encode(corpus: Corpus, tokenizer: Any, context: int) -> tuple[list[list[int]], list[int], int]:
    """Token ids of each example and where its program starts; examples longer than the context dropped."""
    rows, starts, dropped = [], [], 0
    for e in corpus.examples:
        prompt = tokenizer(e.prompt, add_special_tokens=True)["input_ids"]
        program = tokenizer(e.program, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        if len(prompt) + len(program) > context:
            dropped += 1
            continue
        rows.append(prompt + program)
        starts.append(len(prompt))
    return rows, starts, dropped


def _batch(
    rows: list[list[int]], starts: list[int], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask, and labels that are -100 on prompt and padding tokens."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row, start) in enumerate(zip(rows, starts)):
        ids[i, : len(row)] = torch.tensor(row)
        labels[i, start : len(row)] = torch.tensor(row[start:])
        mask[i, : len(row)] = 1
    return ids, mask, labels


def _length_bucketed_batches(rows: list[list[int]], batch_size: int, rng: random.Random) -> list[list[int]]:
    """One epoch of batches of similar lengths, in random order (short arith rows are not padded to 500)."""
    indices = list(range(len(rows)))
    rng.shuffle(indices)
    window = batch_size * 50
    batches = []
    for w in range(0, len(indices), window):
        chunk = sorted(indices[w : w + window], key=lambda i: len(rows[i]))
        batches.extend(chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def pretrain(
    out_dir: str | Path | None = None,
    config: PretrainConfig | None = None,
    *,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Build the corpus and tokenizer, train the model, and save it to ``out_dir`` (default: the package's).

    Returns:
        The run's record (also written to ``out_dir/codegym.json``): config, sources, parameters,
        steps done, loss, wall time.
    """
    from codegym.agents.policy import DEFAULT_MODEL_DIR
    from tqdm.auto import tqdm
    from transformers import GPT2Config, GPT2LMHeadModel

    config = config or PretrainConfig()
    out = Path(out_dir) if out_dir is not None else DEFAULT_MODEL_DIR
    start_time = time.perf_counter()
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    corpus = build_corpus(config)
    tokenizer = train_tokenizer(corpus.texts, config.vocab_size)
    rows, starts, dropped = _encode(corpus, tokenizer, config.n_positions)
    model_config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.n_positions,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(model_config)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    warmup = max(1, config.steps // 20)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress_frac = (step - warmup) / max(1, config.steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress_frac))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    order_rng = random.Random(config.seed)
    order: list[list[int]] = []
    losses: list[float] = []
    deadline = start_time + 60 * config.minutes
    bar = tqdm(total=config.steps, desc="pretrain", disable=not progress, dynamic_ncols=True)
    step = 0
    while step < config.steps and time.perf_counter() < deadline:
        if not order:
            order = _length_bucketed_batches(rows, config.batch_size, order_rng)
        picked = order.pop()
        ids, mask, labels = _batch(
            [rows[i] for i in picked], [starts[i] for i in picked], tokenizer.pad_token_id
        )
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss))
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
    bar.close()
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    tail = losses[-20:]
    record = {
        "config": dataclasses.asdict(config),
        "sources": corpus.sources,
        "examples": len(rows),
        "dropped_longer_than_context": dropped,
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": step,
        "final_loss": sum(tail) / len(tail) if tail else None,
        "first_loss": losses[0] if losses else None,
        "wall_seconds": round(time.perf_counter() - start_time, 1),
        "torch": torch.__version__,
        "command": command or "codegym pretrain " + _flags(config),
    }
    (out / "codegym.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _flags(config: PretrainConfig) -> str:
    """The flags that reproduce ``config`` (only those that differ from the defaults)."""
    default = PretrainConfig()
    parts = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value != getattr(default, f.name):
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                parts.append(flag if value else "--no-" + f.name.replace("_", "-"))
            elif isinstance(value, tuple):
                parts.append(f"{flag} {','.join(map(str, value))}")
            else:
                parts.append(f"{flag} {value}")
    return " ".join(parts)


def _field_docs() -> dict[str, str]:
    """The docstring under each PretrainConfig field (help text of its flag)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(PretrainConfig))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
                docs[node.target.id] = str(nxt.value.value)
    return docs


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``pretrain`` subcommand (every PretrainConfig field is a flag)."""
    p = sub.add_parser("pretrain", help="make the embedded default code model from the project's own data")
    p.add_argument("--out", default=None, help="output directory (default: the package's agents/default)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    docs = _field_docs()
    for f in dataclasses.fields(PretrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        text = f"{docs.get(f.name, '')} (default {default})"
        if isinstance(default, bool):
            p.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=text
            )
        elif isinstance(default, tuple):
            p.add_argument(flag, dest=f.name, type=_int_tuple, default=default, help=text)
        else:
            p.add_argument(flag, dest=f.name, type=type(default), default=default, help=text)
    p.set_defaults(func=_cmd_pretrain)


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints like 1,2,3, got {text!r}") from exc


def _cmd_pretrain(args: argparse.Namespace) -> int:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(PretrainConfig)}
    try:
        config = PretrainConfig(**values)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    record = pretrain(
        args.out, config, progress=not args.quiet, command="codegym pretrain " + " ".join(sys.argv[2:])
    )
    print(
        f"saved {record['parameters'] / 1e6:.2f}M parameters to {args.out or 'agents/default'}: "
        f"{record['steps']} steps, loss {record['first_loss']:.3f} -> {record['final_loss']:.3f}, "
        f"{record['wall_seconds']:.0f} s; sources {record['sources']}"
    )
    return 0
