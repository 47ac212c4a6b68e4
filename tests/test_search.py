"""Best-of-n reranking (agents/search.py): LEVER by hand, visible tests, the verifier, and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from codegym.agents.evaluation import evaluate
from codegym.agents.search import (
    EXEC_FEATURES,
    Candidate,
    Verifier,
    candidate_features,
    execution_signature,
    lever_scores,
    lever_select,
    make_candidates,
    policy_features,
    rerank_evaluate,
    roc_auc,
    select,
    train_verifier,
    visible_task,
)

import codegym
from codegym.cli import main
from codegym.execution.result import ExecutionResult
from codegym.execution.result import TestOutcome as Outcome
from codegym.tasks import CallTest, Task
from tests.conftest import require


@pytest.fixture(scope="module")
def executor():
    ex = codegym.Executor(timeout_s=1.0, workers=2)
    try:
        yield ex
    finally:
        ex.close()


@pytest.fixture(scope="module")
def default_policy():
    require("torch", "train")
    require("transformers", "train")
    from codegym.agents.policy import LMPolicy

    return LMPolicy.from_pretrained("default", device="cpu")


# ---------------------------------------------------------------------------------------------------------
# LEVER's aggregation, by hand


def _visible(status: str, *outcomes: tuple[str, str]) -> ExecutionResult:
    tests = tuple(Outcome(s == "passed", s, message=m) for s, m in outcomes)
    return ExecutionResult(status=status, tests=tests)  # type: ignore[arg-type]


def test_lever_aggregation_on_a_hand_computed_example():
    # Five samples: p_LM, p_verifier, execution result on the visible inputs, program text.
    p_lm = [0.2, 0.1, 0.3, 0.2, 0.05]
    p_ver = [0.4, 0.9, 0.2, 0.4, 0.8]
    signatures = ["A", "B", "A", "A", "B"]
    programs = ["a1", "b1", "a2", "a1", "b2"]  # sample 3 repeats sample 0's program
    logs = [math.log(p) for p in p_lm]
    # A: 0.2 * 0.4 + 0.3 * 0.2 = 0.14 (the repeated a1 counts once); B: 0.1 * 0.9 + 0.05 * 0.8 = 0.13.
    scores = lever_scores(logs, p_ver, signatures, programs)
    assert list(scores) == ["A", "B"]
    assert scores["A"] == pytest.approx(0.14, abs=1e-12)
    assert scores["B"] == pytest.approx(0.13, abs=1e-12)
    # Group A wins although the single best product (0.09, sample 1) is in B; in A, a1 (0.08) beats a2.
    assert lever_select(logs, p_ver, signatures, programs) == 0
    # Counting every sample (no de-duplication), A is 0.08 + 0.06 + 0.08.
    assert lever_scores(logs, p_ver, signatures)["A"] == pytest.approx(0.22, abs=1e-12)
    # Ranking samples alone by p_LM * p_v would pick sample 1: the aggregation is what changes the choice.
    assert max(range(5), key=lambda i: p_lm[i] * p_ver[i]) == 1
    # A verifier that zeroes a group's programs removes it.
    assert lever_select(logs, [0.0, 0.9, 0.0, 0.0, 0.8], signatures, programs) == 1
    with pytest.raises(ValueError, match="outside"):
        lever_scores(logs, [1.5, 0, 0, 0, 0], signatures)
    with pytest.raises(ValueError, match="5 log-probs, 4 verifier"):
        lever_scores(logs, p_ver[:4], signatures)


def test_select_groups_candidates_by_their_visible_results_and_takes_sequence_or_mean_probability():
    wrong_7 = ("failed", "expected 2, got 7")
    candidates = [
        # program, summed log-prob, tokens, visible result
        Candidate("p0", math.log(0.2), 4, _visible("passed", ("passed", ""), ("passed", ""))),
        Candidate("p1", math.log(0.1), 2, _visible("failed", ("passed", ""), wrong_7)),
        Candidate("p2", math.log(0.3), 10, _visible("passed", ("passed", ""), ("passed", ""))),
        Candidate("p3", math.log(0.25), 2, _visible("failed", ("passed", ""), wrong_7)),
    ]
    signatures = [execution_signature(c) for c in candidates]
    assert (
        signatures[0] == signatures[2] and signatures[1] == signatures[3] and signatures[0] != signatures[1]
    )
    probs = [0.5, 0.5, 0.5, 0.5]
    # Sequence probability: passing group 0.5 * (0.2 + 0.3) = 0.25 > failing 0.5 * (0.1 + 0.25) = 0.175.
    assert select(candidates, "lever", verifier_probs=probs) == 2
    # Mean token probability: passing 0.5 * (0.2^(1/4) + 0.3^(1/10)) = 0.8337, failing
    # 0.5 * (0.1^(1/2) + 0.25^(1/2)) = 0.4081; in the passing group 0.3^(1/10) = 0.887 beats 0.2^(1/4).
    assert select(candidates, "lever", verifier_probs=probs, lm_prob="mean") == 2
    # A verifier that trusts the failing group's programs turns the choice around.
    assert select(candidates, "lever", verifier_probs=[0.1, 0.9, 0.1, 0.9]) == 3
    # The verifier alone: the highest p_verifier, ties to the highest mean token log-prob.
    assert select(candidates, "verifier", verifier_probs=[0.6, 0.9, 0.6, 0.9]) == 3
    with pytest.raises(ValueError, match="needs one verifier probability per candidate"):
        select(candidates, "lever")
    with pytest.raises(ValueError, match="method must be one of visible-tests, verifier, lever"):
        select(candidates, "best")


# ---------------------------------------------------------------------------------------------------------
# Visible-test reranking with the real sandbox


TASK = Task(
    task_id="hand/double",
    prompt="Write f(x) that returns 2 * x.\nExamples:\n    f(1) == 2\n    f(3) == 6\n",
    entry_point="f",
    reference="def f(x):\n    return 2 * x\n",
    tests=tuple(CallTest((x,), 2 * x) for x in (0, 1, 3, 5, 200)),
    visible_tests=(CallTest((1,), 2), CallTest((3,), 6)),
)


def test_visible_tests_pick_the_program_that_passes_the_examples(executor):
    programs = [
        "def f(x):\n    return x + 1\n",  # right on f(1) only
        "def f(x)\n    return 2 * x\n",  # syntax error
        "def f(x):\n    return x + x\n",  # right
        "def f(x):\n    while x > 100:\n        pass\n    return 2 * x\n",  # right on the examples only
    ]
    (candidates,) = make_candidates([TASK], [programs], executor=executor)
    assert [c.visible.status for c in candidates] == ["failed", "syntax_error", "passed", "passed"]
    assert [c.visible_pass_rate for c in candidates] == [0.5, 0.0, 1.0, 1.0]
    # What counts is the verdict on the hidden tests: the loop times out on f(200).
    assert [c.result.status for c in candidates] == ["failed", "syntax_error", "passed", "timeout"]
    # The visible run does not contain the hidden tests, so the hidden timeout does not leak into it.
    assert visible_task(TASK).tests == TASK.visible_tests and visible_task(TASK).visible_tests == ()
    assert candidates[3].visible.status == "passed"
    # Without log-probs a tie goes to the earliest sample; with them, to the higher mean token log-prob.
    assert select(candidates, "visible-tests") == 2
    candidates[2].logprob, candidates[2].num_tokens = -12.0, 6
    candidates[3].logprob, candidates[3].num_tokens = -10.0, 20
    assert select(candidates, "visible-tests") == 3  # mean -0.5 beats -2.0 (the sum would pick 2 too)
    candidates[3].logprob = -60.0
    assert select(candidates, "visible-tests") == 2
    # A task without visible examples: no visible run, every program scores 0, one LEVER group.
    bare = Task("hand/bare", "f", "f", TASK.reference, TASK.tests)
    (alone,) = make_candidates([bare], [programs[:2]], executor=executor)
    assert visible_task(bare) is None and all(c.visible is None for c in alone)
    assert execution_signature(alone[0]) == execution_signature(alone[1])
    assert select(alone, "visible-tests") == 0


# ---------------------------------------------------------------------------------------------------------
# The verifier


def _variants(task: Task) -> list[str]:
    """The reference, a commuted form where the operator allows it (passing), and mutations (failing)."""
    tokens = list(task.metadata["reference_tokens"])
    prefix, suffix = task.metadata["program_prefix"], task.metadata["program_suffix"]
    out = [tokens]
    if len(tokens) == 3 and tokens[1] in "+*":
        out.append(tokens[::-1])
    swap = {"+": "-", "-": "+", "*": "+"}
    out.append([swap.get(t, t) for t in tokens])
    out.append([str((int(t) + 1) % 10) if t.isdigit() else t for t in tokens])
    return [prefix + "".join(t) + suffix for t in out]


def test_verifier_separates_passing_from_failing_programs_on_held_out_tasks(default_policy, executor):
    tasks = list(codegym.load_suite("arith").split("train"))[:60]
    rows = make_candidates(tasks, [_variants(t) for t in tasks], executor=executor, policy=default_policy)
    fit_rows, held_rows = rows[:40], rows[40:]

    def data(groups):
        flat = [c for row in groups for c in row]
        return candidate_features(flat), np.array([int(c.passed) for c in flat])

    x_fit, y_fit = data(fit_rows)
    x_held, y_held = data(held_rows)
    hidden = x_fit.shape[1] - len(EXEC_FEATURES)
    assert hidden == default_policy.model.config.n_embd
    assert 0.25 < y_fit.mean() < 0.75 and 0 < y_held.sum() < len(y_held)  # both classes on both sides
    verifier = Verifier.fit(x_fit, y_fit, l2=0.1)
    probs = verifier.predict_proba(x_held)
    # Held-out tasks: a random verifier scores AUC 0.5 and accuracy near the majority share.
    assert roc_auc(y_held, probs) > 0.9
    assert ((probs >= 0.5) == y_held).mean() > 0.8
    # The policy's hidden state alone (no execution features) still ranks far better than chance.
    alone = Verifier.fit(x_fit[:, :hidden], y_fit, l2=0.01)
    assert roc_auc(y_held, alone.predict_proba(x_held[:, :hidden])) > 0.7
    # The fit is deterministic (convex, from zero weights), and survives a save/load round trip.
    again = Verifier.fit(x_fit, y_fit, l2=0.1)
    np.testing.assert_allclose(again.weight, verifier.weight, atol=1e-8)


def test_roc_auc_and_verifier_errors(tmp_path):
    # Pairs (positive, negative): 0.9>0.1, 0.9>0.4, 0.4>0.1, 0.4=0.4 (half): 3.5 / 4.
    assert roc_auc([1, 0, 1, 0], [0.9, 0.1, 0.4, 0.4]) == pytest.approx(0.875)
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))
    with pytest.raises(ValueError, match="all 3 samples are passing"):
        Verifier.fit(np.zeros((3, 2)), [1, 1, 1])
    verifier = Verifier.fit(np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]]), [1, 0, 1, 0])
    with pytest.raises(ValueError, match=r"expected \[N, 2\] features"):
        verifier.predict_proba(np.zeros((1, 3)))
    with pytest.raises(FileNotFoundError, match="codegym train-verifier"):
        Verifier.load(tmp_path)
    with pytest.raises(ValueError, match="has no hidden state"):
        candidate_features([Candidate("def f(x):\n    return x\n")])


@pytest.fixture(scope="module")
def trained(default_policy, executor, tmp_path_factory):
    """A verifier trained on the default model's samples of 16 arith train tasks."""
    verifier, summary = train_verifier(
        default_policy, "arith", n=4, limit=16, executor=executor, progress=False, seed=3
    )
    path = verifier.save(tmp_path_factory.mktemp("verifier"))
    return verifier, summary, path


