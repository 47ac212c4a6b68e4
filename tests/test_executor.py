"""The executor: verdicts, feedback, strict comparison, stdio, cache, validation, pickling, robustness."""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import codegym
from codegym import AssertTest, CallTest, StdioTest, Task
from codegym.execution.backend import LocalBackend, ZygotePool, ZygoteProcess
from codegym.execution.compare import (
    WireError,
    decode_wire,
    encode_wire,
    normalize_stdout,
    stdout_equal,
    strict_equal,
)
from codegym.execution.executor import Limits, _parse_records

ADD = Task(
    task_id="t/add",
    prompt="def add(a, b):\n",
    entry_point="add",
    reference="def add(a, b):\n    return a + b\n",
    tests=(CallTest((1, 2), 3), CallTest((10, -4), 6), CallTest((0, 0), 0)),
    visible_tests=(CallTest((2, 2), 4),),
)
SUM_STDIN = Task(
    task_id="t/sum",
    prompt="Print the sum of the integers on stdin.",
    entry_point="",
    reference="print(sum(map(int, input().split())))\n",
    tests=(StdioTest("1 2\n", "3\n"), StdioTest("5 5 5", "15")),
    visible_tests=(StdioTest("0 0", "0"),),
)


@pytest.fixture(scope="module")
def ex() -> Iterator[codegym.Executor]:
    with codegym.Executor(timeout_s=1.0, memory_mb=256, workers=2) as executor:
        yield executor


# ---------------------------------------------------------------- comparison


@pytest.mark.parametrize(
    "expected,got,tol,equal",
    [
        (1, 1, None, True),
        (1, True, None, False),
        (True, 1, None, False),
        (1, 1.0, None, False),
        (1.0, 1.0 + 1e-12, None, False),
        (1.0, 1.0 + 1e-12, 1e-9, True),
        (float("nan"), float("nan"), None, True),
        ([1, 2], (1, 2), None, False),
        ((1, [2.0]), (1, [2.0]), None, True),
        ({1: "a"}, {True: "a"}, None, False),
        ({"x": 1.0}, {"x": 1.0000001}, 1e-3, True),
        ({1, 2}, {2, 1}, None, True),
        ({1, 2}, frozenset({1, 2}), None, False),
        ({1}, {True}, None, False),
        ("ab", "ab", None, True),
        (b"ab", "ab", None, False),
        (None, None, None, True),
        (None, 0, None, False),
    ],
)
def test_strict_equal(expected: object, got: object, tol: float | None, equal: bool) -> None:
    assert strict_equal(expected, got, tol) is equal


@pytest.mark.parametrize(
    "value",
    [None, True, 0, -7, 2**5000, -(2**5000), 1.5, math.inf, "héllo\udc80", b"\x00\xff", [1, [2]],
     (1, (2,)), {1, 2}, frozenset({"a"}), {(1, 2): {"k": [None]}, "z": b""}, ()],
)  # fmt: skip
def test_wire_round_trip(value: object) -> None:
    import json

    text = json.dumps(encode_wire(value))
    assert strict_equal(value, decode_wire(json.loads(text)))


@pytest.mark.parametrize("bad", [{"x": 1}, {"d": [[[1], 2]]}, {"t": 3}, {"b": 5}, {"s": [1], "t": [2]}])
def test_decode_wire_rejects_malformed(bad: object) -> None:
    with pytest.raises(WireError):
        decode_wire(bad)


def test_encode_wire_rejects_subclasses() -> None:
    class Sub(int):
        pass

    with pytest.raises(ValueError, match="Sub"):
        encode_wire([Sub(1)])


def test_stdout_normalization() -> None:
    assert normalize_stdout("a  \r\nb\t\n\n\n") == "a\nb"
    assert normalize_stdout("  lead\n") == "  lead"
    assert stdout_equal("1 2\n", "1 2")
    assert not stdout_equal("1 2", "1  2")
    assert stdout_equal("0.3333\n", "0.33333333", float_tol=1e-3)
    assert not stdout_equal("0.3333\n", "0.34", float_tol=1e-3)
    assert not stdout_equal("yes 1.0", "no 1.0", float_tol=1e-3)
    assert not stdout_equal("1.0\n2.0", "1.0 2.0", float_tol=1e-3)


# ---------------------------------------------------------------- verdicts and feedback


def test_reference_passes(ex: codegym.Executor) -> None:
    r = ex.run(ADD, ADD.reference)
    assert r.status == "passed" and r.passed and r.pass_rate == 1.0
    assert [t.status for t in r.tests] == ["passed"] * 3
    assert [t.visible for t in r.visible_tests] == [True]
    assert all(t.verified_in_parent for t in r.tests)
    assert r.feedback == "All 3 tests passed."
    assert r.task_id == "t/add"


def test_wrong_answer_feedback_shows_visible_not_hidden(ex: codegym.Executor) -> None:
    r = ex.run(ADD, "def add(a, b):\n    return a * b\n")
    assert r.status == "failed"
    assert [t.passed for t in r.tests] == [False, False, True]
    assert r.pass_rate == pytest.approx(1 / 3)
    # (2, 2) -> 4 is right for a*b too, so no visible test fails: the feedback only counts hidden tests.
    assert r.feedback == "1/3 hidden tests passed."
    assert "6" not in r.feedback
    r = ex.run(ADD, "def add(a, b):\n    return a - b\n")
    assert r.feedback == "Failed example: add(2, 2)\n  expected: 4\n  got: 0"
    assert r.visible_tests[0].message == "expected 4, got 0"
    assert all(t.message == "wrong answer" for t in r.tests if not t.passed)


def test_syntax_error_feedback(ex: codegym.Executor) -> None:
    r = ex.run(ADD, "def add(a, b:\n    return a\n")
    assert r.status == "syntax_error"
    assert r.feedback == "SyntaxError: '(' was never closed (line 1)\n    def add(a, b:\n           ^"
    assert [t.status for t in r.tests] == ["not_run"] * 3


def test_null_byte_is_a_syntax_error(ex: codegym.Executor) -> None:
    assert ex.run(ADD, "def add(a, b):\n    return a + b\x00\n").status == "syntax_error"


def test_runtime_errors(ex: codegym.Executor) -> None:
    r = ex.run(ADD, "x = 1\ny = x / 0\n")
    assert r.status == "runtime_error"
    assert r.feedback == "ZeroDivisionError: division by zero (line 2)"
    r = ex.run(ADD, "def add(a, b):\n    if a == 10:\n        raise ValueError('ten')\n    return a + b\n")
    assert r.status == "runtime_error"
    assert [t.status for t in r.tests] == ["passed", "runtime_error", "passed"]
    assert r.tests[1].message == "ValueError: ten"
    assert r.feedback == "ValueError: ten (in a hidden test). 2/3 hidden tests passed."
    r = ex.run(ADD, "def plus(a, b):\n    return a + b\n")
    assert r.status == "runtime_error"
    assert r.tests[0].message == "NameError: name 'add' is not defined"


