"""The :class:`Executor`: run programs against a task's tests in the sandbox and judge them in the parent.

Typical use::

    with codegym.Executor(timeout_s=2.0) as ex:
        result = ex.run(task, program)
        results = ex.run_batch([(task, p) for p in programs])   # concurrent, in input order, cached

The sandbox (a pool of zygotes, see :mod:`codegym.execution.zygote`) only ever sees the program and the
*inputs* of the tests; it sends back what the program returned or printed, and this module compares that
with the expected values with strict types (:mod:`codegym.execution.compare`).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import inspect
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from codegym.execution.backend import Backend, Job, LocalBackend, RawReply
from codegym.execution.compare import (
    WireError,
    decode_wire,
    encode_wire,
    short_repr,
    stdout_equal,
    strict_equal,
)
from codegym.execution.result import ExecutionResult, Status, TestOutcome
from codegym.tasks import AssertTest, CallTest, StdioTest, Task, TestCase

_EXCERPT = 2000
_LONG_JOB_S = 0.02  # a task whose last run took longer is sent ahead of the others of a batch
_TIMED_TASKS = 4096  # tasks whose last run time the executor remembers
_BACKENDS = ("local", "docker", "ray")


def _check_number(name: str, value: Any, low: float, high: float, integer: bool = False) -> None:
    ok_type = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type) or not low <= value <= high:
        kind = "an int" if integer else "a number"
        bounds = f"[{low:{_num_format(low)}}, {high:{_num_format(high)}}]"
        raise ValueError(f"{name} must be {kind} in {bounds}, got {value!r}")


def _num_format(value: float) -> str:
    """Format spec for a range bound: integers in full (``1048576``, not ``1.04858e+06``)."""
    return "d" if float(value).is_integer() else "g"


_EXECUTOR_ARGS = (
    "backend",
    "timeout_s",
    "memory_mb",
    "workers",
    "cache",
    "cache_size",
    "max_output_bytes",
    "max_program_bytes",
    "max_file_mb",
    "max_open_files",
    "max_procs",
)


def _keyword_names(cls: type) -> tuple[list[str], bool]:
    """Keyword arguments of ``cls.__init__`` (not ``self``, ``workers``) and whether it takes ``**kwargs``."""
    params = list(inspect.signature(cls.__init__).parameters.values())
    named = [
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ("self", "workers")
    ]
    return named, any(p.kind is p.VAR_KEYWORD for p in params)


def _check_backend_kwargs(name: str, cls: type, kwargs: dict[str, Any]) -> None:
    """Raise a TypeError naming an argument that neither the Executor nor backend ``name`` takes."""
    accepted, open_ended = _keyword_names(cls)
    if open_ended:
        if name != "ray":
            return
        # The Ray backend passes the rest to the LocalBackend inside each actor.
        accepted += _keyword_names(LocalBackend)[0]
    for key in kwargs:
        if key not in accepted:
            close = difflib.get_close_matches(key, [*_EXECUTOR_ARGS, *accepted], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(
                f"Executor: unknown argument {key!r}{hint}; the Executor takes {', '.join(_EXECUTOR_ARGS)}, "
                f"and the {name} backend also takes {', '.join(accepted) or 'nothing else'}"
            )


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits of one execution.

    Attributes:
        timeout_s: Wall-clock limit (seconds) of one run of the program: in call mode the program and all
            its call/assert tests together; in stdio mode each test's run. CPU time is capped at the
            next whole second (``RLIMIT_CPU``) as a second line.
        memory_mb: Memory of the whole run, all its processes together (cgroup), or the address space
            of the child where cgroups are missing.
        max_output_bytes: Cap on stdout and on stderr of a run; more ends the run as ``output_limit``.
        max_file_mb: Largest file the program may write (``RLIMIT_FSIZE``).
        max_open_files: Open file descriptors (``RLIMIT_NOFILE``).
        max_procs: Processes and threads of the run (pids cgroup, or ``RLIMIT_NPROC`` of the sandbox uid).
        max_program_bytes: Larger programs are not run (``runtime_error`` with a clear feedback).
    """

    timeout_s: float = 5.0
    memory_mb: int = 512
    max_output_bytes: int = 1 << 20
    max_file_mb: int = 16
    max_open_files: int = 64
    max_procs: int = 32
    max_program_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        _check_number("timeout_s", self.timeout_s, 0.01, 3600)
        _check_number("memory_mb", self.memory_mb, 16, 1 << 20, integer=True)
        _check_number("max_output_bytes", self.max_output_bytes, 1024, 1 << 30, integer=True)
        _check_number("max_file_mb", self.max_file_mb, 1, 1 << 16, integer=True)
        _check_number("max_open_files", self.max_open_files, 16, 1 << 16, integer=True)
        _check_number("max_procs", self.max_procs, 1, 1 << 16, integer=True)
        _check_number("max_program_bytes", self.max_program_bytes, 1, 1 << 28, integer=True)

    def wire(self) -> dict[str, Any]:
        """The ``limits`` object of a zygote request."""
        return {
            "timeout_s": float(self.timeout_s),
            "memory_mb": self.memory_mb,
            "max_output_bytes": self.max_output_bytes,
            "max_file_mb": self.max_file_mb,
            "max_open_files": self.max_open_files,
            "max_procs": self.max_procs,
        }


