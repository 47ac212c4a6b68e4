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
    # The counts that README.md, docs/suites.md and docs/envs.md state (tasks, train, test).
    documented = {
        "humaneval": (164, 132, 32),
        "basic": (151, 120, 31),
        "arith": (200, 178, 22),
        "listops": (200, 152, 48),
        "mbpp": (9, 7, 2),
        "apps": (6, 4, 2),
    }
    assert {name: tuple(int(v) for v in lines[name][1:4]) for name in documented} == documented
    assert "1117 call / 16 assert tests, 380 visible examples" in " ".join(lines["humaneval"])


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


def test_python_dash_m_codegym_works():
    proc = subprocess.run(
        [sys.executable, "-m", "codegym", "suites"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "humaneval" in proc.stdout