def test_timeout_keeps_finished_tests(ex: codegym.Executor) -> None:
    r = ex.run(ADD, "def add(a, b):\n    while a == 10:\n        pass\n    return a + b\n")
    assert r.status == "timeout"
    assert [t.status for t in r.tests] == ["passed", "timeout", "not_run"]
    assert r.pass_rate == pytest.approx(1 / 3)
    assert r.feedback == "Timed out: the program ran longer than the limit of 1 s."


def test_plain_data_kinds_round_trip(ex: codegym.Executor) -> None:
    values = [None, True, 2**100, -3.25, "s\n", b"\x00", (1, [2]), {1: (2,)}, {3}, frozenset({4}), 2**20000]
    task = Task(
        task_id="t/identity",
        prompt="",
        entry_point="ident",
        reference="def ident(x):\n    return x\n",
        tests=tuple(CallTest((v,), v) for v in values),
    )
    r = ex.run(task, task.reference)
    assert r.status == "passed", r.feedback
    # Arguments are fresh per test: mutating one does not change another's.
    r = ex.run(task, "def ident(x):\n    return list(x) if type(x) is tuple else x\n")
    assert [t.passed for t in r.tests] == [type(v) is not tuple for v in values]


def test_float_tolerance(ex: codegym.Executor) -> None:
    task = Task(
        task_id="t/third",
        prompt="",
        entry_point="third",
        reference="def third(x):\n    return x / 3\n",
        tests=(CallTest((1.0,), 0.3333, float_tol=1e-3), CallTest((3.0,), 1.0)),
    )
    assert ex.run(task, task.reference).status == "passed"
    assert ex.run(task, "def third(x):\n    return round(x / 3, 1)\n").tests[0].passed is False


def test_unplain_return_is_failed(ex: codegym.Executor) -> None:
    r = ex.run(ADD, "def add(a, b):\n    return iter([a + b])\n")
    assert r.status == "failed"
    assert r.tests[0].message == "returned a value of type list_iterator, which is not plain data"


def test_assert_tests(ex: codegym.Executor) -> None:
    task = Task(
        task_id="t/assert",
        prompt="",
        entry_point="add",
        reference=ADD.reference,
        tests=(AssertTest("assert candidate(1, 2) == 3"), AssertTest("assert candidate('a', 'b') == 'ab'")),
        visible_tests=(AssertTest("assert candidate(2, 2) == 4"),),
    )
    r = ex.run(task, ADD.reference)
    assert r.status == "passed" and [t.verified_in_parent for t in r.tests] == [False, False]
    r = ex.run(task, "def add(a, b):\n    return b + a\n")
    assert [t.status for t in r.tests] == ["passed", "failed"]
    assert r.status == "failed"
    r = ex.run(task, "def add(a, b):\n    return a - b\n")
    assert r.feedback == "Failed check: assert candidate(2, 2) == 4"
    assert r.tests[1].status == "runtime_error"  # 'a' - 'b' raises TypeError, not an assertion


def test_stdio(ex: codegym.Executor) -> None:
    r = ex.run(SUM_STDIN, SUM_STDIN.reference)
    assert r.status == "passed" and r.pass_rate == 1.0
    r = ex.run(SUM_STDIN, "print(15)\n")
    assert [t.passed for t in r.tests] == [False, True]
    assert r.feedback == "Failed example: stdin='0 0'\n  expected output: '0'\n  got: '15\\n'"
    # Exiting with 0 after printing is fine for a stdio program; a non-zero exit is a runtime error.
    assert ex.run(SUM_STDIN, SUM_STDIN.reference + "import sys\nsys.exit(0)\n").status == "passed"
    r = ex.run(SUM_STDIN, SUM_STDIN.reference + "import sys\nsys.exit(3)\n")
    assert r.status == "runtime_error" and r.tests[0].message == "the program exited with code 3"
    r = ex.run(SUM_STDIN, "import sys\nprint(sum(map(int, sys.stdin.buffer.read().split())))\n")
    assert r.status == "passed"
    assert ex.run(SUM_STDIN, "while True:\n    pass\n").status == "timeout"


def test_visible_tests_do_not_decide(ex: codegym.Executor) -> None:
    program = "def add(a, b):\n    return 0 if (a, b) == (2, 2) else a + b\n"
    r = ex.run(ADD, program)
    assert r.status == "passed" and [t.passed for t in r.visible_tests] == [False]


# ---------------------------------------------------------------- batch, cache, validation


def test_batch_order_and_dedup(ex: codegym.Executor) -> None:
    ex.clear_cache()
    before = ex.cache_info()
    programs = [ADD.reference, "def add(a, b):\n    return 0\n", ADD.reference, "x = (", ADD.reference]
    results = ex.run_batch([(ADD, p) for p in programs])
    assert [r.status for r in results] == ["passed", "failed", "passed", "syntax_error", "passed"]
    assert [r.cached for r in results] == [False, False, True, False, True]
    info = ex.cache_info()
    assert info["misses"] - before["misses"] == 3 and info["hits"] - before["hits"] == 2
    again = ex.run(ADD, "def add(a, b):\n    return 0\n")
    assert again.cached and again == results[1]
    assert ex.cache_info()["hits"] - before["hits"] == 3


def test_cache_key_includes_limits_and_tests() -> None:
    with codegym.Executor(timeout_s=1.0, workers=1) as a, codegym.Executor(timeout_s=2.0, workers=1) as b:
        assert a._key(ADD, "x") != b._key(ADD, "x")
        other = Task("t/add", ADD.prompt, "add", ADD.reference, tests=(CallTest((1, 2), 4),))
        assert a._key(ADD, "x") != a._key(other, "x")


def test_cache_off() -> None:
    with codegym.Executor(cache=False, workers=1, timeout_s=1.0) as ex:
        results = ex.run_batch([(ADD, ADD.reference)] * 2)
        assert [r.cached for r in results] == [False, False]
        assert ex.run(ADD, ADD.reference).cached is False
        assert ex.cache_info()["size"] == 0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"timeout_s": 0}, "timeout_s must be a number in \\[0.01, 3600\\], got 0"),
        ({"timeout_s": "5"}, "timeout_s must be a number .* got '5'"),
        ({"memory_mb": 8}, "memory_mb must be an int in \\[16, 1048576\\], got 8"),
        ({"memory_mb": 1.5}, "memory_mb must be an int"),
        ({"workers": 0}, "workers must be an int in \\[1, 256\\], got 0"),
        ({"max_output_bytes": 10}, "max_output_bytes .* got 10"),
        ({"backend": "nope"}, "backend must be one of .* got 'nope'"),
    ],
)
def test_bad_limits(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        codegym.Executor(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"timeout": 2}, "Executor: unknown argument 'timeout' \\(did you mean 'timeout_s'\\?\\);"),
        ({"python_exe": "x"}, "unknown argument 'python_exe' .* the local backend also takes python"),
        ({"backend": "ray", "bogus": 1}, "unknown argument 'bogus'; .* ray backend also takes ray_address"),
    ],
)
def test_unknown_arguments_are_named_with_the_accepted_ones(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(TypeError, match=match):
        codegym.Executor(**kwargs)  # type: ignore[arg-type]


def test_bad_items(ex: codegym.Executor) -> None:
    with pytest.raises(ValueError, match="item 1 \\(task t/add\\): program must be a str, got bytes"):
        ex.run_batch([(ADD, ADD.reference), (ADD, b"print(1)")])
    with pytest.raises(ValueError, match="item 0: task must be a codegym Task, got str"):
        ex.run("t/add", ADD.reference)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="item 0 must be a \\(task, program\\) pair"):
        ex.run_batch([ADD])  # type: ignore[list-item]


