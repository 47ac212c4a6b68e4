"""The Docker backend: the same zygotes, each inside its own warm, locked-down container.

Every worker owns one long-lived container (no network, read-only root file system, memory and pids
limits, all capabilities dropped but the few the zygote needs to drop privileges, a tmpfs work dir) in
which one zygote (:mod:`codegym.execution.zygote`) runs, started with ``docker exec -i``. The parent
talks to it with the zygote's frames over the exec's attached stdin/stdout, exactly as the local backend
does over pipes: the pool logic, deadlines and verdicts are shared with
:class:`~codegym.execution.backend.LocalBackend` (:class:`~codegym.execution.backend.ZygotePool`).

Containers are created lazily with the ``docker`` SDK and reused across runs and batches. When a zygote
crashes or hangs, its whole container is removed and replaced by a fresh one. The zygote's source is
sent with the exec command itself (compressed), so the image needs nothing but Python 3, the containers
need no writable or bind-mounted code directory, and remote engines work too.

Typical use::

    ok, why = docker_available()
    with codegym.Executor(backend="docker", workers=2) as ex:
        result = ex.run(task, program)

The image (default ``codegym-sandbox:latest``, or ``$CODEGYM_SANDBOX_IMAGE``) is built by
``scripts/build_sandbox_image.sh`` (offline, debootstrap) or ``docker build -t codegym-sandbox docker/``.
See ``docs/backends.md``.
"""

from __future__ import annotations

import base64
import os
import secrets
import selectors
import shutil
import signal
import socket
import sys
import threading
import time
import uuid
import weakref
import zlib
from collections.abc import Sequence
from typing import Any

from codegym.execution.backend import (
    ZYGOTE_PATH,
    Job,
    RawReply,
    ReplyCallback,
    SandboxError,
    ZygotePool,
    default_workers,
)

DEFAULT_IMAGE = "codegym-sandbox:latest"
"""The sandbox image used when neither ``image=`` nor ``$CODEGYM_SANDBOX_IMAGE`` names another."""

LABEL = "codegym.sandbox"
"""Label on every container this backend creates (``docker ps --filter label=codegym.sandbox``)."""

WORKROOT = "/sandbox"
"""The tmpfs in each container under which the zygote makes one private directory per run."""

_CAPABILITIES = ("SETUID", "SETGID", "CHOWN", "KILL", "DAC_OVERRIDE", "FOWNER")
# The zygote runs as root in the container only to drop each child to its own unprivileged uid (SETUID,
# SETGID), hand it its work dir (CHOWN), kill every process of that uid (KILL) and remove what the child
# left in its 0700 directory (DAC_OVERRIDE, FOWNER). Every other capability is dropped.

_MEMORY_HEADROOM_MB = 256
_UID_MIN = 1_000_000
_UID_SPAN = 1_000_000_000

_FIX_IMAGE = "bash scripts/build_sandbox_image.sh (offline) or docker build -t {image} docker/"
_FIX_ENGINE = "start the engine: bash scripts/ci_services.sh (installs and starts dockerd as root)"


def sandbox_image(image: str | None = None) -> str:
    """The image to use: ``image`` if given, else ``$CODEGYM_SANDBOX_IMAGE``, else :data:`DEFAULT_IMAGE`."""
    return image or os.environ.get("CODEGYM_SANDBOX_IMAGE") or DEFAULT_IMAGE


def docker_available(image: str | None = None) -> tuple[bool, str]:
    """Check that the Docker backend can run here: the SDK, a reachable engine and the sandbox image.

    Args:
        image: The sandbox image (default: :func:`sandbox_image`).

    Returns:
        ``(True, "")`` when everything is there, else ``(False, reason)``; the reason says what is
        missing and which command fixes it. Tests use it to skip.
    """
    image = sandbox_image(image)
    try:
        import docker
    except ImportError:
        return False, "the docker SDK is not installed (pip install 'codegym[docker]')"
    try:
        client = docker.from_env(timeout=10)
    except Exception as exc:  # DockerException, or a bad DOCKER_HOST
        return False, f"the Docker engine is not reachable ({_short(exc)}); {_FIX_ENGINE}"
    try:
        client.ping()
    except Exception as exc:
        client.close()
        return False, f"the Docker engine does not answer ({_short(exc)}); {_FIX_ENGINE}"
    try:
        client.images.get(image)
    except Exception as exc:
        fix = _FIX_IMAGE.format(image=image)
        return False, f"the sandbox image {image} is missing ({_short(exc)}); {fix}"
    finally:
        client.close()
    return True, ""


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"


