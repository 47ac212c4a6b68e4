"""The ``codegym`` command-line tool (also ``python -m codegym``).

Subcommands:
    suites   list the registered suites with their task counts
    tasks    list a suite's tasks, or show one task (prompt, visible examples, reference)
    demo      the main job: the default model learns arith programs (``codegym demo --help``)
    pretrain  make the embedded default model (``codegym pretrain --help``)
    eval      pass@k of a model on a suite (``codegym eval --help``)
    train     train an LLM policy with PPO or REINFORCE (``codegym train --help``)
    train-verifier  train the verifier of ``eval --rerank verifier|lever`` (``codegym train-verifier --help``)

The last five live in ``codegym.agents`` and need the ``train`` extra.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from codegym.suites import list_suites, load_suite
from codegym.tasks import Task

Command = Callable[[argparse.Namespace], int]


def _cmd_suites(args: argparse.Namespace) -> int:
    print(f"{'suite':<12} {'tasks':>6}  {'train':>6} {'test':>6}  note")
    for name in list_suites():
        try:
            suite = load_suite(name)
        except Exception as exc:  # a broken third-party suite must not hide the others
            print(f"{name:<12} {'-':>6}  {'-':>6} {'-':>6}  cannot load: {exc}")
            continue
        note = getattr(suite, "note", "")
        train, test = len(suite.split("train")), len(suite.split("test"))
        print(f"{name:<12} {len(suite):>6}  {train:>6} {test:>6}  {note}")
    return 0


def _format_test(task: Task, test: object) -> str:
    from codegym.tasks import AssertTest, CallTest, StdioTest

    if isinstance(test, CallTest):
        return f"{test.describe_input(task.entry_point)} == {test.expected!r}"
    if isinstance(test, StdioTest):
        return f"stdin {test.stdin!r} -> stdout {test.expected_stdout!r}"
    if isinstance(test, AssertTest):
        return test.code.strip()
    return repr(test)


def _cmd_tasks(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite)
    if args.split:
        suite = suite.split(args.split)
    if args.task_id is None:
        for task in suite:
            kinds = sorted({t.kind for t in task.tests})
            print(
                f"{task.task_id:<32} difficulty={task.difficulty} tests={len(task.tests)} ({'/'.join(kinds)})"
            )
        print(f"{len(suite)} tasks")
        return 0
    try:
        task = suite.get(args.task_id)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    print(f"# {task.task_id}  (entry point: {task.entry_point or '-'}, difficulty {task.difficulty})")
    print("\n## Prompt\n" + task.prompt)
    print("## Visible examples")
    for test in task.visible_tests:
        print("  " + _format_test(task, test))
    print(f"## Hidden tests: {len(task.tests)} ({', '.join(sorted({t.kind for t in task.tests}))})")
    print("## Reference\n" + task.reference)
    if task.metadata:
        print("## Metadata")
        for key, value in sorted(task.metadata.items()):
            print(f"  {key}: {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="codegym", description="Code generation as Gymnasium RL environments."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("suites", help="list the registered suites with task counts")
    p.set_defaults(func=_cmd_suites)

    p = sub.add_parser("tasks", help="list a suite's tasks, or show one task")
    p.add_argument("suite", help="suite name, e.g. basic (see `codegym suites`)")
    p.add_argument("task_id", nargs="?", help="show this task in full")
    p.add_argument("--split", choices=["train", "test"], help="only this split")
    p.set_defaults(func=_cmd_tasks)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []
"""Subcommands contributed by other modules (``demo``, ``bench``): each adds its own parser."""


def _agents_command(name: str, module: str, summary: str) -> Callable[[argparse._SubParsersAction], None]:
    """A registrar for a subcommand that lives in ``codegym.agents`` (imported only when the CLI is built).

    Without the ``train`` extra the subcommand still appears, and running it says what to install.
    """

    def register(sub: argparse._SubParsersAction) -> None:
        import importlib

        try:
            importlib.import_module(module).add_parser(sub)
        except ImportError as exc:
            reason = f"codegym {name} needs {exc.name or exc}: pip install 'codegym[train]'"
            p = sub.add_parser(name, help=f"{summary} (needs the train extra)")
            p.set_defaults(func=lambda args: _missing_extra(reason))

    return register


def _missing_extra(reason: str) -> int:
    print(f"error: {reason}", file=sys.stderr)
    return 2


_EXTRA_COMMANDS.extend(
    [
        _agents_command("demo", "codegym.agents.demo", "the main job"),
        _agents_command("pretrain", "codegym.agents.pretrain", "make the embedded default model"),
        _agents_command("eval", "codegym.agents.evaluation", "pass@k of a model on a suite"),
        _agents_command("train", "codegym.agents.train", "train an LLM policy with PPO or REINFORCE"),
        _agents_command(
            "train-verifier", "codegym.agents.search", "train a verifier for eval --rerank verifier|lever"
        ),
    ]
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyError as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