def test_oversized_program_is_a_result() -> None:
    with codegym.Executor(workers=1, max_program_bytes=1000) as ex:
        r = ex.run(ADD, "#" * 1001)
        assert r.status == "runtime_error"
        assert r.feedback == "Program not run: it is 1001 bytes, over the limit of 1000 bytes."
        assert ex.run(ADD, ADD.reference).passed


def test_limits_dataclass() -> None:
    assert Limits().wire()["timeout_s"] == 5.0
    with pytest.raises(ValueError, match="max_procs"):
        Limits(max_procs=0)


def test_closed_executor_raises() -> None:
    ex = codegym.Executor(workers=1)
    ex.close()
    ex.close()
    with pytest.raises(RuntimeError, match="closed"):
        ex.run(ADD, ADD.reference)


def test_pickle_round_trip() -> None:
    with codegym.Executor(timeout_s=1.5, workers=1) as ex:
        clone = pickle.loads(pickle.dumps(ex))
        try:
            assert clone.limits == ex.limits and clone.workers == 1
            assert clone.run(ADD, ADD.reference).passed
        finally:
            clone.close()


def test_docker_and_ray_names_are_lazy() -> None:
    """Importing codegym and using the local backend never imports docker or ray (slow, optional)."""
    code = (
        "import sys, codegym, codegym.envs\n"
        "from codegym.execution.executor import make_backend\n"
        "from codegym.execution.backend import LocalBackend\n"
        "b = make_backend('local', 1)\n"
        "assert isinstance(b, LocalBackend), type(b)\n"
        "b.close()\n"
        "mods = ('docker', 'ray', 'codegym.execution.docker_backend', 'codegym.execution.ray_backend')\n"
        "print(sorted(m for m in mods if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_crashed_zygote_is_a_sandbox_error_then_recovers(monkeypatch: pytest.MonkeyPatch) -> None:
    with codegym.Executor(workers=1, timeout_s=1.0, cache=False) as ex:
        assert ex.run(ADD, ADD.reference).passed
        backend = ex.backend
        assert isinstance(backend, LocalBackend)
        real_send = ZygoteProcess.send_bytes

        def send_then_die(self: ZygoteProcess, frame: bytes) -> None:
            # Killed before the frame arrives: with the kill after the send, a loaded machine could let
            # the zygote fork the run first, and the orphaned child still reported "passed".
            self.proc.kill()
            self.proc.wait()
            real_send(self, frame)

        monkeypatch.setattr(ZygoteProcess, "send_bytes", send_then_die)
        r = ex.run(ADD, ADD.reference)
        assert r.status == "sandbox_error" and r.feedback.startswith("Sandbox error: sandbox process failed")
        monkeypatch.undo()
        assert ex.run(ADD, ADD.reference).passed
        assert backend.restarts == 1


def test_features_report_containment() -> None:
    with codegym.Executor(workers=1) as ex:
        features = ex.backend.features()
    import os

    if os.geteuid() == 0:
        assert features["uid"] >= 200000 and features["netns"] and features["mountns"]


def test_native_path_is_used_where_built_and_both_paths_agree() -> None:
    """The zygote's native helpers run where the extension was built (always on CI), else it says so."""
    from conftest import on_ci

    native = LocalBackend(1)
    python = LocalBackend(1, native=False)
    try:
        native_features, python_features = native.features(), python.features()
        assert python_features["native"] is False and python_features["huge_arenas"] is False
        if not native_features["native"]:
            assert not on_ci(), "CI builds codegym/execution/_zygote_native.c (pip install -e . needs gcc)"
            pytest.skip("the native extension was not built here (no C compiler at install time)")
        # Same verdicts, outputs and limits on both paths, for a mix of outcomes.
        task = Task("t/mix", "", "", "", tests=(StdioTest("3\n", "6\n"), StdioTest("x", "")))
        programs = [
            "print(int(input()) * 2)\n",
            "import sys\nsys.stdout.write('y' * 3000000)\n",
            "while True:\n    pass\n",
            "raise ValueError('no')\n",
            "def f(:\n",
        ]
        with codegym.Executor(backend=native, timeout_s=0.5, cache=False) as a:
            with codegym.Executor(backend=python, timeout_s=0.5, cache=False) as b:
                for program in programs:
                    ra, rb = a.run(task, program), b.run(task, program)
                    assert (ra.status, ra.feedback, ra.stdout[:100]) == (
                        rb.status,
                        rb.feedback,
                        rb.stdout[:100],
                    )
                    assert [t.status for t in ra.tests] == [t.status for t in rb.tests]
                # Call mode: the C loop and zygote.py's loop give the same outcomes, test by test.
                call = Task(
                    "t/calls",
                    "",
                    "f",
                    "",
                    tests=(
                        CallTest(args=(1,), expected=[1, (1,), {1: b"x"}]),
                        CallTest(args=(0,), expected=0),
                        AssertTest("assert candidate(2)[0] == 2"),
                        CallTest(args=(3,), expected=3),
                        CallTest(args=(4,), expected=2**70),
                        AssertTest("assert candidate(0) == 1"),
                    ),
                    visible_tests=(CallTest(args=(5,), expected=[5, (5,), {5: b"x"}]),),
                )
                programs = [
                    "def f(x):\n    return [x, (x,), {x: b'x'}]\n",
                    "def f(x):\n    if x == 0:\n        raise KeyError(x)\n    if x == 3:\n"
                    "        return object()\n    return 2**70 if x == 4 else [x, (x,), {x: b'x'}]\n",
                    "g = 1\n",
                    "def f(x):\n    return 10 // x\n",
                ]
                for program in programs:
                    ra, rb = a.run(call, program), b.run(call, program)
                    assert (ra.status, ra.feedback) == (rb.status, rb.feedback)
                    assert [(t.status, t.message) for t in ra.tests + ra.visible_tests] == [
                        (t.status, t.message) for t in rb.tests + rb.visible_tests
                    ]
    finally:
        native.close()
        python.close()


def _transparent_huge_pages() -> str:
    """The kernel's transparent huge page mode (``always``, ``madvise``, ``never``; "" if unknown)."""
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return ""
    return text[text.find("[") + 1 : text.find("]")] if "[" in text else ""


def _huge_kb(pid: int) -> dict[str, int]:
    """kB in transparent huge pages of ``pid``'s heap and of its executable anonymous mappings (smaps)."""
    totals = {"heap": 0, "code": 0}
    kind = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:  # a mapping's header line
            if fields[-1] == "[heap]":
                kind = "heap"
            elif fields[1].startswith("r-x") and fields[4] == "0" and len(fields) == 5:
                kind = "code"
            else:
                kind = None
        elif fields[0] == "AnonHugePages:" and kind is not None:
            totals[kind] += int(fields[1])
    return totals


def test_huge_pages_hold_through_runs_and_programs_run_the_same() -> None:
    """With the native helpers the zygote's interpreter code and heap live in transparent huge pages,
    which runs do not split (the zygote writes nothing while a child lives), and programs run exactly
    as they do on 4 KiB pages and file mappings (``huge_pages=False``)."""
    from conftest import on_ci

    huge, small = LocalBackend(1), LocalBackend(1, huge_pages=False)
    try:
        features = huge.features()
        if not features["native"]:
            assert not on_ci(), "CI builds codegym/execution/_zygote_native.c (pip install -e . needs gcc)"
            pytest.skip("the native extension was not built here (no C compiler at install time)")
        plain = small.features()
        assert (plain["huge_arenas"], plain["huge_heap"], plain["huge_text"]) == (False, 0, 0)
        if _transparent_huge_pages() in ("", "never"):
            assert (features["huge_heap"], features["huge_text"]) == (0, 0)
            pytest.skip("transparent huge pages are off on this kernel")
        two_mib = 2 << 20
        assert features["huge_arenas"] is True
        assert features["huge_text"] >= two_mib and features["huge_text"] % two_mib == 0
        if tuple(int(x) for x in os.uname().release.split(".")[:2] if x.isdigit()) >= (6, 1):
            assert features["huge_heap"] >= two_mib and features["huge_heap"] % two_mib == 0
        call = Task(
            "t/huge",
            "",
            "f",
            "",
            tests=(CallTest(args=(3,), expected=[3, 9.0, "3"]), AssertTest("assert candidate(1)[0] == 1")),
        )
        programs = [
            "import math\ndef f(x):\n    return [x, math.pow(x, 2), str(x)]\n",
            "def f(x):\n    return [x, x * x, str(x)]\n",
            "def f(x):\n    raise ValueError(x)\n",
            "def f(x:\n",
            "print('x' * 100000)\ndef f(x):\n    return [x, float(x * x), str(x)]\n",
        ]
        outcomes = []
        for backend in (huge, small):
            with codegym.Executor(backend=backend, cache=False) as ex:
                results = [ex.run(call, program) for program in programs * 3]
                outcomes.append([(r.status, r.feedback, [t.status for t in r.tests]) for r in results])
                zygote = backend._zygotes[0]
                assert zygote is not None
                kb = _huge_kb(zygote.proc.pid)
                if backend is huge:  # still whole after 15 runs
                    assert kb == {"heap": features["huge_heap"] >> 10, "code": features["huge_text"] >> 10}
                else:
                    assert kb == {"heap": 0, "code": 0}
        assert outcomes[0] == outcomes[1]
        assert [status for status, _, _ in outcomes[0][:5]] == [
            "passed",
            "failed",
            "runtime_error",
            "syntax_error",
            "passed",
        ]
    finally:
        huge.close()
        small.close()


@pytest.mark.parametrize("abi,used", [(4, True), (3, False)])
def test_zygote_ignores_native_helpers_of_another_version(tmp_path: Path, abi: int, used: bool) -> None:
    """An extension left from another version (say, an editable install not rebuilt) is not called."""
    from codegym.execution.backend import ZYGOTE_PATH

    (tmp_path / "zygote.py").write_text(Path(ZYGOTE_PATH).read_text())
    (tmp_path / "_zygote_native.py").write_text(f"ABI_VERSION = {abi}\n")
    probe = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import zygote; print(zygote._native is not None)"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(used)


def _nested(depth: int) -> list[object]:
    value: list[object] = [1]
    for _ in range(depth):
        value = [value]
    return value


class _Int(int):
    pass


class _Str(str):
    pass


class _List(list):  # type: ignore[type-arg]
    pass


_PLAIN_VALUES: list[object] = [
    None, True, False, 0, -1, 7, 2**63 - 1, -(2**63), 0.1, -0.0, 1.0, 1e300, 5e-324, -2.5e-7,
    math.nan, math.inf, -math.inf, "", "plain", 'q"b\\s/', "\x00\x01\x1f\x7f\x80\b\f\n\r\t",
    "é中文😀", "\ud800 lone", [], (), {}, set(), frozenset(), b"", b"\x00\xff", [1, [2, (3, "x")]],
    {"a": [1, 2], (1, 2): {3}, None: b"ab", 1.5: frozenset({"z"})}, {1, 2, 3, "s", (4, 5)},
    [[True, None], {"k": ()}], _nested(99), _nested(100),
]  # fmt: skip
_LEFT_TO_PYTHON: list[object] = [
    2**63, -(2**63) - 1, 2**4001, _Int(3), _Str("s"), _List([1]), [1, _Int(2)], {"k": object()},
    (1, 2, {3: _Str("x")}), object(), _nested(101), _nested(150), range(3), bytearray(b"x"),
]  # fmt: skip


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _zygote_module() -> Any:
    import importlib.util

    from codegym.execution.backend import ZYGOTE_PATH

    spec = importlib.util.spec_from_file_location("zygote_under_test", ZYGOTE_PATH)
    assert spec is not None and spec.loader is not None
    zygote = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zygote)
    return zygote


