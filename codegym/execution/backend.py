"""Execution backends: where the zygotes run. The executor talks to a :class:`Backend` only.

A backend takes *jobs* (the ``run`` request objects of the zygote protocol, see
:mod:`codegym.execution.zygote`, without ``type`` and ``id``) and returns one *raw reply* per job, in
order: the zygote's ``result`` object, or ``{"type": "error", "message": ...}`` when the backend itself
failed on that job (a crashed or hung zygote, which is then restarted). A backend never raises for a
single job's fault.

:class:`ZygotePool` implements the protocol over any command that starts a zygote and speaks frames on its
stdin/stdout; :class:`LocalBackend` runs ``python -I -S zygote.py`` on this machine. The Docker backend
subclasses :class:`ZygotePool` with a ``docker exec -i ... python3 -I -S zygote.py`` command (override
:meth:`ZygotePool.command`), so the same parent code drives zygotes inside containers.
"""

from __future__ import annotations

import json
import os
import selectors
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

ZYGOTE_PATH = str(Path(__file__).with_name("zygote.py"))
"""Absolute path of the zygote script (standalone, stdlib only)."""

_HEADER = struct.Struct(">I")
_MAX_REPLY = 256 * 1024 * 1024
_HELLO_TIMEOUT_S = 30.0
_GRACE_S = 5.0
_READ_SIZE = 1 << 16

ReplyCallback = Callable[[int, "RawReply"], None]
"""``on_reply(job_index, raw_reply)``: told of each job's reply as soon as it is known."""

Job = dict[str, Any]
"""A ``run`` request of the zygote protocol: ``program``, ``mode``, ``entry_point``, ``tests``, ``limits``."""

RawReply = dict[str, Any]
"""A zygote ``result`` reply, or ``{"type": "error", "message": str}``."""

SANDBOX_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
"""The whole environment a zygote starts with: no variable of the trainer reaches the sandbox."""


class SandboxError(RuntimeError):
    """A backend could not start or talk to its sandbox (not a verdict about a program)."""


@runtime_checkable
class Backend(Protocol):
    """What the :class:`~codegym.execution.executor.Executor` needs from a backend."""

    workers: int

    def run_jobs(self, jobs: Sequence[Job], on_reply: ReplyCallback | None = None) -> list[RawReply]:
        """Run every job (concurrently up to ``workers``) and return the raw replies in input order.

        ``on_reply(index, reply)``, if given, is called once per job as soon as its reply is known
        (before this returns), so that the caller can judge results while other jobs still run.
        """
        ...

    def features(self) -> dict[str, Any]:
        """What the sandbox enforces (the zygotes' hello ``features``), for logs and docs."""
        ...

    def close(self) -> None:
        """Stop every sandbox process; the backend may not be used afterwards."""
        ...


def job_deadline_s(job: Job) -> float:
    """The parent's backstop for one job: the zygote's own limits plus a grace period."""
    timeout = float(job.get("limits", {}).get("timeout_s", 5.0))
    runs = len(job.get("tests", ())) if job.get("mode") == "stdio" else 1
    return max(1, runs) * (timeout + 1.0) + _GRACE_S


# Jobs in flight per zygote. A second small job queued in the zygote's pipe (depth 2) lets the zygote
# start it without waiting for this process to read the previous reply (about 3% on HumanEval with
# pinned zygotes). A queued job can wait behind a slow one while another zygote idles, so jobs are
# queued ahead only while more jobs are pending than there are zygotes: the tail of a batch is not.
_PIPELINE_DEPTH = 2
_AHEAD_MAX_BYTES = 32 * 1024
# A job running this long is most likely waiting out its timeout: the pool goes round it (ZygotePool).
_STUCK_S = 0.25


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# Frames are encoded and decoded by json's C accelerators straight away: json.dumps/loads would build an
# encoder or decoder object per call (and check for cycles, which frames never have).
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_frame_encoder = (
    _c_make_encoder(None, _not_json, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)
    if _c_make_encoder is not None
    else None
)
_frame_scanner = json.decoder.JSONDecoder().scan_once