def backend_class(name: str) -> type:
    """The class of the backend called ``name`` (``"local"``, ``"docker"``, ``"ray"``), imported if needed.

    Raises:
        ValueError: for an unknown name.
        ImportError: when the module of the named backend is missing (with what to install).
    """
    if name == "local":
        return LocalBackend
    if name == "docker":
        try:
            from codegym.execution.docker_backend import DockerBackend
        except ImportError as exc:
            raise ImportError(
                f"the docker backend is not available ({exc}); "
                "install codegym[docker] and see docs/sandbox.md"
            ) from exc
        return DockerBackend
    if name == "ray":
        try:
            from codegym.execution.ray_backend import RayBackend
        except ImportError as exc:
            raise ImportError(f"the ray backend is not available ({exc}); install codegym[ray]") from exc
        return RayBackend
    raise ValueError(f"backend must be one of {_BACKENDS} or a Backend instance, got {name!r}")


def make_backend(backend: str | Backend, workers: int | None, **kwargs: Any) -> Backend:
    """Build a backend by name (``"local"``, ``"docker"``, ``"ray"``) or return a given instance.

    Raises:
        ValueError: for an unknown name.
        ImportError: when the module of the named backend is missing (with what to install).
        TypeError: for a keyword argument that the backend does not take.
    """
    if not isinstance(backend, str):
        if isinstance(backend, Backend):
            return backend
        raise ValueError(f"backend must be one of {_BACKENDS} or a Backend instance, got {backend!r}")
    cls = backend_class(backend)
    _check_backend_kwargs(backend, cls, kwargs)
    if backend == "local":
        return cls(workers, **kwargs)  # type: ignore[no-any-return]
    return cls(workers=workers, **kwargs)  # type: ignore[no-any-return]


def _checked_arguments(
    backend: str | Backend,
    timeout_s: float,
    memory_mb: int,
    workers: int | None,
    cache_size: int,
    max_output_bytes: int,
    max_program_bytes: int,
    max_file_mb: int,
    max_open_files: int,
    max_procs: int,
    backend_kwargs: dict[str, Any] | None,
) -> Limits:
    """Check the Executor's arguments; the Limits they make.

    The backend and its keywords are checked too, unless ``backend_kwargs`` is None (the Executor itself
    passes None: :func:`make_backend` checks them when it builds the backend).
    """
    limits = Limits(
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        max_output_bytes=max_output_bytes,
        max_file_mb=max_file_mb,
        max_open_files=max_open_files,
        max_procs=max_procs,
        max_program_bytes=max_program_bytes,
    )
    if workers is not None:
        _check_number("workers", workers, 1, 256, integer=True)
    _check_number("cache_size", cache_size, 0, 1 << 40, integer=True)
    if backend_kwargs is None:
        return limits
    if isinstance(backend, str):
        _check_backend_kwargs(backend, backend_class(backend), backend_kwargs)
    elif not isinstance(backend, Backend):
        raise ValueError(f"backend must be one of {_BACKENDS} or a Backend instance, got {backend!r}")
    return limits


