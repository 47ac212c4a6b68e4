"""The command-line tool: every subcommand has --help, and the commands print what they promise."""

from __future__ import annotations

import subprocess
import sys

import pytest

from codegym.cli import main


@pytest.mark.parametrize("argv", [["--help"], ["suites", "--help"], ["tasks", "--help"], ["demo", "--help"]])
def test_every_subcommand_has_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage: codegym" in capsys.readouterr().out


def test_suites_lists_counts(capsys):
    assert main(["suites"]) == 0
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["humaneval"][1] == "164"
    assert int(lines["basic"][1]) >= 100
    for name in ("arith", "listops", "mbpp", "apps"):
        assert int(lines[name][1]) > 0
        assert int(lines[name][2]) + int(lines[name][3]) == int(lines[name][1])


def test_tasks_lists_and_shows_one(capsys):
    assert main(["tasks", "humaneval"]) == 0
    out = capsys.readouterr().out
    assert "HumanEval/0" in out and out.rstrip().endswith("164 tasks")
    assert main(["tasks", "humaneval", "HumanEval/0"]) == 0
    out = capsys.readouterr().out
    assert "def has_close_elements" in out and "## Reference" in out and "## Visible examples" in out


def test_unknown_task_and_suite_are_clear_errors(capsys):
    assert main(["tasks", "humaneval", "HumanEval/999"]) == 2
    assert "no task 'HumanEval/999'" in capsys.readouterr().err
    assert main(["tasks", "nosuchsuite"]) == 2
    assert "known suites" in capsys.readouterr().err


def test_demo_runs_and_checks_references_and_junk(capsys):
    assert main(["demo", "--episodes", "6", "--seed", "1", "--no-train"]) == 0
    out = capsys.readouterr().out
    assert "reference" in out and "100.0%" in out and "OK" in out


def test_python_dash_m_codegym_works():
    proc = subprocess.run(
        [sys.executable, "-m", "codegym", "suites"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "humaneval" in proc.stdout


@pytest.mark.slow
def test_demo_trains_a_policy_that_beats_random(capsys):
    pytest.importorskip("sb3_contrib")
    assert main(["demo", "--episodes", "4", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    rows = {
        line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("random:1", "ppo:1"))
    }
    assert rows["random:1"][4] == "0.0%" and rows["ppo:1"][4] == "100.0%"
    assert "the trained policy beats the random one on its task: OK" in out