def _dumps_frame(obj: dict[str, Any]) -> bytes:
    """``obj`` as compact JSON bytes (what ``json.dumps(obj, separators=(",", ":"))`` gives)."""
    if _frame_encoder is not None:
        return "".join(_frame_encoder(obj, 0)).encode("utf-8")
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def _loads_frame(payload: bytes) -> Any:
    """Decode one frame's JSON (raises ValueError if it is not exactly one JSON value)."""
    text = payload.decode("utf-8")
    try:
        obj, end = _frame_scanner(text, 0)
    except StopIteration:
        raise ValueError("frame is not JSON") from None
    if end != len(text):
        raise ValueError("extra data after the JSON value of a frame")
    return obj


def _encode_request(index: int, job: Job) -> bytes:
    payload = _dumps_frame({"type": "run", "id": index, **job})
    return _HEADER.pack(len(payload)) + payload


class ZygoteProcess:
    """One running zygote and the framing of its stdin/stdout.

    Args:
        argv: The command that starts the zygote.
        env: Its whole environment.
    """

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=dict(SANDBOX_ENV if env is None else env),
            close_fds=True,
            start_new_session=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.out_fd = self.proc.stdout.fileno()
        os.set_blocking(self.out_fd, False)
        self._buf = bytearray()
        self.hello: dict[str, Any] | None = None
        self.eof = False  # its stdout reached EOF: the zygote exited (or closed it)
        self.answered = 0  # replies read from it
        # Jobs sent and not yet answered, oldest first: the zygote runs them one after another.
        self.inflight: deque[int] = deque()
        self.deadline = 0.0  # when the oldest in-flight job must have been answered
        self.started = 0.0  # when the oldest in-flight job started

    def wait_hello(self, timeout_s: float = _HELLO_TIMEOUT_S) -> dict[str, Any]:
        """Block until the hello frame arrives; raise :class:`SandboxError` if it does not."""
        end = time.monotonic() + timeout_s
        sel = selectors.DefaultSelector()
        sel.register(self.out_fd, selectors.EVENT_READ)
        try:
            while self.hello is None:
                left = end - time.monotonic()
                if left <= 0:
                    raise SandboxError(f"zygote {self.argv!r} sent no hello within {timeout_s:.0f} s")
                sel.select(left)
                for frame in self.read_frames():
                    if frame.get("type") != "hello":
                        raise SandboxError(f"zygote sent {frame!r:.200} before its hello")
                    self.hello = frame
                if self.hello is None and self.eof:
                    raise SandboxError(f"zygote exited (code {self.proc.poll()}) before its hello")
        finally:
            sel.close()
        return self.hello

    def send(self, obj: dict[str, Any]) -> None:
        """Write one request frame (blocking; the zygote reads requests promptly when idle)."""
        payload = _dumps_frame(obj)
        self.send_bytes(_HEADER.pack(len(payload)) + payload)

    def send_bytes(self, frame: bytes) -> None:
        """Write an already framed request (straight to the pipe, blocking until all of it is written)."""
        assert self.proc.stdin is not None
        fd = self.proc.stdin.fileno()
        view = memoryview(frame)
        while view:
            view = view[os.write(fd, view) :]

    def read_frames(self) -> list[dict[str, Any]]:
        """Read what is available without blocking; return the complete frames.

        At EOF (the zygote exited) :attr:`eof` becomes True; the frames it wrote before are still
        returned. A frame that is too large or not JSON raises :class:`SandboxError` or ``ValueError``.
        """
        while not self.eof:
            try:
                # A pipe holds 64 KiB: a bigger read size would only allocate (and shrink) more.
                chunk = os.read(self.out_fd, _READ_SIZE)
            except BlockingIOError:
                break
            if not chunk:
                self.eof = True
                break
            self._buf += chunk
            if len(chunk) < _READ_SIZE:
                break
        frames = []
        while len(self._buf) >= 4:
            (size,) = _HEADER.unpack_from(self._buf, 0)
            if size > _MAX_REPLY:
                raise SandboxError(f"zygote frame of {size} bytes is too large")
            if len(self._buf) < 4 + size:
                break
            payload = bytes(self._buf[4 : 4 + size])
            del self._buf[: 4 + size]
            frames.append(_loads_frame(payload))
        return frames

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the zygote to exit (EOF), then kill it if it does not."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_pipes()

    def kill(self) -> None:
        """Kill the zygote and clean what it leaves (its children die with it: PDEATHSIG and cgroups)."""
        try:
            self.proc.kill()
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        features = (self.hello or {}).get("features", {})
        for key in ("cgroup_pids", "cgroup_memory"):
            path = features.get(key)
            if path:
                _remove_cgroup(path)
        workroot = features.get("workroot")
        if (
            workroot
            and features.get("mountns") is False
            and os.path.basename(workroot).startswith("codegym-zygote-")
        ):
            # Without a private /tmp the killed zygote's work root is on this host: remove it.
            import shutil

            shutil.rmtree(workroot, ignore_errors=True)
        self._close_pipes()

    def _close_pipes(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


def _remove_cgroup(path: str) -> None:
    import signal

    for _ in range(100):
        try:
            pids = [int(x) for x in Path(path, "cgroup.procs").read_text().split()]
        except OSError:
            return
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.005)
    try:
        os.rmdir(path)
    except OSError:
        pass