@dataclasses.dataclass
class _Plan:
    """How one (task, program) pair maps onto jobs and back."""

    task: Task
    program: str
    key: str
    call_job: int | None = None
    stdio_job: int | None = None
    call_tests: list[tuple[int, TestCase]] = dataclasses.field(default_factory=list)  # (slot, test)
    stdio_tests: list[tuple[int, TestCase]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class _TaskPlan:
    """What every run of a task sends: its tests split by mode, call tests in wire form (read-only)."""

    call_tests: list[tuple[int, TestCase]]  # (slot, test)
    stdio_tests: list[tuple[int, TestCase]]
    wire_tests: list[dict[str, Any]]
    stdin_tests: list[dict[str, Any]]


class Executor:
    """Runs programs against tasks in a sandbox; a context manager.

    Args:
        backend: ``"local"`` (default), ``"docker"``, ``"ray"``, or a :class:`Backend` instance.
        timeout_s: Wall-clock limit of one run (see :class:`Limits`).
        memory_mb: Memory limit of one run, MiB.
        workers: Concurrent sandboxes (default: one per core).
        cache: Cache results by (program, task tests, limits); hits are counted (:meth:`cache_info`).
        cache_size: Most results kept (least recently used go first).
        max_output_bytes: Cap on stdout and stderr of a run.
        max_program_bytes: Larger programs are not run.
        max_file_mb: Largest file a program may write.
        max_open_files: Open file descriptors per run.
        max_procs: Processes and threads per run.
        **backend_kwargs: Passed to the backend's constructor.

    Raises:
        ValueError: for a limit out of range or an unknown backend (the message names the value).
    """

    def __init__(
        self,
        backend: str | Backend = "local",
        *,
        timeout_s: float = 5.0,
        memory_mb: int = 512,
        workers: int | None = None,
        cache: bool = True,
        cache_size: int = 10_000,
        max_output_bytes: int = 1 << 20,
        max_program_bytes: int = 1 << 20,
        max_file_mb: int = 16,
        max_open_files: int = 64,
        max_procs: int = 32,
        **backend_kwargs: Any,
    ) -> None:
        self.limits = _checked_arguments(
            backend, timeout_s, memory_mb, workers, cache_size, max_output_bytes, max_program_bytes,
            max_file_mb, max_open_files, max_procs, None,
        )  # fmt: skip
        self._backend_spec = backend
        self._backend_kwargs = backend_kwargs
        self.workers = workers
        self.cache_enabled = bool(cache)
        self.cache_size = cache_size
        self.backend: Backend = make_backend(backend, workers, **backend_kwargs)
        self._init_state()

    @staticmethod
    def check_arguments(backend: str | Backend = "local", **kwargs: Any) -> None:
        """Validate ``Executor(backend, **kwargs)`` without starting anything (no backend is built).

        Environments call this when they are made with ``executor_kwargs``, so that a misspelt or
        out-of-range argument fails there rather than at the first step.

        Raises:
            TypeError: for an argument that neither the Executor nor the backend takes.
            ValueError: for a value out of range (the message names it and the range).
            ImportError: when the named backend's module is missing.
        """
        params = inspect.signature(Executor.__init__).parameters
        own = {k: v for k, v in kwargs.items() if k in params and k not in ("self", "backend")}
        rest = {k: v for k, v in kwargs.items() if k not in own}
        defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
        args = {**defaults, **own}
        _checked_arguments(
            backend, args["timeout_s"], args["memory_mb"], args["workers"], args["cache_size"],
            args["max_output_bytes"], args["max_program_bytes"], args["max_file_mb"],
            args["max_open_files"], args["max_procs"], rest,
        )  # fmt: skip

    def _init_state(self) -> None:
        self._cache: OrderedDict[str, ExecutionResult] = OrderedDict()
        self._fingerprints: OrderedDict[int, tuple[Task, str]] = OrderedDict()
        self._task_plans: OrderedDict[int, tuple[Task, _TaskPlan]] = OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0
        self._run_seconds: OrderedDict[str, float] = OrderedDict()  # task id -> its last run's duration_s
        self._lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the sandbox processes. Safe to call twice."""
        if not self._closed:
            self._closed = True
            self.backend.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __getstate__(self) -> dict[str, Any]:
        # Pickling (e.g. into AsyncVectorEnv workers) carries the configuration, not the processes.
        if not isinstance(self._backend_spec, str):
            raise TypeError("an Executor built on a Backend instance cannot be pickled; pass a backend name")
        return {
            "backend": self._backend_spec,
            "backend_kwargs": self._backend_kwargs,
            "limits": self.limits,
            "workers": self.workers,
            "cache": self.cache_enabled,
            "cache_size": self.cache_size,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._backend_spec = state["backend"]
        self._backend_kwargs = state["backend_kwargs"]
        self.limits = state["limits"]
        self.workers = state["workers"]
        self.cache_enabled = state["cache"]
        self.cache_size = state["cache_size"]
        self.backend = make_backend(self._backend_spec, self.workers, **self._backend_kwargs)
        self._init_state()

    # ------------------------------------------------------------------ cache

    def cache_info(self) -> dict[str, int]:
        """Cache statistics: ``hits``, ``misses``, ``size``, ``maxsize``."""
        return {
            "hits": self.cache_hits,
            "misses": self.cache_misses,
            "size": len(self._cache),
            "maxsize": self.cache_size,
        }

    def clear_cache(self) -> None:
        """Forget cached results (the counters stay)."""
        with self._lock:
            self._cache.clear()

    def _fingerprint(self, task: Task) -> str:
        entry = self._fingerprints.get(id(task))
        if entry is not None and entry[0] is task:
            self._fingerprints.move_to_end(id(task))
            return entry[1]
        text = json.dumps(
            [task.task_id, task.entry_point, _tests_key(task.tests), _tests_key(task.visible_tests)]
        )
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        self._fingerprints[id(task)] = (task, digest)
        if len(self._fingerprints) > 4096:
            self._fingerprints.popitem(last=False)
        return digest

    def _task_plan(self, task: Task) -> _TaskPlan:
        """The tests of ``task`` split by mode, with call tests already in wire form (cached per task)."""
        entry = self._task_plans.get(id(task))
        if entry is not None and entry[0] is task:
            self._task_plans.move_to_end(id(task))
            return entry[1]
        slots = list(enumerate((*task.tests, *task.visible_tests)))
        call_tests = [(i, t) for i, t in slots if not isinstance(t, StdioTest)]
        stdio_tests = [(i, t) for i, t in slots if isinstance(t, StdioTest)]
        wire_tests: list[dict[str, Any]] = []
        for _, test in call_tests:
            if isinstance(test, CallTest):
                wire_tests.append({"kind": "call", "args": [encode_wire(a) for a in test.args]})
            else:
                assert isinstance(test, AssertTest)
                wire_tests.append({"kind": "assert", "code": test.code})
        stdin_tests = [{"kind": "stdio", "stdin": t.stdin} for _, t in stdio_tests]  # type: ignore[union-attr]
        plan = _TaskPlan(call_tests, stdio_tests, wire_tests, stdin_tests)
        self._task_plans[id(task)] = (task, plan)
        if len(self._task_plans) > 4096:
            self._task_plans.popitem(last=False)
        return plan

    def _key(self, task: Task, program: str) -> str:
        h = hashlib.sha256()
        h.update(self._fingerprint(task).encode())
        h.update(repr(self.limits).encode())
        h.update(program.encode("utf-8", "surrogatepass"))
        return h.hexdigest()

    # ------------------------------------------------------------------ running

    def run(self, task: Task, program: str) -> ExecutionResult:
        """Run ``program`` against ``task``'s tests (hidden and visible) and judge it.

        Args:
            task: The task whose tests judge the program.
            program: The full source text of the candidate (for HumanEval-style tasks, prompt + completion).

        Returns:
            The verdict: status, per-test outcomes, feedback for the agent, output excerpts and timing.
            Cached when the executor's cache is on.

        Raises:
            ValueError: if ``task`` is not a Task or ``program`` is not a string.
        """
        return self.run_batch([(task, program)])[0]

    def run_batch(self, pairs: Iterable[tuple[Task, str]]) -> list[ExecutionResult]:
        """Run many (task, program) pairs concurrently; the results come back in input order.

        Identical pairs run once. A fault in one execution becomes that result's status (never an
        exception); ``sandbox_error`` marks faults of the executor itself. Thread-safe: concurrent calls
        run one after another (each batch already uses every worker).

        Args:
            pairs: ``(task, program)`` pairs, as for :meth:`run`.

        Returns:
            One :class:`ExecutionResult` per pair, in input order.

        Raises:
            ValueError: if an item is not a (Task, str) pair (the message names its index and type).
            RuntimeError: if the executor is closed.
        """
        items = list(pairs)
        for index, item in enumerate(items):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise ValueError(f"run_batch item {index} must be a (task, program) pair, got {item!r:.80}")
            task, program = item
            if not isinstance(task, Task):
                raise ValueError(
                    f"run_batch item {index}: task must be a codegym Task, got {type(task).__name__}"
                )
            if not task.tests:
                raise ValueError(f"run_batch item {index}: task {task.task_id} has no tests")
            if not isinstance(program, str):
                raise ValueError(
                    f"run_batch item {index} (task {task.task_id}): program must be a str, "
                    f"got {type(program).__name__}"
                )
        if self._closed:
            raise RuntimeError("Executor is closed")
        with self._lock:
            return self._run_batch(items)

    def _run_batch(self, items: list[tuple[Task, str]]) -> list[ExecutionResult]:
        results: list[ExecutionResult | None] = [None] * len(items)
        plans: dict[str, _Plan] = {}
        waiting: list[tuple[int, str]] = []
        jobs: list[Job] = []
        for index, (task, program) in enumerate(items):
            key = self._key(task, program) if self.cache_enabled else f"{index}"
            if self.cache_enabled and key in self._cache:
                self._cache.move_to_end(key)
                self.cache_hits += 1
                results[index] = dataclasses.replace(self._cache[key], cached=True)
                continue
            if key in plans:  # a duplicate within this batch
                self.cache_hits += 1
                waiting.append((index, key))
                continue
            self.cache_misses += 1
            plans[key] = self._plan(task, program, key, jobs)
            waiting.append((index, key))
        judged: dict[str, ExecutionResult] = {}
        replies: list[RawReply | None] = [None] * len(jobs)
        # Each plan is judged as soon as the replies of its jobs are in, while other jobs still run:
        # judging after the whole batch would leave the sandbox idle meanwhile.
        owner: dict[int, str] = {}
        missing: dict[str, int] = {}
        for key, plan in plans.items():
            plan_jobs = [j for j in (plan.call_job, plan.stdio_job) if j is not None]
            missing[key] = len(plan_jobs)
            owner.update((j, key) for j in plan_jobs)

        def on_reply(index: int, reply: RawReply) -> None:
            replies[index] = reply
            key = owner.get(index)
            if key is not None and key not in judged:
                missing[key] -= 1
                if missing[key] <= 0:
                    self._judge_into(judged, key, plans[key], replies)

        if jobs:
            order = self._longest_first(jobs, owner, plans)
            ordered = [jobs[i] for i in order]
            if self._backend_streams():
                final = self.backend.run_jobs(ordered, on_reply=lambda k, reply: on_reply(order[k], reply))
            else:
                final = self.backend.run_jobs(ordered)
            for k, reply in enumerate(final):
                if replies[order[k]] is None:
                    on_reply(order[k], reply)
        for key, plan in plans.items():  # plans without jobs (or a backend that lost a reply)
            if key not in judged:
                self._judge_into(judged, key, plan, replies)
        for key, plan in plans.items():
            if judged[key].status != "sandbox_error":
                self._run_seconds[plan.task.task_id] = judged[key].duration_s
                self._run_seconds.move_to_end(plan.task.task_id)
        while len(self._run_seconds) > _TIMED_TASKS:
            self._run_seconds.popitem(last=False)
        seen: set[str] = set()
        for index, key in waiting:
            result = judged[key]
            results[index] = result if key not in seen else dataclasses.replace(result, cached=True)
            seen.add(key)
        return [r for r in results if r is not None]

    def _longest_first(self, jobs: list[Job], owner: dict[int, str], plans: dict[str, _Plan]) -> list[int]:
        """The order in which to send the jobs: those of tasks whose last run was long first, longest first.

        A batch ends when its last job does: a long job started late leaves the other workers idle at the
        end (HumanEval/75 alone is about a third of a HumanEval batch's CPU). Run times are known only for
        tasks this executor has run before (an RL run's tasks come back every epoch); the rest keep their
        order.
        """
        seconds = [
            self._run_seconds.get(plans[owner[i]].task.task_id, 0.0) if i in owner else 0.0
            for i in range(len(jobs))
        ]
        slow = sorted(
            (i for i, s in enumerate(seconds) if s > _LONG_JOB_S), key=seconds.__getitem__, reverse=True
        )
        return slow + [i for i, s in enumerate(seconds) if s <= _LONG_JOB_S]

    def _judge_into(
        self, judged: dict[str, ExecutionResult], key: str, plan: _Plan, replies: Sequence[RawReply | None]
    ) -> None:
        """Judge ``plan`` into ``judged[key]`` (a fault of ours becomes ``sandbox_error``) and cache it."""
        try:
            judged[key] = self._judge(plan, replies)
        except Exception as exc:  # our own fault: never let one result break the batch
            judged[key] = ExecutionResult(
                status="sandbox_error",
                feedback=f"internal error while judging: {type(exc).__name__}: {exc}",
                task_id=plan.task.task_id,
            )
        if self.cache_enabled and judged[key].status != "sandbox_error" and self.cache_size > 0:
            self._cache[key] = judged[key]
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def _backend_streams(self) -> bool:
        """Whether the backend's ``run_jobs`` takes ``on_reply`` (backends written before it do not)."""
        cached = getattr(self, "_streams", None)
        if cached is None:
            try:
                params = inspect.signature(self.backend.run_jobs).parameters
                cached = "on_reply" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
            except (TypeError, ValueError):
                cached = False
            self._streams = cached
        return cached

    def _plan(self, task: Task, program: str, key: str, jobs: list[Job]) -> _Plan:
        plan = _Plan(task=task, program=program, key=key)
        if len(program.encode("utf-8", "surrogatepass")) > self.limits.max_program_bytes:
            return plan  # judged without running
        task_plan = self._task_plan(task)
        plan.call_tests = task_plan.call_tests
        plan.stdio_tests = task_plan.stdio_tests
        limits = self.limits.wire()
        if plan.call_tests:
            plan.call_job = len(jobs)
            jobs.append(
                {
                    "program": program,
                    "mode": "call",
                    "entry_point": task.entry_point,
                    "tests": task_plan.wire_tests,
                    "limits": limits,
                }
            )
        if plan.stdio_tests:
            plan.stdio_job = len(jobs)
            jobs.append(
                {
                    "program": program,
                    "mode": "stdio",
                    "entry_point": task.entry_point,
                    "tests": task_plan.stdin_tests,
                    "limits": limits,
                }
            )
        return plan

    # ------------------------------------------------------------------ judging

    def _judge(self, plan: _Plan, replies: Sequence[RawReply | None]) -> ExecutionResult:
        task = plan.task
        n_hidden = len(task.tests)
        if plan.call_job is None and plan.stdio_job is None:
            size = len(plan.program.encode("utf-8", "surrogatepass"))
            return _not_run(
                task,
                "runtime_error",
                f"Program not run: it is {size} bytes, "
                f"over the limit of {self.limits.max_program_bytes} bytes.",
            )
        judge = _Judgement(task, self.limits)
        for job_index, handler in ((plan.call_job, judge.call_run), (plan.stdio_job, judge.stdio_runs)):
            if job_index is None:
                continue
            reply = replies[job_index] or {"type": "error", "message": "no reply"}
            if reply.get("type") != "result" or not isinstance(reply.get("runs"), list):
                message = str(reply.get("message", "no result"))
                return _not_run(task, "sandbox_error", f"Sandbox error: {message}")
            tests = plan.call_tests if job_index == plan.call_job else plan.stdio_tests
            handler(tests, reply["runs"])
        return judge.result(n_hidden)


def _tests_key(tests: Sequence[TestCase]) -> list[Any]:
    """A JSON-ready description of test cases (no ``repr``: huge ints would not convert)."""
    out: list[Any] = []
    for test in tests:
        if isinstance(test, CallTest):
            out.append(["call", encode_wire(test.args), encode_wire(test.expected), test.float_tol])
        elif isinstance(test, StdioTest):
            out.append(["stdio", test.stdin, test.expected_stdout, test.float_tol])
        else:
            out.append(["assert", test.code])
    return out


def _not_run(task: Task, status: Status, feedback: str) -> ExecutionResult:
    hidden = tuple(TestOutcome(False, "not_run", verified_in_parent=_verified(t)) for t in task.tests)
    visible = tuple(
        TestOutcome(False, "not_run", verified_in_parent=_verified(t), visible=True)
        for t in task.visible_tests
    )
    return ExecutionResult(
        status=status, tests=hidden, visible_tests=visible, feedback=feedback, task_id=task.task_id
    )


def _verified(test: TestCase) -> bool:
    return not isinstance(test, AssertTest)


_EXACT_SCALARS = (int, str, bool, type(None))


def _as_record(item: Any) -> dict[str, Any] | None:
    """A parsed record as a dict: the two array forms (see ``zygote.py``) become test records."""
    if type(item) is dict:
        return item
    if type(item) is list and len(item) in (2, 3) and type(item[0]) is int and type(item[1]) is int:
        record = {"ev": "test", "i": item[0], "t": item[1] / 1e9}
        if len(item) == 3:
            record["value"] = item[2]
        else:
            record["ok"] = True
        return record
    return None


def _parse_records(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        return []
    parsed: list[Any] = []
    if raw and all(isinstance(text, str) for text in raw):
        # One parse for all records; if any record is malformed, each is parsed alone below. (Joining
        # lets a record such as '{..},{..}' count as two: no more than the program could write itself.)
        try:
            parsed = json.loads("[" + ",".join(raw) + "]")
        except (ValueError, RecursionError):
            parsed = []
    if not parsed:
        for text in raw:
            if not isinstance(text, str):
                continue
            try:
                parsed.append(json.loads(text))
            except (ValueError, RecursionError):
                continue
    return [record for record in map(_as_record, parsed) if record is not None]


def _limit_status(limit: Any) -> Status | None:
    return {"timeout": "timeout", "memory": "memory_limit", "output": "output_limit"}.get(limit)  # type: ignore[return-value]


def _ended(run: dict[str, Any]) -> str:
    if run.get("signal") is not None:
        return f"killed by signal {run['signal']}"
    return f"exited with code {run.get('exit_code')}"


def _syntax_feedback(record: dict[str, Any]) -> str:
    msg = str(record.get("msg", "SyntaxError"))
    lineno = record.get("lineno")
    text = record.get("text")
    offset = record.get("offset")
    out = f"{msg} (line {lineno})" if isinstance(lineno, int) else msg
    if isinstance(text, str) and text.strip():
        line = text.rstrip("\n")
        out += f"\n    {line}"
        if isinstance(offset, int) and 0 < offset <= len(line) + 1:
            out += "\n    " + " " * (offset - 1) + "^"
    return out


class _Judgement:
    """Accumulates per-test outcomes and the overall verdict of one (task, program)."""

    def __init__(self, task: Task, limits: Limits) -> None:
        self.task = task
        self.limits = limits
        n = len(task.tests) + len(task.visible_tests)
        self.outcomes: list[TestOutcome | None] = [None] * n
        self.details: list[str] = [""] * n  # visible-test feedback lines
        self.status: Status | None = None  # a whole-program verdict (syntax error, limit, crash)
        self.feedback = ""
        self.stdout = ""
        self.stderr = ""
        self.duration = 0.0
        self.cpu = 0.0

    def _is_visible(self, slot: int) -> bool:
        return slot >= len(self.task.tests)

    def _set(
        self, slot: int, test: TestCase, passed: bool, status: str, duration: float, message: str = ""
    ) -> None:
        self.outcomes[slot] = TestOutcome(
            passed=passed,
            status=status,
            duration_s=float(duration),
            verified_in_parent=_verified(test),
            visible=self._is_visible(slot),
            message=message,
        )

    def _whole(self, status: Status, feedback: str) -> None:
        if self.status is None:
            self.status = status
            self.feedback = feedback

    def _limit_feedback(self, status: Status, stream: Any = None) -> str:
        if status == "timeout":
            return f"Timed out: the program ran longer than the limit of {self.limits.timeout_s:g} s."
        if status == "memory_limit":
            return f"Memory limit exceeded: the program used more than {self.limits.memory_mb} MB."
        if stream == "results":
            return "Output limit exceeded: the returned values are too large to send back (over 16 MB)."
        where = " to stderr" if stream == "stderr" else ""
        cap = self.limits.max_output_bytes
        return f"Output limit exceeded: the program printed more than {cap} bytes{where}."

    def _describe(self, test: TestCase) -> str:
        try:
            text = test.describe_input(self.task.entry_point)
        except ValueError:  # e.g. an int too large for decimal text
            text = f"{self.task.entry_point}(...)"
        return text if len(text) <= 300 else text[:297] + "..."

    def call_run(self, tests: list[tuple[int, TestCase]], runs: list[Any]) -> None:
        """Judge the single run of a call-mode job."""
        run = runs[0] if runs and isinstance(runs[0], dict) else {}
        self.duration += float(run.get("wall_s", 0.0) or 0.0)
        self.cpu += float(run.get("cpu_s", 0.0) or 0.0)
        self.stdout = str(run.get("stdout", ""))[:_EXCERPT]
        self.stderr = str(run.get("stderr", ""))[:_EXCERPT]
        records = _parse_records(run.get("records"))
        by_test: dict[int, dict[str, Any]] = {}
        for record in records:
            ev = record.get("ev")
            if ev == "syntax_error":
                self._whole("syntax_error", _syntax_feedback(record))
            elif ev == "program_error":
                status: Status = "memory_limit" if record.get("memory") else "runtime_error"
                line = record.get("lineno")
                where = f" (line {line})" if isinstance(line, int) else ""
                self._whole(status, f"{record.get('error', 'error')}{where}")
            elif ev == "test" and type(record.get("i")) is int and record["i"] not in by_test:
                by_test[record["i"]] = record
        limit = _limit_status(run.get("limit"))
        missing_status: str | None = None
        died_in_visible = False
        for position, (slot, test) in enumerate(tests):
            record = by_test.get(position)
            if record is None:
                if self.status in ("syntax_error", "runtime_error", "memory_limit") and limit is None:
                    self._set(slot, test, False, "not_run", 0.0)
                    continue
                if missing_status is None:
                    # The first test without a record is the one the run died in.
                    missing_status = limit or "runtime_error"
                    message = (
                        self._limit_feedback(limit, run.get("limit_stream"))
                        if limit
                        else f"the process ended during this test ({_ended(run)})"
                    )
                    self._set(slot, test, False, missing_status, 0.0, message)
                    if self._is_visible(slot):
                        # Every hidden test has its verdict: the visible example does not decide.
                        died_in_visible = True
                        self.details[slot] = f"Failed example: {self._describe(test)}\n  {message}"
                    elif limit is None and self.status is None:
                        self._whole(
                            "runtime_error",
                            f"The program {_ended(run)} during {self._describe_safe(slot, test)}.",
                        )
                else:
                    self._set(slot, test, False, "not_run", 0.0)
                continue
            self._judge_call_record(slot, test, record)
        if limit is not None and not died_in_visible:
            self.status = None
            self._whole(limit, self._limit_feedback(limit, run.get("limit_stream")))

    def _describe_safe(self, slot: int, test: TestCase) -> str:
        return self._describe(test) if self._is_visible(slot) else "a hidden test"

    def _judge_call_record(self, slot: int, test: TestCase, record: dict[str, Any]) -> None:
        duration = record.get("t", 0.0)
        duration = (
            float(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool) else 0.0
        )
        if type(test) is CallTest and len(record) == 4 and "value" in record:
            # The common case first: a returned scalar of the expected exact type, equal (not a float,
            # whose comparison has tolerances and NaN). Anything else takes the general path below.
            value = record["value"]
            kind = type(value)
            if kind is type(test.expected) and kind in _EXACT_SCALARS and value == test.expected:
                self._set(slot, test, True, "passed", duration)
                return
        visible = self._is_visible(slot)
        if "error" in record:
            error = str(record.get("error"))[:500]
            if isinstance(test, AssertTest) and record.get("assert"):
                self._set(slot, test, False, "failed", duration, error)
                if visible:
                    self.details[slot] = f"Failed check: {self._describe(test)}" + (
                        f"\n  {error}" if error != "AssertionError" else ""
                    )
                return
            status = "memory_limit" if record.get("memory") else "runtime_error"
            self._set(slot, test, False, status, duration, error)
            if visible:
                self.details[slot] = f"Failed example: {self._describe(test)}\n  raised: {error}"
            return
        if isinstance(test, AssertTest):
            ok = record.get("ok") is True
            self._set(slot, test, ok, "passed" if ok else "failed", duration)
            if not ok and visible:
                self.details[slot] = f"Failed check: {self._describe(test)}"
            return
        assert isinstance(test, CallTest)
        if "unplain" in record:
            message = f"returned a value of type {str(record.get('unplain'))[:80]}, which is not plain data"
            self._set(slot, test, False, "failed", duration, message)
            if visible:
                self.details[slot] = f"Failed example: {self._describe(test)}\n  {message}"
            return
        if "value" not in record:
            self._set(slot, test, False, "failed", duration, "no value")
            return
        try:
            got = decode_wire(record["value"])
        except WireError as exc:
            self._set(slot, test, False, "failed", duration, f"malformed value: {exc}")
            return
        passed = strict_equal(test.expected, got, test.float_tol)
        message = ""
        if not passed:
            message = "wrong answer"
            if visible:
                message = f"expected {short_repr(test.expected)}, got {short_repr(got)}"
                self.details[slot] = (
                    f"Failed example: {self._describe(test)}\n  expected: {short_repr(test.expected)}\n"
                    f"  got: {short_repr(got)}"
                )
        self._set(slot, test, passed, "passed" if passed else "failed", duration, message)

    def stdio_runs(self, tests: list[tuple[int, TestCase]], runs: list[Any]) -> None:
        """Judge the runs of a stdio-mode job (one per test)."""
        excerpt_set = False
        for position, (slot, test) in enumerate(tests):
            assert isinstance(test, StdioTest)
            run = runs[position] if position < len(runs) and isinstance(runs[position], dict) else None
            if run is None:
                self._set(slot, test, False, "not_run", 0.0)
                continue
            wall = float(run.get("wall_s", 0.0) or 0.0)
            self.duration += wall
            self.cpu += float(run.get("cpu_s", 0.0) or 0.0)
            out = str(run.get("stdout", ""))
            records = _parse_records(run.get("records"))
            syntax = next((r for r in records if r.get("ev") == "syntax_error"), None)
            error = next((r for r in records if r.get("ev") == "program_error"), None)
            limit = _limit_status(run.get("limit"))
            visible = self._is_visible(slot)
            if syntax is not None:
                self._whole("syntax_error", _syntax_feedback(syntax))
                self._set(slot, test, False, "not_run", wall)
                continue
            status, message = "passed", ""
            if limit is not None:
                status, message = limit, self._limit_feedback(limit, run.get("limit_stream"))
            elif error is not None:
                status = "memory_limit" if error.get("memory") else "runtime_error"
                line = error.get("lineno")
                message = str(error.get("error", "error"))[:500] + (
                    f" (line {line})" if isinstance(line, int) else ""
                )
            elif run.get("exit_code") != 0:
                status, message = "runtime_error", f"the program {_ended(run)}"
            elif not stdout_equal(test.expected_stdout, out, test.float_tol):
                status, message = "failed", "wrong output"
                if visible:
                    message = f"expected {short_repr(test.expected_stdout)}, got {short_repr(out)}"
            passed = status == "passed"
            self._set(slot, test, passed, status, wall, message)
            if not passed and visible:
                if status == "failed":
                    self.details[slot] = (
                        f"Failed example: {self._describe(test)}\n  expected output: "
                        f"{short_repr(test.expected_stdout)}\n  got: {short_repr(out)}"
                    )
                else:
                    self.details[slot] = f"Failed example: {self._describe(test)}\n  {message}"
            if not excerpt_set and (not passed or position == 0):
                self.stdout = out[:_EXCERPT]
                self.stderr = str(run.get("stderr", ""))[:_EXCERPT]
                excerpt_set = not passed

    def result(self, n_hidden: int) -> ExecutionResult:
        """The final :class:`ExecutionResult`."""
        outcomes = [o if o is not None else TestOutcome(False, "not_run") for o in self.outcomes]
        hidden, visible = tuple(outcomes[:n_hidden]), tuple(outcomes[n_hidden:])
        status = self.status
        feedback = self.feedback
        if status is None:
            limited = [o for o in hidden if o.status in ("timeout", "memory_limit", "output_limit")]
            if all(o.passed for o in hidden):
                status = "passed"
            elif limited:
                status = limited[0].status  # type: ignore[assignment]
                feedback = limited[0].message
            elif any(o.status in ("runtime_error", "memory_limit") for o in hidden):
                status = (
                    "memory_limit" if any(o.status == "memory_limit" for o in hidden) else "runtime_error"
                )
            else:
                status = "failed"
        assert status is not None
        detail = next((d for d in self.details[n_hidden:] if d), "")
        if status == "passed":
            feedback = f"All {n_hidden} tests passed."
        elif status in ("failed", "runtime_error", "memory_limit") and not feedback:
            if detail:
                feedback = detail
            else:
                error = next((o for o in hidden if o.status in ("runtime_error", "memory_limit")), None)
                passed = sum(1 for o in hidden if o.passed)
                feedback = f"{passed}/{n_hidden} hidden tests passed."
                if error is not None and error.message:
                    feedback = f"{error.message} (in a hidden test). " + feedback
        elif detail and status in ("timeout", "output_limit", "memory_limit"):
            feedback = detail if feedback in detail else f"{feedback}\n{detail}"
        return ExecutionResult(
            status=status,
            tests=hidden,
            visible_tests=visible,
            feedback=feedback,
            stdout=self.stdout,
            stderr=self.stderr,
            duration_s=self.duration,
            task_id=self.task.task_id,
            cpu_s=self.cpu,
        )
