"""``codegym pretrain``: no test-split task in the corpus, reproducible runs, the shipped default loads."""

from __future__ import annotations

import json

import pytest

import codegym
from tests.conftest import require

torch = require("torch", "train")
require("transformers", "train")

from codegym.agents.policy import DEFAULT_MODEL_DIR  # noqa: E402
from codegym.agents.pretrain import PretrainConfig, build_corpus, pretrain  # noqa: E402

TINY = dict(
    steps=15,
    batch_size=8,
    lr=3e-3,
    arith_tasks=60,
    listops_tasks=60,
    include_basic=False,
    include_humaneval=False,
    vocab_size=300,
    n_embd=32,
    n_layer=1,
    n_head=2,
    n_positions=160,
)


def _test_split_tasks() -> list[codegym.Task]:
    tasks: list[codegym.Task] = []
    for name in ("arith", "listops", "basic", "humaneval"):
        tasks += list(codegym.load_suite(name).split("test"))
    for name in ("arith", "listops"):
        for seed in (0, 1, 2):
            for depths in ([1], [1, 2, 3], [4, 5]):
                tasks += list(codegym.load_suite(name, n=500, seed=seed, difficulty=depths).split("test"))
        # The held-out set of `make demo`, `codegym train` and bench/learning.py.
        tasks += list(codegym.load_suite(name, n=600, seed=1, difficulty=[1, 2, 3]).split("test"))
    return tasks


@pytest.mark.parametrize("seed", [0, 1])
def test_corpus_holds_no_test_split_task(seed):
    corpus = build_corpus(PretrainConfig(seed=seed))
    prompts = {e.prompt for e in corpus.examples}
    programs = {e.program for e in corpus.examples}
    test_tasks = _test_split_tasks()
    assert len(test_tasks) > 1000
    leaked = [t.task_id for t in test_tasks if t.prompt in prompts or t.reference in programs]
    assert leaked == []
    # The texts are exactly prompt + program + EOS, so nothing else can carry a test task in.
    assert all(e.text == e.prompt + e.program + "<|endoftext|>" for e in corpus.examples)
    assert set(corpus.sources) == {
        "arith (train split)",
        "listops (train split)",
        "basic (train split)",
        "humaneval (train split)",
    }
    assert corpus.sources["basic (train split)"] == 120 and corpus.sources["humaneval (train split)"] == 132


def _weights(path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_a_tiny_run_learns_and_is_reproducible(tmp_path):
    first = pretrain(tmp_path / "a", PretrainConfig(seed=3, **TINY), progress=False)
    pretrain(tmp_path / "b", PretrainConfig(seed=3, **TINY), progress=False)
    pretrain(tmp_path / "c", PretrainConfig(seed=4, **TINY), progress=False)
    assert first["steps"] == 15 and first["final_loss"] < first["first_loss"] - 0.5
    a, b, c = _weights(tmp_path / "a"), _weights(tmp_path / "b"), _weights(tmp_path / "c")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].shape == c[k].shape)
    record = json.loads((tmp_path / "a" / "codegym.json").read_text())
    assert record["config"]["seed"] == 3 and record["command"].startswith("codegym pretrain ")
    assert "--seed 3" in record["command"] and "--steps 15" in record["command"]


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="n_embd=30 is not divisible by n_head=4"):
        PretrainConfig(n_embd=30)
    with pytest.raises(ValueError, match="steps must be a positive int, got 0"):
        PretrainConfig(steps=0)
    from codegym.cli import main

    assert main(["pretrain", "--steps", "0", "--quiet"]) == 2


def test_the_shipped_default_model():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (DEFAULT_MODEL_DIR / "config.json").exists() and not on_ci_default():
        pytest.skip(f"no default model in {DEFAULT_MODEL_DIR} (run codegym pretrain)")
    assert (DEFAULT_MODEL_DIR / "model.safetensors").stat().st_size <= 20 * 2**20
    model = AutoModelForCausalLM.from_pretrained(str(DEFAULT_MODEL_DIR))
    tok = AutoTokenizer.from_pretrained(str(DEFAULT_MODEL_DIR))
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token == "<|pad|>"
    assert tok.eos_token_id != tok.pad_token_id
    record = json.loads((DEFAULT_MODEL_DIR / "codegym.json").read_text())
    assert record["parameters"] == sum(p.numel() for p in model.parameters())
    task = codegym.load_suite("arith").split("train")[0]
    ids = tok(task.prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=40, do_sample=False, pad_token_id=tok.pad_token_id)
    program = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    compile(program, task.task_id, "exec")  # a syntactically valid program
    assert program.startswith("def f(x):")


def on_ci_default() -> bool:
    """On CI the default model must be there (it is committed), so a missing one fails instead of skipping."""
    from tests.conftest import on_ci

    return on_ci()