def _identity(value: object) -> object:
    return value


def test_native_call_records_are_what_zygote_py_writes() -> None:
    """The C loop's record of a returned value has the bytes of encode() + json, or leaves the value."""
    import random

    native = pytest.importorskip("codegym.execution._zygote_native")
    zygote = _zygote_module()
    rng = random.Random(7)
    scalars: list[object] = [None, True, 3, -2.5, "a\n", "😀", b"\x01", 10**15]

    def plain(depth: int) -> object:
        if depth > 3 or rng.random() < 0.3:
            return rng.choice(scalars)
        kind = rng.choice("ltsfd")
        items = [plain(depth + 1) for _ in range(rng.randrange(4))]
        hashable = [x for x in items if _hashable(x)]
        return {
            "l": lambda: items,
            "t": lambda: tuple(items),
            "s": lambda: set(hashable),
            "f": lambda: frozenset(hashable),
            "d": lambda: {k: v for k, v in zip(hashable, items)},
        }[kind]()

    ns = {"f": _identity}
    read_fd, write_fd = os.pipe()
    try:
        for value in _PLAIN_VALUES + [plain(0) for _ in range(300)]:
            assert native.call_tests(ns, "f", ((value,),), 0, write_fd) == (1, 3, None, 0), value
            frame = os.read(read_fd, 1 << 20)
            payload = frame[4:]
            assert int.from_bytes(frame[:4], "big") == len(payload)
            index, t_ns, wire = payload.split(b",", 2)
            assert (index, t_ns.isdigit()) == (b"[0", True)
            assert wire == zygote._dumps_record(zygote.encode(value)).encode() + b"]", value
        for value in _LEFT_TO_PYTHON:
            i, kind, outcome, t_ns = native.call_tests(ns, "f", ((value,),), 0, write_fd)
            assert (i, kind) == (0, 0) and outcome is value and t_ns >= 0, value
        os.close(write_fd)
        write_fd = -1
        assert os.read(read_fd, 100) == b""  # nothing written for any of them
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)