def test_train_verifier_uses_the_train_split_only_and_saves_what_it_trained_on(trained):
    verifier, summary, path = trained
    assert (summary.num_tasks, summary.num_samples) == (16, 64)
    assert (summary.train_tasks, summary.val_tasks) == (13, 3)
    assert 0 < summary.positive_share < 1 and 0.0 <= summary.train_auc <= 1.0
    assert set(summary.grid) == {"0.001", "0.01", "0.1", "1"} and summary.l2 in (0.001, 0.01, 0.1, 1.0)
    meta = json.loads((path / "verifier.json").read_text())
    assert meta["split"] == "train" and meta["suite"] == "arith" and meta["n"] == 4
    assert meta["features"]["exec"] == list(EXEC_FEATURES) and meta["features"]["hidden"]["size"] == 128
    # The training prompts are those of the first train tasks; no test task is among them.
    from codegym.agents.search import _prompt_key

    suite = codegym.load_suite("arith")
    assert set(meta["training_prompts"]) == {_prompt_key(t.prompt) for t in list(suite.split("train"))[:16]}
    assert not set(meta["training_prompts"]) & {_prompt_key(t.prompt) for t in suite.split("test")}
    loaded = Verifier.load(path)
    x = np.random.default_rng(0).normal(size=(5, verifier.num_features))
    np.testing.assert_allclose(loaded.predict_proba(x), verifier.predict_proba(x), rtol=0, atol=1e-12)
    assert loaded.info["policy"] == verifier.info["policy"]


