"""Tokenizers and the token environment's masks, including a Hugging Face tokenizer built locally."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from codegym.envs import ByteTokenizer, DSLTokenizer, HFTokenizer, TokenEnv, make_tokenizer
from codegym.envs.base import acquire_executor, release_executor
from conftest import require
from gymnasium.utils.env_checker import check_env

import codegym


@pytest.fixture(scope="module", autouse=True)
def shared_executor():
    """Hold one reference to the process's shared executor, so that every env in this module reuses it."""
    yield acquire_executor()
    release_executor()


def test_byte_tokenizer_round_trips_utf8():
    tok = ByteTokenizer()
    text = "def f(x):\n    return 'é' * x\n"
    ids = tok.encode(text)
    assert max(ids) < 256 and tok.decode(ids) == text
    assert (tok.vocab_size, tok.eos_token_id) == (257, 256)
    assert tok.decode([0xC3]) == "\ufffd"  # a cut multi-byte sequence decodes, replaced


def test_dsl_tokenizer_arith_and_listops():
    arith = DSLTokenizer("arith")
    assert arith.tokens == codegym.suites.arith.VOCAB and arith.vocab_size == 17 and arith.eos_token_id == 16
    assert arith.decode(arith.encode("(x + 3) * 2")) == "(x+3)*2"
    with pytest.raises(ValueError, match=r"no token starts at position 0 \('y'\)"):
        arith.encode("y+1")
    listops = DSLTokenizer("listops")
    task = codegym.load_suite("listops", difficulty=3)[0]
    body = [listops.tokens.index(t) for t in task.metadata["reference_tokens"]]
    assert listops.encode_prompt(task) == body  # the prompt's named steps, as tokens
    assert listops.decode(body) == "".join(task.metadata["reference_tokens"])
    assert listops.encode("".join(task.metadata["reference_tokens"])) == body
    assert pickle.loads(pickle.dumps(listops)) == listops
    with pytest.raises(ValueError, match="unknown DSL 'nope'"):
        DSLTokenizer("nope")


def test_make_tokenizer_specs():
    assert isinstance(make_tokenizer(None, suite="arith"), DSLTokenizer)
    assert isinstance(make_tokenizer(None, suite="humaneval"), ByteTokenizer)
    assert make_tokenizer("dsl:listops").dsl == "listops"
    with pytest.raises(ValueError, match="suite 'humaneval' has no DSL vocabulary"):
        make_tokenizer("dsl", suite="humaneval")
    # A typo of a built-in name fails at once (not after minutes of Hugging Face hub retries offline).
    with pytest.raises(
        ValueError, match="tokenizer 'bytes' is not a built-in tokenizer \\(did you mean 'byte'\\?\\)"
    ):
        make_tokenizer("bytes")
    with pytest.raises(ValueError, match="did you mean 'dsl:listops'"):
        make_tokenizer("dsl_listops")


def test_arith_grammar_mask_allows_only_valid_continuations():
    env = TokenEnv("arith", observation="dict", max_new_tokens=6, task_id="arith/d1/s0/0")
    obs, _ = env.reset(seed=0)
    idx = env.tokenizer.tokens.index
    allowed = lambda mask: {env.tokenizer.tokens[i] if i < 16 else "EOS" for i in np.flatnonzero(mask)}  # noqa: E731
    assert allowed(obs["action_mask"]) == {"x", *"0123456789", "("}
    assert obs["length"] == 0 and obs["action_mask"].dtype == np.int8
    obs, *_ = env.step(idx("x"))
    assert allowed(obs["action_mask"]) == {"+", "-", "*", "EOS"} and obs["length"] == 1
    obs, *_ = env.step(idx("("))  # invalid after an operand: masks are advice, and fall back to all ids
    assert obs["action_mask"].all()
    np.testing.assert_array_equal(env.action_masks(), obs["action_mask"].astype(bool))

    env.reset(seed=0)
    for token in ("(", "x", "+"):
        env.step(idx(token))
    # 3 body tokens used, budget 6 actions: one more body token can fit before ")" and EOS.
    assert allowed(env.action_masks()) == {"x", *"0123456789"}
    env.step(idx("1"))
    assert allowed(env.action_masks()) == {")"}


