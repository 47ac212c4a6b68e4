"""LMPolicy on tiny random-weight GPT-2, Llama and Qwen2 models built from configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require

torch = require("torch", "train")
require("transformers", "train")

import gymnasium as gym  # noqa: E402
from codegym.agents.policy import LMPolicy, resolve_device, resolve_dtype  # noqa: E402
from codegym.envs.token import TokenEnv  # noqa: E402

import codegym  # noqa: E402, F401
from tests.lm_fixtures import tiny_model, tiny_tokenizer  # noqa: E402

KINDS = ["gpt2", "llama", "qwen2"]
PROMPTS = [
    "def f(x):\n",
    "Write f(x) that returns x + 3.\nExamples:\n    f(1) == 4\n",
    "xs",
]


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(scope="module", params=KINDS)
def policy(request, tokenizer) -> LMPolicy:
    return LMPolicy.from_pretrained(
        tiny_model(request.param, len(tokenizer)), tokenizer=tokenizer, device="cpu"
    )


def full_logits(policy: LMPolicy, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return policy.model(input_ids=torch.tensor([ids])).logits[0, -1, : policy.vocab_size].float()


# ---- sampling --------------------------------------------------------------------------------------------


def test_sampling_is_reproducible_under_a_seed(policy):
    a = policy.sample(PROMPTS, n=3, max_new_tokens=16, seed=7)
    b = policy.sample(PROMPTS, n=3, max_new_tokens=16, seed=7)
    c = policy.sample(PROMPTS, n=3, max_new_tokens=16, seed=8)
    assert a.texts == b.texts
    assert torch.equal(a.completion_ids, b.completion_ids)
    assert a.texts != c.texts
    assert len(a) == 9 and a.prompt_index == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert a.prompt_ids[3] == policy.encode_prompt(PROMPTS[1])


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sample_logprobs_equal_log_probs(policy, temperature):
    out = policy.sample(PROMPTS, n=2, max_new_tokens=16, temperature=temperature, seed=0)
    recomputed = policy.log_probs(out.prompt_ids, out.completion_ids, out.mask, temperature=temperature)
    assert recomputed.requires_grad
    assert torch.allclose(recomputed, out.logprobs, atol=1e-5)
    assert (out.logprobs[~out.mask] == 0).all() and (out.logprobs[out.mask] < 0).all()


def test_padding_does_not_change_logprobs(policy):
    out = policy.sample(PROMPTS, n=1, max_new_tokens=12, seed=3)
    together = policy.log_probs(out.prompt_ids, out.completion_ids, out.mask)
    for row in range(len(out)):
        alone = policy.log_probs(
            [out.prompt_ids[row]], out.completion_ids[row : row + 1], out.mask[row : row + 1]
        )
        assert torch.allclose(alone, together[row : row + 1], atol=1e-5)
    # More right padding on the completions changes nothing either.
    wider = torch.nn.functional.pad(out.completion_ids, (0, 5), value=policy.pad_token_id)
    wider_mask = torch.nn.functional.pad(out.mask, (0, 5), value=False)
    padded = policy.log_probs(out.prompt_ids, wider, wider_mask)
    assert torch.allclose(padded[:, : out.mask.shape[1]], together, atol=1e-5)
    assert (padded[:, out.mask.shape[1] :] == 0).all()


def test_greedy_is_the_argmax_of_a_full_forward(policy):
    out = policy.sample(PROMPTS[:1], max_new_tokens=6, temperature=0)
    ids = list(out.prompt_ids[0])
    for t in range(int(out.mask[0].sum())):
        expected = int(full_logits(policy, ids).argmax())
        assert int(out.completion_ids[0, t]) == expected
        ids.append(expected)


def test_eos_ends_a_row_and_is_its_last_real_token(tokenizer):
    policy = LMPolicy.from_pretrained(tiny_model("gpt2", len(tokenizer)), tokenizer=tokenizer, device="cpu")
    eos = policy.eos_token_id
    bias = torch.zeros(policy.model.config.vocab_size)
    bias[eos] = 4.0  # EOS about 15% likely at each step: some rows end early, some hit the budget
    policy.model.lm_head.register_forward_hook(lambda module, args, output: output + bias)
    out = policy.sample(PROMPTS, n=4, max_new_tokens=30, seed=0)
    for row in range(len(out)):
        real = out.completion_ids[row][out.mask[row]].tolist()
        if out.finished[row]:
            assert real[-1] == eos and eos not in real[:-1]
        else:
            assert len(real) == 30 and eos not in real
        assert (out.completion_ids[row][~out.mask[row]] == policy.pad_token_id).all()
        assert out.mask[row].tolist() == sorted(out.mask[row].tolist(), reverse=True)  # right padded


def test_stop_strings_cut_the_text_and_end_the_row(policy):
    free = policy.sample(PROMPTS, n=2, max_new_tokens=24, seed=5)
    stop = "e"
    out = policy.sample(PROMPTS, n=2, max_new_tokens=24, seed=5, stop=[stop])
    for row in range(len(out)):
        assert stop not in out.texts[row]
        if stop in free.texts[row]:
            assert out.finished[row]
            assert out.texts[row] == free.texts[row][: free.texts[row].index(stop)]
            # The tokens up to the one that completed the stop string are the row's real tokens.
            assert stop in policy.decode(out.completion_ids[row][out.mask[row]].tolist())


def test_top_p_keeps_only_the_nucleus(policy):
    out = policy.sample(PROMPTS[:1], n=8, max_new_tokens=1, top_p=1e-6, seed=0)
    greedy = policy.sample(PROMPTS[:1], n=1, max_new_tokens=1, temperature=0)
    assert set(out.completion_ids[:, 0].tolist()) == {int(greedy.completion_ids[0, 0])}


# ---- bad input ---------------------------------------------------------------------------------------------


def test_bad_sampling_arguments_name_the_problem(policy):
    with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
        policy.sample(PROMPTS, n=0)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        policy.sample(PROMPTS, temperature=-0.5)
    with pytest.raises(ValueError, match="top_p"):
        policy.sample(PROMPTS, top_p=0)
    with pytest.raises(TypeError, match="not one str"):
        policy.sample("def f(x):")
    long_prompt = "x + 1 " * 200
    n_tokens = len(policy.encode_prompt(long_prompt))
    with pytest.raises(ValueError, match=rf"prompt 0 is {n_tokens} tokens; .* > the model's context of 128"):
        policy.sample([long_prompt], max_new_tokens=8)


def test_unknown_model_names_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        FileNotFoundError, match=r"no-such/model.*no directory.*not in the local Hugging Face cache"
    ):
        LMPolicy.from_pretrained("no-such/model")


def test_corrupt_model_file_names_the_file(policy, tmp_path):
    policy.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match=r"model\.safetensors"):
        LMPolicy.from_pretrained(tmp_path, device="cpu")


def test_device_and_dtype_auto():
    device = resolve_device("auto")
    assert device.type == ("cuda" if torch.cuda.is_available() else device.type)
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ValueError, match="dtype"):
        resolve_dtype("float77", torch.device("cpu"))


# ---- values, reference, LoRA, save/load ------------------------------------------------------------------


def test_value_head_scores_every_position(tokenizer):
    policy = LMPolicy.from_pretrained(
        tiny_model("gpt2", len(tokenizer)), tokenizer=tokenizer, device="cpu", value_head=True
    )
    out = policy.sample(PROMPTS, max_new_tokens=8, seed=0)
    assert (policy.values(out.prompt_ids, out.completion_ids, out.mask) == 0).all()  # zero-initialised head
    with torch.no_grad():
        policy.value_head.linear.bias.fill_(0.5)
    scored = policy.score(out.prompt_ids, out.completion_ids, out.mask, values=True, entropy=True)
    assert torch.allclose(scored.values[out.mask], torch.full_like(scored.values[out.mask], 0.5))
    assert (scored.values[~out.mask] == 0).all()
    vocab = policy.model.config.vocab_size
    assert ((scored.entropy[out.mask] > 0) & (scored.entropy[out.mask] <= np.log(vocab) + 1e-4)).all()
    no_head = LMPolicy.from_pretrained(tiny_model("gpt2", len(tokenizer)), tokenizer=tokenizer, device="cpu")
    with pytest.raises(ValueError, match="needs a value head"):
        no_head.values(out.prompt_ids, out.completion_ids, out.mask)


def test_reference_is_a_frozen_copy(tokenizer):
    policy = LMPolicy.from_pretrained(tiny_model("llama", len(tokenizer)), tokenizer=tokenizer, device="cpu")
    out = policy.sample(PROMPTS, max_new_tokens=8, seed=0)
    ref = policy.reference()
    assert ref is policy.reference()
    assert all(not p.requires_grad for p in ref.parameters())
    assert sum(p.numel() for p in policy.parameters()) == sum(p.numel() for p in policy.model.parameters())
    before = ref.log_probs(out.prompt_ids, out.completion_ids, out.mask)
    assert not before.requires_grad
    with torch.no_grad():
        for p in policy.model.parameters():
            p.add_(0.05)
    assert torch.equal(ref.log_probs(out.prompt_ids, out.completion_ids, out.mask), before)
    assert not torch.allclose(policy.log_probs(out.prompt_ids, out.completion_ids, out.mask), before)


@pytest.mark.parametrize("kind", ["gpt2", "qwen2"])
def test_lora_reference_equals_the_base_model(tokenizer, kind):
    require("peft", "train")
    base = tiny_model(kind, len(tokenizer))
    plain = LMPolicy.from_pretrained(tiny_model(kind, len(tokenizer)), tokenizer=tokenizer, device="cpu")
    policy = LMPolicy.from_pretrained(
        base, tokenizer=tokenizer, device="cpu", lora={"r": 4, "init_lora_weights": False}
    )
    out = plain.sample(PROMPTS, max_new_tokens=8, seed=0)
    expected = plain.log_probs(out.prompt_ids, out.completion_ids, out.mask)
    ref = policy.reference()
    assert ref.model is policy.model  # no second copy
    assert torch.allclose(ref.log_probs(out.prompt_ids, out.completion_ids, out.mask), expected, atol=1e-5)
    # The adapters (randomly initialised here) do change the policy itself.
    assert not torch.allclose(
        policy.log_probs(out.prompt_ids, out.completion_ids, out.mask), expected, atol=1e-4
    )
    trainable = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


@pytest.mark.parametrize("lora", [False, True])
def test_save_and_load_round_trip(tokenizer, tmp_path, lora):
    if lora:
        require("peft", "train")
    policy = LMPolicy.from_pretrained(
        tiny_model("gpt2", len(tokenizer)),
        tokenizer=tokenizer,
        device="cpu",
        value_head=True,
        lora={"r": 4, "init_lora_weights": False} if lora else None,
    )
    with torch.no_grad():
        policy.value_head.linear.weight.normal_()
    out = policy.sample(PROMPTS, n=2, max_new_tokens=10, seed=0)
    scored = policy.score(out.prompt_ids, out.completion_ids, out.mask, values=True)
    policy.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "value_head.safetensors").exists()
    assert json.loads((tmp_path / "codegym_policy.json").read_text())["lora"] is lora
    loaded = LMPolicy.from_pretrained(tmp_path, device="cpu")
    assert loaded.lora is lora and loaded.value_head is not None
    again = loaded.score(out.prompt_ids, out.completion_ids, out.mask, values=True)
    assert torch.allclose(again.logprobs, scored.logprobs, atol=1e-6)
    assert torch.allclose(again.values, scored.values, atol=1e-6)
    assert loaded.sample(PROMPTS, n=2, max_new_tokens=10, seed=0).texts == out.texts
    if lora:  # the base weights were saved clean: the reference of the loaded policy is the original base
        ref_before = policy.reference().log_probs(out.prompt_ids, out.completion_ids, out.mask)
        ref_after = loaded.reference().log_probs(out.prompt_ids, out.completion_ids, out.mask)
        assert torch.allclose(ref_before, ref_after, atol=1e-6)


# ---- the step interface for token envs ---------------------------------------------------------------


def test_step_interface_matches_a_full_forward(policy):
    env = TokenEnv("arith", tokenizer=policy.tokenizer, max_new_tokens=10)
    gen = torch.Generator().manual_seed(0)
    for episode in range(2):
        obs, _ = env.reset(seed=episode)
        policy.reset_steps() if episode == 0 else None  # episode 1 must be detected as a new row
        done = False
        while not done:
            ids = [int(t) for t in obs if t < env.vocab_size]
            step = policy.step(obs)
            assert torch.allclose(step.logits[0], full_logits(policy, ids), atol=1e-4)
            action = policy.act(obs, generator=gen)
            assert isinstance(action, int) and 0 <= action < env.vocab_size
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated


def test_step_interface_under_a_vector_env_with_autoreset(policy):
    envs = gym.make_vec("codegym/Arith-Token-v0", num_envs=3, tokenizer=policy.tokenizer, max_new_tokens=4)
    obs, _ = envs.reset(seed=0)
    policy.reset_steps()
    gen = torch.Generator().manual_seed(1)
    forwards_per_row = []
    for _ in range(14):  # several episodes per row, rows resetting at different steps
        step = policy.step(obs)
        for row in range(3):
            ids = [int(t) for t in obs[row] if t < policy.vocab_size]
            assert torch.allclose(step.logits[row], full_logits(policy, ids), atol=1e-4)
        forwards_per_row.append(policy._step_state.attention.shape[1])
        actions = policy.act(obs, generator=gen)
        assert actions.shape == (3,) and actions.dtype == np.int64
        obs, _, _, _, _ = envs.step(actions)
    envs.close()
    # The cache stays compact: never more columns than twice the longest row plus slack.
    assert max(forwards_per_row) <= 2 * obs.shape[1] + 32


def test_a_reset_row_is_spliced_in_without_widening_every_row(policy):
    """A new episode is encoded on its own: the cache grows by one column per step, not by a prompt."""
    from codegym.agents.policy import _spliceable

    envs = gym.make_vec("codegym/Arith-Token-v0", num_envs=4, tokenizer=policy.tokenizer, max_new_tokens=3)
    obs, _ = envs.reset(seed=3)
    policy.reset_steps()
    gen = torch.Generator().manual_seed(2)
    columns, resets = [], 0
    for _ in range(12):
        before = policy._step_state
        known = [list(r) for r in before.ids] if before is not None else None
        step = policy.step(obs)
        rows = [[int(t) for t in obs[row] if t < policy.vocab_size] for row in range(4)]
        if known is not None:
            resets += sum(rows[i][: len(known[i])] != known[i] for i in range(4))
        for row in range(4):
            assert torch.allclose(step.logits[row], full_logits(policy, rows[row]), atol=1e-4)
        columns.append((policy._step_state.attention.shape[1], max(len(r) for r in rows)))
        obs, _, _, _, _ = envs.step(policy.act(obs, generator=gen))
    envs.close()
    assert _spliceable(policy._step_state.cache) and resets >= 4
    for (previous, _), (now, longest) in zip(columns, columns[1:]):
        assert now <= max(previous + 1, longest), columns


def test_act_respects_the_action_mask(policy):
    obs = {"ids": np.array([5, 6, 7]), "action_mask": np.zeros(policy.vocab_size, dtype=np.int8)}
    obs["action_mask"][[11, 42]] = 1
    gen = torch.Generator().manual_seed(0)
    policy.reset_steps()
    assert {policy.act(obs, generator=gen) for _ in range(20)} <= {11, 42}


def test_cuda_when_present(tokenizer):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here: the same code runs on a GPU with device='auto'")
    policy = LMPolicy.from_pretrained(tiny_model("gpt2", len(tokenizer)), tokenizer=tokenizer, device="auto")
    assert policy.device.type == "cuda"
    out = policy.sample(PROMPTS, n=2, max_new_tokens=8, seed=0)
    recomputed = policy.log_probs(out.prompt_ids, out.completion_ids, out.mask)
    assert torch.allclose(recomputed.float(), out.logprobs, atol=2e-2)  # bf16 on CUDA


def test_default_model_loads_when_shipped():
    from codegym.agents.policy import DEFAULT_MODEL_DIR

    if not (DEFAULT_MODEL_DIR / "config.json").exists():
        pytest.skip(f"no default model in {DEFAULT_MODEL_DIR} yet (codegym pretrain makes it)")
    policy = LMPolicy.from_pretrained("default", device="cpu")
    assert policy.eos_token_id != policy.pad_token_id
    assert Path(DEFAULT_MODEL_DIR / "model.safetensors").stat().st_size <= 20 * 2**20
    out = policy.sample(
        [codegym.load_suite("arith").split("train")[0].prompt], n=2, max_new_tokens=32, seed=0
    )
    assert len(out.texts) == 2