class _Replies(list):  # type: ignore[type-arg]
    """The reply list of one batch: assigning a reply also reports it to ``on_reply``.

    An exception raised by ``on_reply`` is kept (the first one) and raised by :meth:`finish`, once every
    job has its reply: raised in the middle, it would cut the batch short. (A ``KeyboardInterrupt`` is
    not held; the pool then stops the zygotes that still hold jobs, see ``_drop_interrupted``.)
    """

    def __init__(self, n: int, on_reply: ReplyCallback | None) -> None:
        super().__init__([None] * n)
        self._on_reply = on_reply
        self.error: Exception | None = None

    def __setitem__(self, index: Any, reply: Any) -> None:
        super().__setitem__(index, reply)
        if self._on_reply is not None:
            try:
                self._on_reply(index, reply)
            except Exception as exc:  # raised by finish(), after the batch (an interrupt is not held)
                if self.error is None:
                    self.error = exc

    def finish(self) -> list[Any]:
        """Every missing reply as an error, reported too; then the callback's first exception, if any."""
        for index, reply in enumerate(self):
            if reply is None:
                self[index] = {"type": "error", "message": "no reply"}
        if self.error is not None:
            raise self.error
        return list(self)


class ZygotePool:
    """A pool of zygotes, one per worker, that runs jobs concurrently from one thread (no threads).

    Subclasses choose how a zygote starts by overriding :meth:`command` (and :meth:`environment`).

    A job that runs longer than ``_STUCK_S`` is most likely a program that hangs until its timeout. While
    some are, up to :attr:`max_extra_zygotes` more zygotes take the pending jobs (one more per such job),
    so that quick programs do not wait behind a batch's hangs. They are started when first needed and
    kept; they take no job while no zygote is stuck.

    Args:
        workers: Number of zygotes (concurrent jobs).
    """

    max_extra_zygotes = 0
    """Zygotes beyond ``workers`` for the pending jobs while others are stuck (0: none)."""

    def __init__(self, workers: int) -> None:
        if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 256:
            raise ValueError(f"workers must be an int in [1, 256], got {workers!r}")
        self.workers = workers
        self._zygotes: list[ZygoteProcess | None] = [None] * workers
        self._owner_pid = os.getpid()
        self._lock = threading.Lock()
        self._closed = False
        self.restarts = 0
        """Zygotes killed because they crashed, hung or broke the protocol (a deliberate exit is not one)."""

    def command(self, slot: int) -> list[str]:
        """The argv that starts the zygote of worker ``slot``."""
        raise NotImplementedError

    def environment(self, slot: int) -> dict[str, str]:
        """The whole environment of the zygote (default: :data:`SANDBOX_ENV`)."""
        return dict(SANDBOX_ENV)

    def _ensure_started(self, poll: bool = True) -> None:
        """Start a zygote in every empty slot and every slot whose idle zygote died.

        With ``poll=False`` only zygotes already known to be dead (killed here, or seen dead by an
        earlier poll) are replaced, without a system call per zygote.
        """
        if os.getpid() != self._owner_pid:
            # Forked trainer: the zygotes belong to the parent process; start our own.
            self._zygotes = [None] * self.workers
            self._owner_pid = os.getpid()
        # A zygote with jobs in flight is never replaced here: _fail first settles its jobs.
        missing = [
            i
            for i, z in enumerate(self._zygotes)
            if z is None or (not z.inflight and (not z.alive() if poll else z.proc.returncode is not None))
        ]
        started = []
        for i in missing:
            old = self._zygotes[i]
            if old is not None:
                old.kill()
            self._zygotes[i] = ZygoteProcess(self.command(i), self.environment(i))
            started.append(i)
        for i in started:
            zyg = self._zygotes[i]
            assert zyg is not None
            try:
                zyg.wait_hello()
            except SandboxError:
                zyg.kill()
                self._zygotes[i] = None
                raise

    def features(self) -> dict[str, Any]:
        """The first zygote's hello ``features`` (starting the pool if needed)."""
        with self._lock:
            self._ensure_started()
            zyg = self._zygotes[0]
            return dict((zyg.hello or {}).get("features", {})) if zyg else {}

    def hellos(self) -> list[dict[str, Any]]:
        """The hello frames of the running zygotes (pid and features of each; empty before the first run)."""
        return [dict(z.hello) for z in self._zygotes if z is not None and z.hello is not None and z.alive()]

    def run_jobs(self, jobs: Sequence[Job], on_reply: ReplyCallback | None = None) -> list[RawReply]:
        """Run the jobs on the pool; replies in input order. A broken zygote fails only its own job.

        ``on_reply(index, reply)`` is called for each job as soon as its reply arrives (see
        :class:`Backend`); the first exception it raises is raised when every job has its reply.
        """
        if self._closed:
            raise SandboxError("backend is closed")
        with self._lock:
            return self._run_jobs(list(jobs), on_reply)

    def _run_jobs(self, jobs: list[Job], on_reply: ReplyCallback | None = None) -> list[RawReply]:
        replies = _Replies(len(jobs), on_reply)
        pending = deque(range(len(jobs)))
        busy: dict[int, ZygoteProcess] = {}
        self._drop_interrupted()
        sel = selectors.DefaultSelector()
        try:
            while pending or busy:
                self._dispatch(jobs, pending, busy, sel, replies)
                if not busy:
                    continue
                wake = min(z.deadline for z in busy.values())
                if pending and self.max_extra_zygotes:  # wake up when a job becomes stuck, to go round it
                    wake = min([wake, *(z.started + _STUCK_S for z in busy.values())])
                wait = max(0.0, wake - time.monotonic())
                for key, _ in sel.select(wait):
                    zyg = busy.get(key.fd)
                    if zyg is not None:
                        self._collect(zyg, jobs, busy, sel, replies, pending)
                now = time.monotonic()
                for zyg in [z for z in busy.values() if z.deadline <= now]:
                    self._fail(
                        zyg, busy, sel, replies, pending, "sandbox process did not answer in time; restarted"
                    )
        except BaseException:
            # Interrupted (KeyboardInterrupt, say): zygotes that still hold jobs of this batch would send
            # their replies to the next one. They are stopped; the next batch starts fresh ones.
            self._drop_interrupted()
            raise
        finally:
            sel.close()
        return replies.finish()

    def _collect(
        self,
        zyg: ZygoteProcess,
        jobs: list[Job],
        busy: dict[int, ZygoteProcess],
        sel: selectors.BaseSelector,
        replies: list[RawReply | None],
        pending: deque[int],
        dead: bool = False,
    ) -> None:
        """Take the replies ``zyg`` has written; then fail it if it exited or sent a bad frame.

        ``dead``: the caller saw the process dead (its EOF may not have been read yet).
        """
        try:
            frames = zyg.read_frames()
        except (SandboxError, ValueError, UnicodeDecodeError) as exc:
            self._fail(zyg, busy, sel, replies, pending, f"sandbox process failed: {exc}")
            return
        for frame in frames:
            if frame.get("type") not in ("result", "error") or not zyg.inflight:
                continue
            replies[zyg.inflight.popleft()] = frame
            zyg.answered += 1
            if zyg.inflight:  # the next job starts now
                zyg.started = time.monotonic()
                zyg.deadline = zyg.started + job_deadline_s(jobs[zyg.inflight[0]])
        if zyg.eof or dead:
            self._fail(zyg, busy, sel, replies, pending, "sandbox process failed: zygote exited", exited=True)
        elif not zyg.inflight:
            sel.unregister(zyg.out_fd)
            del busy[zyg.out_fd]

    def _drop_interrupted(self) -> None:
        """Kill every zygote that still has jobs in flight (left by an interrupted batch)."""
        for slot, zyg in enumerate(self._zygotes):
            if zyg is not None and zyg.inflight:
                zyg.inflight.clear()
                zyg.kill()
                self._zygotes[slot] = None

    def _dispatch(
        self,
        jobs: list[Job],
        pending: deque[int],
        busy: dict[int, ZygoteProcess],
        sel: selectors.BaseSelector,
        replies: list[RawReply | None],
    ) -> None:
        """Send jobs: first to idle zygotes, then (with ``_PIPELINE_DEPTH`` > 1) ahead to busy ones.

        The job sent ahead waits in the zygote's stdin pipe, so the zygote starts it without waiting for
        this process to read the previous reply. Only requests that fit in the pipe buffer are sent
        ahead: a blocking write here while the zygote blocks writing a large reply would deadlock.
        """
        if not pending:
            return
        # A zygote that died since its output was last read (killed, or exited after its last reply) is
        # dealt with first: its replies taken, its jobs failed or requeued, its slot freed. Checked once
        # per call (a poll is a system call): a death while sending below shows as a failed send.
        for zyg in [z for z in busy.values() if not z.alive()]:
            self._collect(zyg, jobs, busy, sel, replies, pending, dead=True)
        poll = True
        while pending:
            try:
                self._ensure_started(poll)
                poll = False
            except (SandboxError, OSError) as exc:
                if busy:
                    return  # keep going with the zygotes we have
                while pending:
                    replies[pending.popleft()] = {"type": "error", "message": f"cannot start sandbox: {exc}"}
                return
            live = [z for z in self._zygotes if z is not None]
            now = time.monotonic()
            stuck = [z for z in live if z.inflight and now - z.started >= _STUCK_S]
            running = sum(1 for z in live if z.inflight)
            target = None
            if running < self.workers + len(stuck):
                target = next((z for z in live if not z.inflight), None)
                if target is None and stuck and len(self._zygotes) < self.workers + self.max_extra_zygotes:
                    target = self._start_extra()
            payload: bytes | None = None
            if target is None:
                if len(pending) <= len(live):
                    return  # the tail of the batch: wait for an idle zygote
                target = next(
                    (z for z in live if z.inflight and len(z.inflight) < _PIPELINE_DEPTH and z not in stuck),
                    None,
                )
                if target is None:
                    return  # every zygote full (or stuck): wait for an idle one
                payload = _encode_request(pending[0], jobs[pending[0]])
                if len(payload) > _AHEAD_MAX_BYTES:
                    return
            index = pending.popleft()
            try:
                target.send_bytes(payload if payload is not None else _encode_request(index, jobs[index]))
            except (OSError, ValueError) as exc:
                # The zygote is gone. The job is last in its queue: it is requeued with the others if
                # the zygote left on purpose, and fails only if nothing else was running there.
                target.inflight.append(index)
                if target.out_fd in busy:
                    self._collect(target, jobs, busy, sel, replies, pending)
                if target.inflight:
                    message = f"sandbox process failed: {exc}"
                    self._fail(target, busy, sel, replies, pending, message, exited=True)
                continue
            if not target.inflight:
                target.started = time.monotonic()
                target.deadline = target.started + job_deadline_s(jobs[index])
            target.inflight.append(index)
            if target.out_fd not in busy:
                busy[target.out_fd] = target
                sel.register(target.out_fd, selectors.EVENT_READ)

    def _start_extra(self) -> ZygoteProcess | None:
        """Start one more zygote (slot ``len(_zygotes)``); None if it does not come up."""
        slot = len(self._zygotes)
        try:
            zyg = ZygoteProcess(self.command(slot), self.environment(slot))
            zyg.wait_hello()
        except (SandboxError, OSError):
            return None
        self._zygotes.append(zyg)
        return zyg

    def _fail(
        self,
        zyg: ZygoteProcess,
        busy: dict[int, ZygoteProcess],
        sel: selectors.BaseSelector,
        replies: list[RawReply | None],
        pending: deque[int],
        message: str,
        exited: bool = False,
    ) -> None:
        """Kill a broken zygote: its running job fails, the jobs queued behind it go back to ``pending``.

        With ``exited`` (its output reached EOF), the exit code is added to ``message``. A zygote that
        exited with code 0 after answering a job left on purpose (a run left something it could not
        remove): it started none of the jobs left in its pipe, so they all go back to ``pending``.
        """
        code = zyg.proc.poll()
        if exited and code is None:
            try:
                code = zyg.proc.wait(1.0)
            except subprocess.TimeoutExpired:
                pass
        if exited:
            message = f"{message} (code {code})"
        deliberate = exited and code == 0 and zyg.answered > 0
        if zyg.inflight and not deliberate:
            replies[zyg.inflight.popleft()] = {"type": "error", "message": message}
        if zyg.inflight:
            pending.extendleft(reversed(zyg.inflight))
            zyg.inflight.clear()
        if zyg.out_fd in busy:
            sel.unregister(zyg.out_fd)
            del busy[zyg.out_fd]
        zyg.kill()
        if not deliberate:
            self.restarts += 1

    def close(self) -> None:
        """Stop every zygote."""
        with self._lock:
            self._closed = True
            if os.getpid() != self._owner_pid:
                return
            for zyg in self._zygotes:
                if zyg is not None:
                    zyg.stop()
            self._zygotes = [None] * self.workers