def test_masked_random_policy_always_writes_valid_programs():
    env = TokenEnv("arith", max_new_tokens=7)
    rng = np.random.default_rng(0)
    statuses = set()
    for episode in range(60):
        env.reset(seed=episode)
        done = False
        while not done:
            action = int(rng.choice(np.flatnonzero(env.action_masks())))
            _, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        assert terminated and not truncated  # the mask always leaves room for EOS
        statuses.add(info["status"])
    assert statuses <= {"passed", "failed"} and "failed" in statuses


def _tiny_hf_tokenizer():
    require("transformers", "hf")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [t.reference for t in codegym.load_suite("humaneval")][:40]
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    raw.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<eos>")


def test_hf_tokenizer_object_and_local_path(tmp_path):
    hf = _tiny_hf_tokenizer()
    tok = HFTokenizer(hf)
    assert tok.vocab_size == len(hf) and tok.eos_token_id == hf.convert_tokens_to_ids("<eos>")
    text = "def f(x):\n    return [v * 2 for v in x]\n"
    assert tok.decode(tok.encode(text)) == text
    hf.save_pretrained(tmp_path / "tiny")
    env = TokenEnv("humaneval", tokenizer=str(tmp_path / "tiny"), max_new_tokens=32)
    assert isinstance(env.tokenizer, HFTokenizer) and env.action_space.n == len(hf)
    assert env.pad_token_id == len(hf)
    obs, _ = env.reset(seed=0)
    prompt_ids = hf.encode(env.task.prompt)
    assert obs[env.max_prompt_tokens - len(prompt_ids) : env.max_prompt_tokens].tolist() == prompt_ids
    from transformers import PreTrainedTokenizerFast

    with pytest.raises(ValueError, match="has no eos_token_id"):
        HFTokenizer(PreTrainedTokenizerFast(tokenizer_object=hf.backend_tokenizer))


def test_hf_token_env_passes_checker_and_reference_completion_passes():
    hf = _tiny_hf_tokenizer()
    env = TokenEnv("humaneval", tokenizer=hf, max_new_tokens=600)
    check_env(env)
    task = codegym.load_suite("humaneval")[2]
    env.reset(options={"task_id": task.task_id})
    assert env.current_program == task.prompt  # completion: the prompt is the prefix
    for token in hf.encode(task.reference[len(task.prompt) :], add_special_tokens=False):
        assert env.step(token)[2:4] == (False, False)
    _, reward, terminated, _, info = env.step(env.eos_token_id)
    assert (reward, terminated, info["status"]) == (1.0, True, "passed")
    clone = pickle.loads(pickle.dumps(env))
    assert clone.tokenizer.decode(clone.tokenizer.encode("x = 1")) == "x = 1"


def test_byte_token_env_on_humaneval_reference():
    env = TokenEnv("humaneval", max_new_tokens=400)
    assert isinstance(env.tokenizer, ByteTokenizer)
    task = codegym.load_suite("humaneval")[0]
    env.reset(options={"task_id": task.task_id})
    body = task.reference[len(task.prompt) :].encode()
    for byte in body:
        env.step(byte)
    _, reward, terminated, _, info = env.step(256)
    assert (reward, terminated, info["status"]) == (1.0, True, "passed")
    assert info["num_tokens"] == len(body)


def test_prompt_longer_than_slots_keeps_its_end():
    env = TokenEnv("humaneval", max_prompt_tokens=16, max_new_tokens=8)
    obs, _ = env.reset(seed=0)
    tail = list(env.task.prompt.encode())[-16:]
    assert obs[:16].tolist() == tail and obs.shape == (24,)


class _NoExecution:
    def run(self, task, program):
        raise AssertionError(f"non-terminal steps must not execute, got {program!r}")

    run_batch = run


def test_non_terminal_steps_execute_nothing_and_reuse_the_buffer():
    env = TokenEnv("arith", executor=_NoExecution(), max_new_tokens=10)
    obs0, _ = env.reset(seed=0)
    buffer = env._ids
    seen = [obs0]
    for token in (0, 11, 3, 13, 0):  # x + 2 * x, never EOS, inside the budget
        obs, reward, terminated, truncated, info = env.step(token)
        assert (reward, terminated, truncated, info) == (0.0, False, False, {})
        assert env._ids is buffer and not any(np.shares_memory(obs, other) for other in (buffer, *seen))
        seen.append(obs)
    assert env.current_text == "x+2*x"
    assert [int(o[env.max_prompt_tokens + 4]) for o in seen] == [env.pad_token_id] * 5 + [0]