def test_native_call_loop_hands_back_what_it_does_not_handle() -> None:
    native = pytest.importorskip("codegym.execution._zygote_native")

    def f(x: int) -> int:
        return 10 // x

    ns = {"f": f}
    calls = ((1,), (2,), None, (0,), (5,))  # None: an assert test, run by zygote.py
    read_fd, write_fd = os.pipe()
    try:
        assert native.call_tests(ns, "f", calls, 0, write_fd)[:3] == (2, 2, None)
        records = os.read(read_fd, 1000)
        assert records.count(b"[0,") == 1 and b",10]" in records and b",5]" in records
        i, kind, exc, t_ns = native.call_tests(ns, "f", calls, 3, write_fd)
        assert (i, kind, type(exc)) == (3, 1, ZeroDivisionError) and t_ns >= 0
        assert exc.__traceback__ is not None  # as an exception caught in Python has
        assert native.call_tests(ns, "f", calls, 4, write_fd) == (5, 3, None, 0)
        assert os.read(read_fd, 1000).endswith(b",2]")
        assert native.call_tests({}, "f", calls, 0, write_fd)[:2] == (0, 2)  # no such function
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_programs_see_only_the_sandbox_environment(ex: codegym.Executor) -> None:
    # The zygote starts with LD_BIND_NOW and LD_PRELOAD of its native helpers: the program sees neither.
    task = Task(
        "t/env",
        "",
        "",
        "",
        tests=(StdioTest("", "HOME LANG OMP_NUM_THREADS OPENBLAS_NUM_THREADS PATH PYTHONIOENCODING TMPDIR"),),
    )
    result = ex.run(task, "import os\nprint(*sorted(os.environ))\n")
    assert result.status == "passed", (result.stdout, result.feedback)


def test_limit_in_a_visible_test_does_not_decide(ex: codegym.Executor) -> None:
    # Hidden tests run first; a hang on a visible example after all of them passed is reported there.
    program = "def add(a, b):\n    while (a, b) == (2, 2):\n        pass\n    return a + b\n"
    r = ex.run(ADD, program)
    assert r.status == "passed"
    assert [t.status for t in r.visible_tests] == ["timeout"]
    crash = "import os\ndef add(a, b):\n    if (a, b) == (2, 2):\n        os._exit(0)\n    return a + b\n"
    r = ex.run(ADD, crash)
    assert r.status == "passed" and r.visible_tests[0].status == "runtime_error"
    r = ex.run(ADD, program.replace("(2, 2)", "(10, -4)"))
    assert r.status == "timeout" and [t.status for t in r.tests] == ["passed", "timeout", "not_run"]


def test_stdio_syntax_error_needs_one_report(ex: codegym.Executor) -> None:
    r = ex.run(SUM_STDIN, "print(\n")
    assert r.status == "syntax_error"
    assert [t.status for t in r.tests] == ["not_run", "not_run"]
    assert r.feedback.startswith("SyntaxError: '(' was never closed (line 1)")


def test_programs_compile_without_the_harness_future_flags(ex: codegym.Executor) -> None:
    # The zygote itself uses `from __future__ import annotations`; candidates must not inherit it.
    task = Task(
        task_id="t/annotations",
        prompt="",
        entry_point="f",
        reference="def f() -> bool:\n    return f.__annotations__['return'] is bool\n",
        tests=(CallTest((), True),),
    )
    assert ex.run(task, task.reference).status == "passed"


def test_large_program_compiles_in_the_child(ex: codegym.Executor) -> None:
    # Over 64 KiB the zygote leaves compilation to the contained child: verdicts are the same.
    padding = "# " + "x" * 70_000 + "\n"
    assert ex.run(ADD, padding + ADD.reference).status == "passed"
    r = ex.run(ADD, padding + "def add(a, b:\n")
    assert r.status == "syntax_error" and "(line 2)" in r.feedback


def test_stdio_streams_behave_like_python(ex: codegym.Executor) -> None:
    task = Task(
        task_id="t/streams",
        prompt="",
        entry_point="",
        reference="",
        tests=(StdioTest("3\n1 2 3\n", "a\nb\nc\n6\n"),),
    )
    mixed = (
        "import sys\nprint('a')\nsys.stdout.flush()\n"
        "sys.stdout.buffer.write(b'b\\n')\nsys.stdout.buffer.flush()\n"
        "print('c')\nn = int(input())\nprint(sum(map(int, sys.stdin.readline().split())))\nexit()\n"
    )
    assert ex.run(task, mixed).status == "passed"
    swapped = "import sys, io\nprint('a\\nb\\nc\\n6')\nsys.stdout = io.StringIO()\nprint('lost')\n"
    assert ex.run(task, swapped).status == "passed"
    data = "import sys\ndata = open(0).read().split()\nprint('a\\nb\\nc')\nprint(sum(map(int, data[1:])))\n"
    assert ex.run(task, data).status == "passed"


def test_stdin_is_a_read_only_descriptor_not_a_file_in_the_work_directory(ex: codegym.Executor) -> None:
    task = Task("t/stdin", "", "", "", tests=(StdioTest("hello\nworld\n", "[] hello world"),))
    program = "import os, sys\nprint(sorted(os.listdir('.')), input(), sys.stdin.read().strip())\n"
    result = ex.run(task, program)
    assert result.status == "passed", (result.status, result.feedback, result.stdout)
    # The descriptor is read-only: the program cannot rewrite its own input (nor the next test's).
    writer = "import os\ntry:\n    os.write(0, b'x')\n    print('wrote')\nexcept OSError:\n    print('no')\n"
    task = Task("t/stdin-w", "", "", "", tests=(StdioTest("in", "no"), StdioTest("in2", "no")))
    result = ex.run(task, writer)
    assert result.status == "passed", (result.status, result.feedback, result.stdout)


def test_cpu_time_is_measured_outside(ex: codegym.Executor) -> None:
    busy = "def add(a, b):\n    x = 0\n    for i in range(3 * 10**6):\n        x += i\n    return a + b\n"
    r = ex.run(ADD, busy)
    assert r.status == "passed" and r.cpu_s > 0.1  # four calls of about 0.1 s each, at least
    # A program can report any per-test duration it likes; the kernel's count is what it is.
    forged = (
        "import os, struct, json\n"
        "def add(a, b):\n    x = sum(range(3 * 10**6))\n"
        "    for i in range(4):\n"
        "        b_ = json.dumps({'ev': 'test', 'i': i, 'value': [3, 6, 0, 4][i], 't': 0.0}).encode()\n"
        "        os.write(3, struct.pack('>I', len(b_)) + b_)\n    return a + b\n"
    )
    r = ex.run(ADD, forged)
    assert r.status == "passed" and all(t.duration_s == 0.0 for t in r.tests) and r.cpu_s > 0.1