@pytest.fixture(scope="module")
def tiny():
    """A random-weight two-layer GPT-2 (hidden size 32, context 128)."""
    require("torch", "train")
    from codegym.agents.policy import LMPolicy

    from tests.lm_fixtures import tiny_model, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    return LMPolicy.from_pretrained(tiny_model("gpt2", len(tokenizer)), tokenizer=tokenizer, device="cpu")


def test_policy_features_are_the_policys_log_probs_whatever_the_batch(tiny):
    import torch

    prompts = ["Write f(x) that returns x + 3.\n", "def add(a, b):\n"]
    programs = ["def f(x):\n    return x+3\n", "    return a + b\n    # and a longer tail\n"]
    hidden, logprob, num_tokens = policy_features(tiny, prompts, programs, batch_size=2)
    tails = [[*tiny.tokenizer(p, add_special_tokens=False)["input_ids"], tiny.eos_token_id] for p in programs]
    assert num_tokens.tolist() == [len(t) for t in tails]
    width = max(len(t) for t in tails)
    ids = torch.tensor([t + [tiny.pad_token_id] * (width - len(t)) for t in tails])
    mask = torch.tensor([[i < len(t) for i in range(width)] for t in tails])
    with torch.no_grad():
        expected = tiny.score([tiny.encode_prompt(p) for p in prompts], ids, mask).logprobs.sum(-1)
    np.testing.assert_allclose(logprob, expected.double().numpy(), atol=1e-4)
    # One row per forward gives the same numbers: padding changes nothing.
    alone = policy_features(tiny, prompts, programs, batch_size=1)
    np.testing.assert_allclose(alone[0], hidden, atol=1e-5)
    np.testing.assert_allclose(alone[1], logprob, atol=1e-4)
    # A row longer than the context of 128 tokens is cut to fit, not refused.
    long_hidden, long_logprob, long_tokens = policy_features(tiny, ["x = 1\n" * 100], ["y = 2\n" * 100])
    assert np.isfinite(long_hidden).all() and np.isfinite(long_logprob).all() and 0 < long_tokens[0] < 128


