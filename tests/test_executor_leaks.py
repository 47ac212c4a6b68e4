"""10,000 runs in a row leak no processes, file descriptors, temporary directories or parent memory."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

import codegym
from codegym import CallTest, StdioTest, Task
from codegym.execution.backend import LocalBackend

ADD = Task(
    task_id="leak/add",
    prompt="",
    entry_point="add",
    reference="def add(a, b):\n    return a + b\n",
    tests=(CallTest((1, 2), 3), CallTest((2, 3), 5)),
)
ECHO = Task(
    task_id="leak/echo", prompt="", entry_point="", reference="print(input())\n", tests=(StdioTest("x", "x"),)
)

# A mix of outcomes: pass, wrong answer, syntax error, runtime error, a forked child, a written file.
PROGRAMS = [
    (ADD, "def add(a, b):\n    return a + b\n# {i}\n"),
    (ADD, "def add(a, b):\n    return a - b  # {i}\n"),
    (ADD, "def add(a, b:\n    return {i}\n"),
    (ADD, "raise ValueError({i})\n"),
    (
        ADD,
        "import os\nif os.fork() == 0:\n    import time\n    time.sleep(60)\n"
        "def add(a, b):\n    return a + b  # {i}\n",
    ),
    (ADD, "open('f{i}.txt', 'w').write('x' * 1000)\ndef add(a, b):\n    return a + b\n"),
    (ECHO, "print(input())  # {i}\n"),
]
EXPECTED = ["passed", "failed", "syntax_error", "runtime_error", "passed", "passed", "passed"]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _workroot_entries(backend: LocalBackend) -> list[str]:
    entries = []
    for hello in backend.hellos():
        root = Path(f"/proc/{hello['pid']}/root") / hello["features"]["workroot"].lstrip("/")
        entries += [p.name for p in root.iterdir()]
    return entries


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")
def test_ten_thousand_runs_leak_nothing() -> None:
    with codegym.Executor(workers=2, cache=False, timeout_s=5.0) as ex:
        backend = ex.backend
        assert isinstance(backend, LocalBackend)
        ex.run_batch([(t, p.format(i=-1)) for t, p in PROGRAMS])  # start the pool
        zygote_pids = [h["pid"] for h in backend.hellos()]
        uids = {h["features"]["uid"] for h in backend.hellos()}
        fds_before = _open_fds()
        tmp_before = set(os.listdir("/tmp"))
        gc.collect()
        rss_before = _rss_kb()
        total, batch = 10_000, 500
        for start in range(0, total, batch):
            pairs = [PROGRAMS[i % len(PROGRAMS)] for i in range(start, start + batch)]
            results = ex.run_batch(
                [(task, program.format(i=start + k)) for k, (task, program) in enumerate(pairs)]
            )
            statuses = [r.status for r in results]
            assert statuses == [EXPECTED[i % len(PROGRAMS)] for i in range(start, start + batch)], statuses[
                :20
            ]
            if start == 1000:  # the parent's memory after warm-up: later growth would be a leak
                gc.collect()
                rss_before = _rss_kb()
        gc.collect()
        # Same zygotes throughout (none crashed), nothing left behind.
        assert [h["pid"] for h in backend.hellos()] == zygote_pids
        assert backend.restarts == 0
        assert _open_fds() == fds_before
        assert {
            p for p in set(os.listdir("/tmp")) - tmp_before if "codegym" in p or p.startswith("job")
        } == set()
        assert _workroot_entries(backend) == []
        leftovers = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    status = Path("/proc", entry, "status").read_text()
                except OSError:
                    continue
                uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
                if int(uid_line.split()[1]) in uids:
                    leftovers.append(entry)
        assert leftovers == []
        for pid in zygote_pids:  # the zygotes themselves do not grow either
            zyg_rss = next(
                int(line.split()[1])
                for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("VmRSS:")
            )
            assert zyg_rss < 64 * 1024, zyg_rss
        assert _rss_kb() - rss_before < 20 * 1024, (rss_before, _rss_kb())