def zygote_bootstrap() -> str:
    """A ``python -c`` program that carries the whole zygote script, compressed, and runs it as ``__main__``.

    Passing the source inside the exec command avoids copying files into containers whose root file
    system is read-only (``put_archive`` refuses) and works with remote engines, unlike a bind mount.
    """
    with open(ZYGOTE_PATH, "rb") as f:
        packed = base64.b64encode(zlib.compress(f.read(), 9)).decode("ascii")
    code = f"import base64,zlib;exec(zlib.decompress(base64.b64decode('{packed}')))"
    if len(code) > 120_000:  # Linux caps one argument at 128 KiB (MAX_ARG_STRLEN)
        raise SandboxError(f"the compressed zygote is {len(code)} bytes, too long for one exec argument")
    return code


_IPC_SYSCTLS = {
    "kernel.shmmni": "0",
    "kernel.msgmni": "0",
    "kernel.sem": "32000 1024000000 500 0",
    "fs.mqueue.queues_max": "0",
}
"""Per-IPC-namespace limits of a sandbox container: no SysV shared memory, semaphores or message queues,
and no POSIX message queues for its unprivileged runs."""


class DockerBackend(ZygotePool):
    """Zygotes in warm Docker containers, one container per worker.

    Args:
        workers: Number of containers (concurrent jobs); default one per core.
        image: The sandbox image (default: :func:`sandbox_image`).
        container_memory_mb: Memory limit of each container (no swap): the backstop for the zygote and
            everything a run starts. Each process of a run is limited further by the executor's
            ``memory_mb`` (``RLIMIT_AS`` inside). When a batch asks for a ``memory_mb`` that leaves less
            than 256 MiB of room, the limit of every container is raised (live) to ``memory_mb + 256``.
        pids_limit: Most processes and threads in each container (the pids cgroup of the container); a
            run is limited further by the executor's ``max_procs``.
        tmpfs_mb: Size of the container's ``/sandbox`` tmpfs (the runs' work dirs) and of its ``/tmp``.
        cpus: CPU quota of each container (e.g. ``1.0``); ``None`` for no quota.
        python: The interpreter inside the image.
        transport: How the parent reaches each zygote's stdin/stdout: ``"cli"`` (``docker exec -i`` of
            the ``docker`` CLI), ``"sdk"`` (a small relay process that uses the ``docker`` SDK's exec
            socket; no CLI needed), or ``"auto"`` (the CLI if it is on PATH, else the SDK relay).
        docker_cli: The ``docker`` command for the ``"cli"`` transport (default: found on PATH).

    Raises:
        ValueError: for an out-of-range setting (the message names it).
        SandboxError: when the Docker engine or the image is not available (the message says why).
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        image: str | None = None,
        container_memory_mb: int = 1024,
        pids_limit: int = 256,
        tmpfs_mb: int = 256,
        cpus: float | None = None,
        python: str = "python3",
        transport: str = "auto",
        docker_cli: str | None = None,
    ) -> None:
        super().__init__(workers if workers is not None else default_workers())
        _check_int("container_memory_mb", container_memory_mb, 64, 1 << 20)
        _check_int("pids_limit", pids_limit, 8, 1 << 22)
        _check_int("tmpfs_mb", tmpfs_mb, 1, 1 << 20)
        if cpus is not None and (isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or cpus <= 0):
            raise ValueError(f"cpus must be a positive number or None, got {cpus!r}")
        self.image = sandbox_image(image)
        self.container_memory_mb = container_memory_mb
        self.pids_limit = pids_limit
        self.tmpfs_mb = tmpfs_mb
        self.cpus = cpus
        self.python = python
        if transport not in ("auto", "cli", "sdk"):
            raise ValueError(f"transport must be 'auto', 'cli' or 'sdk', got {transport!r}")
        cli = docker_cli or shutil.which("docker")
        if transport == "cli" and cli is None:
            raise SandboxError(f"the docker CLI is not on PATH (transport='cli'); {_FIX_ENGINE}")
        self.transport = "cli" if transport == "cli" or (transport == "auto" and cli) else "sdk"
        self.docker_cli = cli
        self.replaced = 0
        """How many containers were replaced after their zygote crashed or hung."""
        self._bootstrap = zygote_bootstrap()
        self._client: Any = None
        self._client_pid = -1
        self._containers: list[Any] = [None] * self.workers
        self._containers_pid = os.getpid()
        self._launches = [0] * self.workers
        self._uids = [0] * self.workers
        self._image_checked = False
        self._docker_lock = threading.Lock()
        ok, why = docker_available(self.image)
        if not ok:
            raise SandboxError(why)
        try:
            remove_stale_containers()  # left by trainers of this host that were killed
        except Exception:
            pass  # housekeeping only: never a reason not to run
        # Containers must not outlive the backend even if close() is never called.
        self._finalizer = weakref.finalize(self, _remove_containers, self._containers, os.getpid())

    # ------------------------------------------------------------------ ZygotePool hooks

    def command(self, slot: int) -> list[str]:
        """``docker exec -i <container> python3 -I -S -c <zygote> ...``, making the container if needed.

        Called when the slot's zygote must (re)start. A restart means the previous zygote crashed, hung
        or lost its container: the container is then replaced, so no state of a broken run survives.
        """
        with self._docker_lock:
            try:
                return self._command(slot)
            except SandboxError:
                raise
            except Exception as exc:  # the SDK's errors (engine gone, API errors): not a program's fault
                raise SandboxError(f"docker: {_short(exc)}") from exc

    def _command(self, slot: int) -> list[str]:
        self._check_owner()
        container = self._containers[slot]
        if container is not None and (self._launches[slot] > 0 or not self._running(container)):
            _remove_quietly(container)
            self._containers[slot] = container = None
            self.replaced += 1
        if container is None:
            container = self._create_container(slot)
            self._containers[slot] = container
            # Without user namespaces, a uid is one kernel-wide account (RLIMIT_NPROC counts it over
            # every container): each container's runs get their own random unprivileged uid, where
            # the zygote's default (200000 + its pid) would repeat in every container.
            self._uids[slot] = _UID_MIN + secrets.randbelow(_UID_SPAN)
        self._launches[slot] += 1
        if self.transport == "cli":
            prefix = [str(self.docker_cli), "exec", "-i", container.id]
        else:
            prefix = [sys.executable, "-I", "-m", "codegym.execution.docker_backend", "--relay", container.id]
        return [
            *prefix,
            self.python,
            "-I",
            "-S",
            "-c",
            self._bootstrap,
            "--preload",
            "--uid",
            str(self._uids[slot]),
            "--workroot",
            WORKROOT,
            # The container already has no network and a read-only root, and its cgroup file system
            # is read-only: the zygote's own namespaces and cgroups are neither possible nor needed.
            "--no-netns",
            "--no-mountns",
            "--no-cgroup",
            # The container's memory cgroup is this zygote's alone: its OOM kills are the run's.
            "--oom-control",
            "/sys/fs/cgroup/memory/memory.oom_control",
            "--pids-current",
            "/sys/fs/cgroup/pids/pids.current",
        ]

    def run_jobs(self, jobs: Sequence[Job], on_reply: ReplyCallback | None = None) -> list[RawReply]:
        """Run the jobs (see :meth:`ZygotePool.run_jobs`), first raising the containers' memory if needed."""
        jobs = list(jobs)
        need = max((_job_memory_mb(job) for job in jobs), default=0) + _MEMORY_HEADROOM_MB
        if need > self.container_memory_mb:
            with self._docker_lock:
                self._raise_memory(need)
        return super().run_jobs(jobs, on_reply)

    def _raise_memory(self, memory_mb: int) -> None:
        self.container_memory_mb = memory_mb
        if self._containers_pid != os.getpid():
            return  # a forked process's containers are made afresh with the new limit
        for container in self._containers:
            if container is not None:
                try:
                    container.update(mem_limit=memory_mb << 20, memswap_limit=memory_mb << 20)
                except Exception:
                    # Cannot update (e.g. the container is gone): let it be replaced with the new limit.
                    _remove_quietly(container)

    def environment(self, slot: int) -> dict[str, str]:
        """The environment of the ``docker`` CLI process (not of the sandbox).

        The zygote's environment is the container's (``PATH`` and ``LANG`` from the image): no variable
        of the trainer reaches it. The CLI itself only needs to find the engine.
        """
        keep = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_CERT_PATH")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        if "DOCKER_TLS_VERIFY" in os.environ:
            env["DOCKER_TLS_VERIFY"] = os.environ["DOCKER_TLS_VERIFY"]
        return env

    def features(self) -> dict[str, Any]:
        """The zygote's hello features plus what the container enforces."""
        feats = super().features()
        feats.update(
            {
                "backend": "docker",
                "image": self.image,
                "network": "none",
                "read_only_root": True,
                "container_memory_mb": self.container_memory_mb,
                "pids_limit": self.pids_limit,
                "capabilities": list(_CAPABILITIES),
            }
        )
        return feats

    def close(self) -> None:
        """Stop every zygote and remove every container of this backend (made by this process)."""
        super().close()
        with self._docker_lock:
            _remove_containers(self._containers, self._containers_pid)
            if self._client is not None and os.getpid() == self._client_pid:
                self._client.close()
            self._client = None

    # ------------------------------------------------------------------ containers

    def container_ids(self) -> list[str | None]:
        """The id of each worker's container (``None`` where none was made yet)."""
        return [c.id if c is not None else None for c in self._containers]

    def sandbox_uids(self) -> list[int]:
        """The unprivileged uid that each worker's runs get (0 where no container was made yet)."""
        return list(self._uids)

    def leftover_processes(self, wait_s: float = 3.0) -> list[str]:
        """Processes of a finished run still alive in any container (should be none), as ``pid: command``.

        Waits up to ``wait_s`` for processes that are being killed to disappear.
        """
        deadline = time.monotonic() + wait_s
        while True:
            found = []
            for container, uid in zip(list(self._containers), list(self._uids)):
                if container is None:
                    continue
                try:
                    top = container.top(ps_args="-o pid,uid,args")
                except Exception:
                    continue  # the container is gone: so are its processes
                for pid, owner, command in top.get("Processes") or []:
                    if owner == str(uid):
                        found.append(f"{pid}: {command}")
            if not found or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def leftover_workdirs(self) -> list[str]:
        """Run directories left in the containers' work roots (should be none between runs)."""
        left = []
        for container, hello in zip(list(self._containers), self._slot_hellos()):
            workroot = (hello or {}).get("features", {}).get("workroot")
            if container is None or not workroot:
                continue
            try:
                code, out = container.exec_run(["ls", "-A", workroot])
            except Exception:
                continue
            if code == 0:
                left += [f"{container.short_id}:{workroot}/{name}" for name in out.decode().split()]
        return left

    def _slot_hellos(self) -> list[dict[str, Any] | None]:
        return [z.hello if z is not None else None for z in self._zygotes]

    def _check_owner(self) -> None:
        # After a fork, the SDK's HTTP connections and the containers belong to the parent process: the
        # child makes its own (and its finalizer never touches the parent's).
        pid = os.getpid()
        if self._containers_pid != pid:
            self._containers = [None] * self.workers
            self._launches = [0] * self.workers
            self._uids = [0] * self.workers
            self._containers_pid = pid
            self._finalizer = weakref.finalize(self, _remove_containers, self._containers, pid)
        if self._client_pid != pid:
            import docker

            self._client = docker.from_env(timeout=60)
            self._client_pid = pid

    def _running(self, container: Any) -> bool:
        try:
            container.reload()
        except Exception:
            return False
        return container.status == "running"

    def _create_container(self, slot: int) -> Any:
        mb = 1024 * 1024
        tmpfs_opts = f"rw,nosuid,nodev,size={self.tmpfs_mb}m"
        kwargs: dict[str, Any] = {
            "image": self.image,
            # tini (init=True) is PID 1: it reaps whatever a run orphans; `sleep` just keeps it up.
            "command": ["sleep", "infinity"],
            "init": True,
            "detach": True,
            "name": f"codegym-sandbox-{os.getpid()}-{slot}-{uuid.uuid4().hex[:8]}",
            "labels": {LABEL: "1", "codegym.owner": f"{socket.gethostname()}:{os.getpid()}"},
            "network_mode": "none",
            "read_only": True,
            "tmpfs": {WORKROOT: tmpfs_opts + ",mode=755", "/tmp": tmpfs_opts + ",mode=1777"},
            "mem_limit": self.container_memory_mb * mb,
            "memswap_limit": self.container_memory_mb * mb,
            "pids_limit": self.pids_limit,
            "cap_drop": ["ALL"],
            "cap_add": list(_CAPABILITIES),
            "security_opt": ["no-new-privileges"],
            # The container's own IPC namespace allows no SysV objects or POSIX message queues: they
            # would outlive the run that made them and reach the next one (as in the local zygote).
            "ipc_mode": "private",
            "sysctls": dict(_IPC_SYSCTLS),
            "working_dir": WORKROOT,
            "environment": {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
            "stdin_open": False,
        }
        if self.cpus is not None:
            kwargs["nano_cpus"] = int(self.cpus * 1e9)
        try:
            container = self._client.containers.run(**kwargs)
        except Exception as exc:
            raise SandboxError(f"cannot start a sandbox container from {self.image}: {_short(exc)}") from exc
        if not self._image_checked:
            # Once per backend: a clear message for an image without a usable Python, instead of the
            # engine's error text arriving where the zygote's frames are expected.
            probe = "import sys; sys.exit(0 if sys.version_info >= (3, 8) else 3)"
            code, out = container.exec_run([self.python, "-I", "-S", "-c", probe])
            if code != 0:
                _remove_quietly(container)
                detail = out.decode("utf-8", "replace").strip()[:200]
                raise SandboxError(
                    f"the image {self.image} has no usable {self.python} (>= 3.8): exit {code}: {detail}"
                )
            self._image_checked = True
        return container


def _job_memory_mb(job: Job) -> int:
    try:
        return int(job.get("limits", {}).get("memory_mb", 0))
    except (TypeError, ValueError):
        return 0  # the zygote rejects a malformed request itself


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an int in [{low}, {high}], got {value!r}")


def _remove_quietly(container: Any) -> None:
    try:
        container.remove(force=True)
    except Exception:
        pass  # already gone (or the engine went away): nothing left to clean


def _remove_containers(containers: list[Any], owner_pid: int) -> None:
    if os.getpid() != owner_pid:
        return
    for i, container in enumerate(containers):
        if container is not None:
            _remove_quietly(container)
            containers[i] = None


def remove_stale_containers(all_hosts: bool = False) -> int:
    """Remove sandbox containers whose owning process is gone (e.g. after a trainer was killed).

    Args:
        all_hosts: Also remove containers created from other hosts (their owner cannot be checked).

    Returns:
        How many containers were removed.
    """
    import docker

    client = docker.from_env(timeout=60)
    host = socket.gethostname()
    removed = 0
    try:
        for container in client.containers.list(all=True, filters={"label": LABEL}):
            owner = container.labels.get("codegym.owner", "")
            owner_host, _, pid_text = owner.rpartition(":")
            if owner_host == host and pid_text.isdigit() and _pid_alive(int(pid_text)):
                continue
            if owner_host != host and not all_hosts:
                continue
            _remove_quietly(container)
            removed += 1
    finally:
        client.close()
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------------------------- SDK relay


def relay(container_id: str, argv: Sequence[str]) -> int:
    """Run ``argv`` in the container with the SDK's exec API and pump bytes between it and our stdio.

    Our stdin goes to the exec's stdin (EOF half-closes it); the exec's stdout (demultiplexed from
    Docker's 8-byte stream headers; its stderr is dropped) goes to our stdout. This is ``docker exec -i``
    without the CLI: the ``"sdk"`` transport of :class:`DockerBackend` starts one relay per zygote.

    Returns:
        The exec's exit code (``125`` if it cannot be read).
    """
    import docker

    api = docker.from_env(timeout=60).api
    exec_id = api.exec_create(container_id, list(argv), stdin=True, stdout=True, stderr=False, tty=False)
    conn = api.exec_start(exec_id["Id"], socket=True)
    sock = getattr(conn, "_sock", conn)
    sock.setblocking(True)
    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ)
    sel.register(sock, selectors.EVENT_READ)
    buf = bytearray()
    while True:
        for key, _ in sel.select():
            if key.fileobj == 0:
                data = os.read(0, 1 << 16)
                if data:
                    sock.sendall(data)
                else:  # our stdin closed: so does the zygote's
                    sel.unregister(0)
                    try:
                        sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                continue
            data = sock.recv(1 << 16)
            if not data:
                sel.close()
                try:
                    return int(api.exec_inspect(exec_id["Id"]).get("ExitCode") or 0)
                except Exception:
                    return 125
            buf += data
            while len(buf) >= 8:
                size = int.from_bytes(buf[4:8], "big")
                if len(buf) < 8 + size:
                    break
                if buf[0] == 1:  # stdout
                    _write_all(1, bytes(buf[8 : 8 + size]))
                del buf[: 8 + size]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _main(argv: Sequence[str]) -> int:
    if len(argv) >= 3 and argv[0] == "--relay":
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        return relay(argv[1], argv[2:])
    print("usage: python -m codegym.execution.docker_backend --relay CONTAINER CMD...", file=sys.stderr)
    return 2


__all__: Sequence[str] = [
    "DEFAULT_IMAGE",
    "LABEL",
    "DockerBackend",
    "docker_available",
    "relay",
    "remove_stale_containers",
    "sandbox_image",
    "zygote_bootstrap",
]

if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