def test_a_verifier_of_another_hidden_size_is_refused_before_sampling(trained, tiny):
    with pytest.raises(ValueError, match="hidden states of size 128.*this policy's are of size 32"):
        rerank_evaluate(tiny, "arith", methods="lever", verifier=trained[0], n=2, limit=1, progress=False)


# ---------------------------------------------------------------------------------------------------------
# rerank_evaluate and codegym eval --rerank


def test_rerank_evaluate_samples_what_evaluate_samples(default_policy, executor):
    kwargs = dict(n=4, limit=10, seed=5, executor=executor, progress=False)
    report = rerank_evaluate(default_policy, "arith", methods=["visible-tests"], **kwargs)
    plain = evaluate(default_policy, "arith", k=(1, 4), **kwargs)
    # The same samples: plain pass@1 and pass@n are evaluate's, task by task.
    assert report.pass_at_1 == pytest.approx(plain.pass_at_k[1], abs=1e-12)
    assert report.pass_at_n == pytest.approx(plain.pass_at_k[4], abs=1e-12)
    assert [r.num_correct for r in report.tasks] == [r.num_correct for r in plain.tasks]
    assert report.status_counts == plain.status_counts
    # A reranker's pass@1 lies between "never right" and the ceiling; the chosen sample's verdict counts.
    assert 0.0 <= report.reranked["visible-tests"] <= report.pass_at_n
    for row in report.tasks:
        assert row.chosen_passed["visible-tests"] <= (row.num_correct > 0)
    gain = report.gain("visible-tests")
    assert report.gain_ci["visible-tests"][0] <= gain <= report.gain_ci["visible-tests"][1]