def test_per_test_durations_come_from_both_record_forms(ex: codegym.Executor) -> None:
    # Call tests report [i, t_ns, value] and passing asserts [i, t_ns]; other records are dicts with
    # "t" in seconds. Each form's duration reaches the outcome in seconds.
    slow = "import time\ndef add(a, b):\n    time.sleep(0.05)\n    return a + b\n"
    r = ex.run(ADD, slow)
    assert r.status == "passed"
    assert all(0.05 <= t.duration_s < 1.0 for t in r.tests), [t.duration_s for t in r.tests]
    checks = Task(
        "t/assert-time",
        "",
        "f",
        "",
        tests=(AssertTest("assert candidate() == 1"), AssertTest("assert candidate() == 2")),
    )
    r = ex.run(checks, "import time\ndef f():\n    time.sleep(0.05)\n    return 1\n")
    assert [t.status for t in r.tests] == ["passed", "failed"]
    assert all(0.05 <= t.duration_s < 1.0 for t in r.tests), [t.duration_s for t in r.tests]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (['[0,1500000000,[1,{"t":[2]}]]'], [{"ev": "test", "i": 0, "t": 1.5, "value": [1, {"t": [2]}]}]),
        (["[3,2000]"], [{"ev": "test", "i": 3, "t": 2e-6, "ok": True}]),
        (['{"ev":"done"}', "[1,5,null]"], [{"ev": "done"}, {"ev": "test", "i": 1, "t": 5e-9, "value": None}]),
        # Arrays of any other shape are not records: a bool index, a float time, a fourth item.
        (["[true,1,2]", "[0,1.5,2]", "[0,1,2,3]", "[0]", '"x"', "7"], []),
        # A torn or malformed record is dropped alone; the others still count.
        (['[0,1,"a"]', "[1,2,"], [{"ev": "test", "i": 0, "t": 1e-9, "value": "a"}]),
        ("not a list", []),
    ],
)
def test_records_of_either_form_are_parsed_strictly(raw: object, expected: list[dict[str, object]]) -> None:
    assert _parse_records(raw) == expected


def test_zygotes_bind_symbols_at_start() -> None:
    # Children of a lazily bound zygote each resolved (and wrote) the symbols they were first to call.
    assert LocalBackend(1).environment(0)["LD_BIND_NOW"] == "1"
    assert LocalBackend(1, native=False).environment(0)["LD_BIND_NOW"] == "1"


def test_task_without_tests_is_a_value_error(ex: codegym.Executor) -> None:
    empty = object.__new__(Task)
    object.__setattr__(empty, "task_id", "t/empty")
    object.__setattr__(empty, "tests", ())
    with pytest.raises(ValueError, match="task t/empty has no tests"):
        ex.run(empty, "x = 1")


def test_queue_ahead_and_requeue_after_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    import codegym.execution.backend as backend_module

    monkeypatch.setattr(backend_module, "_PIPELINE_DEPTH", 2)
    with codegym.Executor(workers=1, timeout_s=1.0, cache=False) as ex:
        programs = [
            ADD.reference,
            "def add(a, b):\n    return 0\n",
            ADD.reference + "#2",
            "x = (",
            ADD.reference + "#4",
        ]
        assert [r.status for r in ex.run_batch([(ADD, p) for p in programs])] == [
            "passed", "failed", "passed", "syntax_error", "passed"
        ]  # fmt: skip
        real_send = ZygoteProcess.send_bytes
        sent: list[int] = []

        def send_then_die(self: ZygoteProcess, frame: bytes) -> None:
            real_send(self, frame)
            sent.append(1)
            if len(sent) == 2:  # the first job is running, the second waits in the pipe: kill the zygote
                self.proc.kill()
                # Dead before the pool looks again (as on a loaded machine): the pool must still fail
                # its running job and requeue the queued one, not just start a new zygote in its slot.
                self.proc.wait()

        monkeypatch.setattr(ZygoteProcess, "send_bytes", send_then_die)
        slow_first = ["import time\ntime.sleep(0.5)\n" + ADD.reference, *programs[1:]]  # surely running
        results = ex.run_batch([(ADD, p + "\n# again") for p in slow_first])
        # The running job is lost (sandbox_error); the queued one goes back to the queue and runs.
        assert [r.status for r in results] == ["sandbox_error", "failed", "passed", "syntax_error", "passed"]
        assert ex.backend.restarts == 1


# A stand-in zygote that answers one job (after a pause, so that the next one is queued in its pipe)
# and then exits with code 0, as a zygote does after a run that left something it could not remove.
ONE_JOB_ZYGOTE = """
import json, os, struct, sys, time
def send(obj):
    data = json.dumps(obj).encode()
    os.write(1, struct.pack(">I", len(data)) + data)
def read(n):
    data = b""
    while len(data) < n:
        chunk = os.read(0, n - len(data))
        if not chunk:
            sys.exit(0)
        data += chunk
    return data
send({"type": "hello", "pid": os.getpid(), "features": {}})
request = json.loads(read(struct.unpack(">I", read(4))[0]))
time.sleep(0.2)
send({"type": "result", "id": request["id"], "program": request["program"], "pid": os.getpid()})
"""


class OneJobPool(ZygotePool):
    """Zygotes that each answer one job and exit on purpose (code 0)."""

    def command(self, slot: int) -> list[str]:
        """The stand-in zygote."""
        return [sys.executable, "-c", ONE_JOB_ZYGOTE]