class LocalBackend(ZygotePool):
    """Zygotes on this machine, started with the trainer's interpreter: ``python -I -S zygote.py --preload``.

    Args:
        workers: Number of zygotes (default: the number of CPU cores).
        python: Interpreter for the zygotes (default: ``sys.executable``).
        isolate: Use namespaces (network, mount) and cgroups where permitted. ``False`` keeps only
            rlimits, process groups and the scrubbed environment (useful for debugging).
        extra_zygotes: At most this many zygotes beyond ``workers`` take pending jobs while jobs run
            past 0.25 s (most likely waiting out their timeouts); default ``workers``. A job on an extra
            zygote shares a core with the hanging ones, so one that needs most of its timeout in CPU
            time can time out where it would not have alone: 0 keeps one job per worker.
        native: Use the zygote's native helpers where they were built at install time
            (``codegym/execution/_zygote_native.c``: the fork, the child's set-up and its supervision in
            C, Python's arenas in transparent huge pages, the call tests' loop in C: 15-25% more
            throughput, ``bench/executor.py --no-native``).
            ``False`` runs the zygote's pure-Python path, as in containers; the hello's ``features`` say
            which one runs (``native``).
        huge_pages: With the native helpers, keep what every fork copies in transparent huge pages:
            Python's arenas and malloc's heap (one page-table entry per 2 MiB for the fork to copy, and
            one page fault per 2 MiB when the zygote writes after a run instead of one per 4 KiB), and
            the interpreter's code and read-only data, copied at start from libpython's file mappings
            to the same addresses (children share it through the fork instead of faulting the file's
            pages in). The hello's ``features`` say what it got (``huge_arenas``, ``huge_heap`` and
            ``huge_text`` bytes; 0 where transparent huge pages are off). ``False`` keeps 4 KiB pages
            and the file mappings, for tools that need them (``perf`` cannot name functions in
            anonymous memory); ``bench/executor.py --no-huge-pages`` measures the difference.
        pin_cpus: Pin zygote ``i`` (and so its children) to the ``i``-th CPU this process may use,
            round robin. A forked child then runs on its zygote's core, where the pages it copies are
            already in cache; unpinned, the scheduler tends to start it on the other core (about 9%
            more throughput pinned, ``bench/executor.py``). ``False`` lets the scheduler place them.
        extra_args: More zygote options (see the zygote's module docstring).
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        python: str | None = None,
        isolate: bool = True,
        extra_zygotes: int | None = None,
        pin_cpus: bool = True,
        native: bool = True,
        huge_pages: bool = True,
        extra_args: Sequence[str] = (),
    ) -> None:
        super().__init__(workers if workers is not None else default_workers())
        self.python = python or sys.executable
        self.isolate = isolate
        self.pin_cpus = pin_cpus
        self.native = native
        self.huge_pages = huge_pages
        if extra_zygotes is None:
            extra_zygotes = self.workers
        if (
            not isinstance(extra_zygotes, int)
            or isinstance(extra_zygotes, bool)
            or not 0 <= extra_zygotes <= 256
        ):
            raise ValueError(f"extra_zygotes must be an int in [0, 256], got {extra_zygotes!r}")
        self.max_extra_zygotes = extra_zygotes
        self.extra_args = list(extra_args)

    def environment(self, slot: int) -> dict[str, str]:
        """:data:`SANDBOX_ENV`, ``LD_BIND_NOW=1``, and what loads the native helpers (where built).

        ``LD_BIND_NOW`` makes the dynamic linker resolve every symbol of the interpreter and its libraries
        when the zygote starts: without it, each child resolved (and wrote into its copy of the tables)
        every library function that it was the first to call, about 15 page faults per run.
        ``LD_PRELOAD`` of ``_zygote_native`` (with ``CODEGYM_ZYGOTE_HUGE_PAGES=1``, see ``huge_pages``)
        runs a constructor before the interpreter initializes: Python's arena allocator is set so that all
        of its arenas, the interpreter's first ones included, are in transparent huge pages, malloc's heap
        is prepared for them, and the interpreter's code is moved into them. The zygote clears its
        environment before any run.
        """
        env = super().environment(slot)
        env["LD_BIND_NOW"] = "1"
        library = native_library() if self.native and self._trainer_python() else None
        if library is not None:
            env["LD_PRELOAD"] = library
            if self.huge_pages:
                env["CODEGYM_ZYGOTE_HUGE_PAGES"] = "1"
        return env

    def _trainer_python(self) -> bool:
        return os.path.realpath(self.python) == os.path.realpath(sys.executable)

    def command(self, slot: int) -> list[str]:
        """``python -I -S -c <import zygote; zygote.main()> --preload [--site-dirs DIRS] [options]``.

        Importing the zygote (from its cached bytecode) instead of running it as a script keeps about
        2.5 MB of compiler garbage out of the zygote, and every fork copies less. Its directory is taken
        off ``sys.path`` again so that programs cannot import CodeGym's modules by accident. ``-S`` skips
        the ``site`` module, whose ``.pth`` hooks (editable-install finders, setuptools' shim) would
        import about 4 MB of modules (pathlib, urllib, ...) into the zygote; the trainer's site
        directories are passed instead, so programs still import what the trainer has installed.
        """
        bootstrap = (
            f"import sys; sys.path.insert(0, {os.path.dirname(ZYGOTE_PATH)!r}); import zygote; "
            "del sys.path[0]; zygote.main()"
        )
        argv = [self.python, "-I"]
        if self._trainer_python():
            argv += ["-S", "-c", bootstrap, "--preload", "--site-dirs", os.pathsep.join(site_dirs())]
        else:  # another interpreter: its own site module finds its own site directories
            argv += ["-c", bootstrap, "--preload"]
        if self.pin_cpus:
            cpus = usable_cpus()
            if cpus:
                argv += ["--cpu", str(cpus[slot % len(cpus)])]
        if not self.native:
            argv.append("--no-native")
        if not self.huge_pages:
            argv.append("--no-huge-pages")
        argv += self.extra_args
        if not self.isolate:
            argv += ["--no-netns", "--no-ipcns", "--no-mountns", "--no-cgroup"]
        return argv


def native_library() -> str | None:
    """The path of the built ``_zygote_native`` extension, or None.

    None also where ``LD_PRELOAD`` cannot take the path (it splits on spaces and colons).
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec("codegym.execution._zygote_native")
    except (ImportError, ValueError):
        return None
    origin = spec.origin if spec is not None else None
    if not origin or not os.path.isfile(origin) or any(c in origin for c in " :"):
        return None
    return origin


def site_dirs() -> list[str]:
    """The running interpreter's site directories, as ``python -I`` adds them, without running ``.pth`` code.

    The site-packages directories, then the directories that their ``.pth`` files name (``import``
    lines, which run code, are skipped).
    """
    import site

    dirs: list[str] = []
    for base in site.getsitepackages():
        if not os.path.isdir(base) or base in dirs:
            continue
        dirs.append(base)
        try:
            names = sorted(n for n in os.listdir(base) if n.endswith(".pth"))
        except OSError:
            continue
        for name in names:
            try:
                lines = Path(base, name).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            for line in lines:
                line = line.rstrip()
                if not line or line.startswith(("#", "import ", "import\t")):
                    continue
                path = os.path.abspath(os.path.join(base, line))
                if os.path.isdir(path) and path not in dirs:
                    dirs.append(path)
    return dirs


def usable_cpus() -> list[int]:
    """The CPUs this process may run on, in order (empty where the platform cannot tell)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []


def default_workers() -> int:
    """One worker per usable core."""
    return max(1, len(usable_cpus()) or os.cpu_count() or 1)