def test_cli_rerank_prints_and_writes_the_three_numbers(tmp_path, capsys, trained):
    json_path = tmp_path / "rerank.json"
    argv = ["eval", "--model", "default", "--suite", "arith", "-n", "4", "--limit", "8", "--quiet"]
    argv += ["--device", "cpu", "--seed", "1"]
    assert main([*argv, "--rerank", "visible-tests,lever", "--verifier", str(trained[2])]) == 0
    out = capsys.readouterr().out
    assert "| pass@1 | visible-tests pass@1 | lever pass@1 | pass@4 |" in out
    assert "visible-tests: " in out and "points over pass@1" in out and "lever: " in out
    assert main([*argv, "--rerank", "visible-tests", "--json", str(json_path)]) == 0
    data = json.loads(json_path.read_text())
    assert data["methods"] == ["visible-tests"] and data["n"] == 4 and data["num_tasks"] == 8
    assert data["reranked"]["visible-tests"] <= data["pass_at_n"]
    assert data["pass_at_1"] <= data["pass_at_n"]
    assert data["gain"]["visible-tests"] == pytest.approx(
        data["reranked"]["visible-tests"] - data["pass_at_1"]
    )
    plain = evaluate("default", "arith", n=4, k=1, limit=8, seed=1, device="cpu", progress=False)
    assert data["pass_at_1"] == pytest.approx(plain.pass_at_k[1], abs=1e-12)


def test_cli_rerank_none_is_plain_eval(capsys):
    argv = [
        "eval",
        "--model",
        "reference",
        "--suite",
        "arith",
        "-n",
        "1",
        "-k",
        "1",
        "--limit",
        "3",
        "--quiet",
    ]
    assert main(argv) == 0
    plain = capsys.readouterr().out
    assert main([*argv, "--rerank", "none"]) == 0
    assert capsys.readouterr().out.split("\n")[:-2] == plain.split("\n")[:-2]  # the timing line differs


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--rerank", "best"], "--rerank must be none or one or more of visible-tests, verifier, lever"),
        (["--rerank", "lever"], "--rerank lever needs --verifier DIR"),
        (["--rerank", "verifier"], "--rerank verifier needs --verifier DIR"),
        (["--rerank", "lever", "--verifier", "/nonexistent"], "verifier.json not found"),
    ],
)
def test_cli_rerank_errors_exit_2(extra, message, capsys):
    argv = ["eval", "--model", "default", "--suite", "arith", "-n", "2", "--limit", "2", "--quiet", *extra]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_cli_train_verifier(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train-verifier", "--help"])
    assert exc.value.code == 0 and "TRAIN split" in capsys.readouterr().out
    out = tmp_path / "v"
    argv = ["train-verifier", "--suite", "arith", "-n", "4", "--limit", "10", "--out", str(out), "--quiet"]
    assert main([*argv, "--device", "cpu", "--l2", "0.1"]) == 0
    printed = capsys.readouterr().out
    assert "40 samples of 10 train tasks" in printed
    assert "train:      accuracy" in printed and "validation: accuracy" in printed and "AUC" in printed
    assert Verifier.load(out).info["l2"] == 0.1
    assert main(["train-verifier", "--suite", "arith", "--out", str(out), "--model", "random"]) == 2
    assert "has none" in capsys.readouterr().err