def test_jobs_queued_behind_a_zygote_that_exits_on_purpose_are_requeued(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import codegym.execution.backend as backend_module

    monkeypatch.setattr(backend_module, "_PIPELINE_DEPTH", 2)
    pool = OneJobPool(1)
    try:
        replies = pool.run_jobs([{"program": p} for p in ("a", "b", "c")])
        # Each was queued ahead or sent to a zygote that then left after one reply: none is lost.
        assert [(r["type"], r.get("program")) for r in replies] == [("result", p) for p in "abc"]
        assert len({r["pid"] for r in replies}) == 3  # one zygote per job
        assert pool.restarts == 0  # leaving on purpose is not a crash
    finally:
        pool.close()


def test_zygote_sweeps_what_dead_zygotes_left(tmp_path: object) -> None:
    import os
    import subprocess
    from pathlib import Path

    if os.geteuid() != 0 or not Path("/sys/fs/cgroup/pids").is_dir():
        pytest.skip("needs root and the cgroup v1 pids controller")
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale_cgroup = Path(f"/sys/fs/cgroup/pids/codegym-{dead.pid}")
    stale_cgroup.mkdir(exist_ok=True)
    stale_dir = Path("/tmp") / f"codegym-zygote-{dead.pid}-stale"
    stale_dir.mkdir(exist_ok=True)
    (stale_dir / "job").mkdir(exist_ok=True)
    try:
        with codegym.Executor(workers=1) as ex:  # cgroups in use: stale ones are swept
            assert ex.run(ADD, ADD.reference).passed
        assert not stale_cgroup.exists() and stale_dir.exists()
        with codegym.Executor(workers=1, isolate=False) as ex:  # no private /tmp: the host's is swept
            assert ex.run(ADD, ADD.reference).passed
        assert not stale_dir.exists()
    finally:
        if stale_cgroup.exists():
            stale_cgroup.rmdir()
        if stale_dir.exists():
            import shutil

            shutil.rmtree(stale_dir)


def test_programs_do_not_see_codegym_modules(ex: codegym.Executor) -> None:
    # The zygote's directory is off sys.path (the zygote module itself is loaded: like every record,
    # what a program does with the harness only concerns its own result).
    for name in ("compare", "backend", "docker_backend"):
        r = ex.run(ADD, f"import {name}\n" + ADD.reference)
        assert r.status == "runtime_error", (name, r.feedback)
        assert r.feedback.startswith("ModuleNotFoundError"), (name, r.feedback)


def test_output_limit_names_the_stream(ex: codegym.Executor) -> None:
    big = Task(
        "t/big",
        "",
        "f",
        "def f(n):\n    return list(range(n))\n",
        tests=(CallTest((10**5,), list(range(10**5))),),
    )
    assert ex.run(big, big.reference).status == "passed"
    r = ex.run(big, "def f(n):\n    return list(range(3 * 10**6))\n")
    assert r.status == "output_limit"
    assert r.feedback == "Output limit exceeded: the returned values are too large to send back (over 16 MB)."
    r = ex.run(ADD, "import sys\nwhile True:\n    sys.stderr.write('e' * 4096)\n")
    assert r.feedback == "Output limit exceeded: the program printed more than 1048576 bytes to stderr."
    r = ex.run(SUM_STDIN, "while True:\n    print('x' * 4096)\n")
    assert r.status == "output_limit"
    assert r.feedback == (
        "Failed example: stdin='0 0'\n  Output limit exceeded: the program printed more than 1048576 bytes."
    )


def _stdio_job(program: str, timeout_s: float = 5.0) -> dict[str, object]:
    """A raw backend job: ``program`` run once as __main__ with empty stdin."""
    return {
        "program": program,
        "mode": "stdio",
        "entry_point": "",
        "tests": [{"kind": "stdio", "stdin": ""}],
        "limits": {"timeout_s": timeout_s},
    }


def test_run_jobs_reports_each_reply_once_in_arrival_order() -> None:
    backend = LocalBackend(workers=1)
    try:
        slow = _stdio_job("import time\ntime.sleep(0.1)\nprint('slow')\n")  # too short to be gone round
        fast = _stdio_job("print('fast')\n")
        calls: list[tuple[int, dict[str, object]]] = []
        replies = backend.run_jobs([fast, slow, fast], on_reply=lambda i, r: calls.append((i, r)))
        # One worker runs the jobs in order: each reply is reported once, when it arrives, and the
        # reported objects are the ones returned.
        assert [i for i, _ in calls] == [0, 1, 2]
        assert [r for _, r in calls] == replies
        assert [r["runs"][0]["stdout"] for r in replies] == ["fast\n", "slow\n", "fast\n"]
    finally:
        backend.close()


def test_executor_works_with_a_backend_whose_run_jobs_has_no_on_reply() -> None:
    class OldStyleBackend:
        """A third-party backend written against the protocol before ``on_reply`` existed."""

        def __init__(self) -> None:
            self.inner = LocalBackend(workers=1)
            self.workers = 1

        def run_jobs(self, jobs):  # type: ignore[no-untyped-def]
            return self.inner.run_jobs(jobs)

        def features(self):  # type: ignore[no-untyped-def]
            return self.inner.features()

        def close(self) -> None:
            self.inner.close()

    with codegym.Executor(backend=OldStyleBackend(), cache=False) as ex:  # type: ignore[arg-type]
        results = ex.run_batch([(ADD, ADD.reference), (ADD, "def add(a, b):\n    return a - b\n")])
    assert [r.status for r in results] == ["passed", "failed"]


def test_annotations_are_evaluated_as_python_does(ex: codegym.Executor) -> None:
    # The zygote pre-computes common typing subscriptions; annotations must still be real objects,
    # evaluated when the function is defined (a name missing from an annotation is a NameError).
    task = Task("t/annot", "", "describe", "", tests=(CallTest((), "typing.List[int] typing.Optional[str]"),))
    program = (
        "from typing import List, Optional\n"
        "def g(x: List[int]) -> Optional[str]:\n    return None\n"
        "def describe():\n"
        "    return str(g.__annotations__['x']) + ' ' + str(g.__annotations__['return'])\n"
    )
    assert ex.run(task, program).status == "passed"
    broken = "def describe(x: Undefined) -> str:\n    return ''\n"
    result = ex.run(task, broken)
    assert result.status == "runtime_error" and "NameError" in result.feedback


IPC_LIMITS = ("/proc/sys/kernel/shmmni", "/proc/sys/kernel/msgmni", "/proc/sys/kernel/sem")


def test_ipc_limits_of_the_host_are_never_changed() -> None:
    # The zygote zeroes the SysV IPC limits only in an IPC namespace it has just made for itself; with
    # isolation off it shares the host's namespace, whose limits must stay as they are.
    if not Path("/proc/sys/kernel/shmmni").exists():
        pytest.skip("no SysV IPC limits on this platform")
    before = [Path(p).read_text() for p in IPC_LIMITS]
    for isolate in (True, False):
        with codegym.Executor(workers=1, cache=False, isolate=isolate) as ex:
            assert ex.run(ADD, ADD.reference).passed
            features = ex.backend.features()
            if os.geteuid() == 0:
                assert features["ipcns"] is isolate
                assert features["ipc_objects_disabled"] is isolate
    assert [Path(p).read_text() for p in IPC_LIMITS] == before


def test_quick_jobs_go_round_a_hanging_one() -> None:
    # One worker: a program that sleeps until its timeout would hold up the whole batch. Once it has run
    # for a while the pool starts an extra zygote for the pending jobs.
    backend = LocalBackend(workers=1)
    try:
        job = _stdio_job("print('ok')\n", timeout_s=3.0)
        hang = _stdio_job("import time\ntime.sleep(100)\n", timeout_s=3.0)
        order: list[int] = []
        replies = backend.run_jobs([hang, job, job, job, job], on_reply=lambda i, r: order.append(i))
        assert replies[0]["runs"][0]["limit"] == "timeout"
        assert all(r["runs"][0]["stdout"] == "ok\n" for r in replies[1:])
        # At most the job queued behind the hang (in its zygote's pipe) waits for it.
        assert len(order[: order.index(0)]) >= 3, order
        assert len(backend.hellos()) == 2
    finally:
        backend.close()


def test_extra_zygotes_can_be_turned_off() -> None:
    with pytest.raises(ValueError, match="extra_zygotes must be an int"):
        LocalBackend(workers=1, extra_zygotes=-1)
    backend = LocalBackend(workers=1, extra_zygotes=0)
    try:
        job = _stdio_job("print('ok')\n", timeout_s=1.0)
        hang = _stdio_job("import time\ntime.sleep(100)\n", timeout_s=1.0)
        order: list[int] = []
        backend.run_jobs([hang, job, job], on_reply=lambda i, r: order.append(i))
        assert order == [0, 1, 2] and len(backend.hellos()) == 1  # one job at a time, in order
    finally:
        backend.close()


def test_programs_import_what_the_trainer_has_installed(ex: codegym.Executor) -> None:
    # The zygote starts without the site module (-S); the trainer's site directories are passed in.
    task = Task("t/np", "", "total", "", tests=(CallTest((), 6),))
    result = ex.run(task, "import numpy as np\ndef total():\n    return int(np.arange(4).sum())\n")
    assert result.status == "passed", (result.status, result.feedback, result.stderr[-300:])


def test_site_dirs_follow_pth_paths_but_run_no_pth_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import site

    from codegym.execution.backend import site_dirs

    extra = tmp_path / "extra"
    extra.mkdir()
    (tmp_path / "a.pth").write_text(f"# a comment\n{extra}\nimport sys; sys.exit('ran')\nmissing-dir\n")
    monkeypatch.setattr(site, "getsitepackages", lambda: [str(tmp_path)])
    assert site_dirs() == [str(tmp_path), str(extra)]


def test_zygotes_are_pinned_round_robin_unless_asked_not_to() -> None:
    from codegym.execution.backend import usable_cpus

    cpus = usable_cpus()
    for pin in (True, False):
        with codegym.Executor(workers=2, cache=False, pin_cpus=pin) as pinned:
            pinned.run_batch([(ADD, ADD.reference), (ADD, ADD.reference + "#")])
            got = [h["features"]["cpu"] for h in pinned.backend.hellos()]
        if pin:
            assert sorted(got) == sorted([cpus[0], cpus[1 % len(cpus)]])
        else:
            assert got == [None, None]


def test_import_directories_under_tmp_stay_visible(tmp_path: Path) -> None:
    # A virtual environment made under /tmp (a CI checkout, say) would vanish under the sandbox's
    # private /tmp: the zygote binds such import directories back, read-only.
    if os.geteuid() != 0:
        pytest.skip("the private /tmp needs the mount namespace (root)")
    site_dir = tmp_path / "site-packages"
    site_dir.mkdir()
    (site_dir / "codegym_probe_mod.py").write_text("VALUE = 41\n")
    for path in (site_dir, *site_dir.parents):
        if path == Path("/tmp"):
            break
        path.chmod(0o755)  # as a directory made with the usual umask
    backend = LocalBackend(workers=1, extra_args=["--site-dirs", str(site_dir)])
    with codegym.Executor(backend=backend, cache=False) as sandbox:
        task = Task("t/tmpmod", "", "get", "", tests=(CallTest((), 42),))
        program = "import codegym_probe_mod\ndef get():\n    return codegym_probe_mod.VALUE + 1\n"
        result = sandbox.run(task, program)
        assert result.status == "passed", (result.status, result.feedback)
        target = str(site_dir / "new.py")
        write = f"def get():\n    open({target!r}, 'w').write('x')\n    return 42\n"
        assert sandbox.run(task, write).status == "runtime_error"  # read-only
    assert not (site_dir / "new.py").exists()


def test_a_failing_on_reply_is_raised_after_the_batch_and_leaves_the_pool_consistent() -> None:
    backend = LocalBackend(workers=1)
    try:
        jobs = [_stdio_job(f"print({i})\n") for i in range(4)]
        seen: list[int] = []

        def explode(index: int, reply: dict[str, object]) -> None:
            seen.append(index)
            if index == 0:
                raise KeyError("boom")

        with pytest.raises(KeyError, match="boom"):
            backend.run_jobs(jobs, on_reply=explode)
        assert sorted(seen) == [0, 1, 2, 3]  # every job was still run and reported
        # The next batch reads its own replies, not leftovers of the first.
        replies = backend.run_jobs([_stdio_job("print('next')\n")])
        assert replies[0]["runs"][0]["stdout"] == "next\n"
    finally:
        backend.close()


def test_an_interrupted_batch_leaves_no_reply_for_the_next_one() -> None:
    backend = LocalBackend(workers=1, extra_zygotes=0)
    try:

        def interrupt(index: int, reply: dict[str, object]) -> None:
            raise KeyboardInterrupt  # not kept for later, like any BaseException that is no Exception

        jobs = [_stdio_job("print('old')\n") for _ in range(3)]
        with pytest.raises(KeyboardInterrupt):
            backend.run_jobs(jobs, on_reply=interrupt)
        replies = backend.run_jobs([_stdio_job("print('new')\n")])
        assert replies[0]["runs"][0]["stdout"] == "new\n"
    finally:
        backend.close()


def test_site_builtins_are_there_although_the_zygote_skips_site(ex: codegym.Executor) -> None:
    task = Task("t/site", "", "", "", tests=(StdioTest("", "Quitter Quitter _Helper _Printer"),))
    program = "print(*(type(f).__name__ for f in (exit, quit, help, license)))\n"
    result = ex.run(task, program)
    assert result.status == "passed", (result.status, result.feedback, result.stdout)


@pytest.mark.parametrize("streams", [True, False])
def test_tasks_whose_last_run_was_long_are_sent_first_and_results_keep_input_order(streams: bool) -> None:
    class RecordingBackend:
        """The local backend, recording the programs of every batch in the order they are sent."""

        def __init__(self) -> None:
            self.inner = LocalBackend(workers=1)
            self.workers = 1
            self.sent: list[list[str]] = []

        def run_jobs(self, jobs, on_reply=None):  # type: ignore[no-untyped-def]
            self.sent.append([job["program"] for job in jobs])
            return self.inner.run_jobs(jobs, on_reply) if streams else self.inner.run_jobs(jobs)

        def features(self):  # type: ignore[no-untyped-def]
            return self.inner.features()

        def close(self) -> None:
            self.inner.close()

    slow_task = Task(
        task_id="order/slow",
        prompt="",
        entry_point="add",
        reference="import time\ndef add(a, b):\n    time.sleep(0.05)\n    return a + b\n",
        tests=(CallTest((1, 2), 3),),
    )
    wrong = "def add(a, b):\n    return a - b\n"
    batch = [(ADD, ADD.reference), (ADD, wrong), (slow_task, slow_task.reference), (ADD, ADD.reference + "#")]
    backend = RecordingBackend()
    with codegym.Executor(backend=backend, cache=False) as ex:  # type: ignore[arg-type]
        first = ex.run_batch(batch)
        second = ex.run_batch(batch)
    programs = [program for _, program in batch]
    assert backend.sent[0] == programs  # nothing known yet: input order
    assert backend.sent[1] == [programs[2], programs[0], programs[1], programs[3]]  # the long one first
    for results in (first, second):  # results in input order either way
        assert [r.status for r in results] == ["passed", "failed", "passed", "passed"]
        assert [r.task_id for r in results] == [ADD.task_id, ADD.task_id, slow_task.task_id, ADD.task_id]
    assert second[2].duration_s > 0.05
