"""The Docker backend: warm containers, their limits, replacement after a crash, and verdicts identical to
the local backend. Needs a Docker engine and the sandbox image (``bash scripts/ci_services.sh``); skips
with the reason from ``docker_available()`` elsewhere, except on CI where the first test fails instead.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import on_ci, require

import codegym
from codegym import CallTest, StdioTest, Task
from codegym.execution.backend import SandboxError
from codegym.execution.docker_backend import (
    LABEL,
    DockerBackend,
    docker_available,
    remove_stale_containers,
    zygote_bootstrap,
)

AVAILABLE, REASON = docker_available()
needs_docker = pytest.mark.skipif(not AVAILABLE, reason=f"docker unavailable: {REASON}")

ADD = Task(
    task_id="docker/add",
    prompt="def add(a, b):\n",
    entry_point="add",
    reference="def add(a, b):\n    return a + b\n",
    tests=(CallTest((1, 2), 3), CallTest((10, -4), 6)),
)


def probe(task_id: str, expected: object) -> Task:
    """A task whose entry point ``probe()`` runs ``body`` in the sandbox and must return ``expected``."""
    return Task(
        task_id=task_id,
        prompt="def probe():\n",
        entry_point="probe",
        reference="def probe():\n    return None\n",
        tests=(CallTest((), expected),),
        visible_tests=(CallTest((), expected),),  # visible: the feedback shows what it got
    )


def run_probe(ex: codegym.Executor, body: str, expected: object) -> codegym.ExecutionResult:
    program = "def probe():\n" + "".join(f"    {line}\n" for line in body.strip("\n").splitlines())
    return ex.run(probe("docker/probe", expected), program)


@functools.lru_cache(maxsize=1)
def client():  # noqa: ANN201 - docker.DockerClient, imported lazily
    """One SDK client for the tests (its pooled connection stays open: fd counts stay comparable)."""
    import docker

    return docker.from_env()


@pytest.fixture(scope="module")
def dex() -> Iterator[codegym.Executor]:
    """One Docker executor for the module: containers start once."""
    if not AVAILABLE:
        pytest.skip(f"docker unavailable: {REASON}")
    ex = codegym.Executor(backend="docker", workers=2, timeout_s=2.0, memory_mb=256, cache=False)
    try:
        yield ex
    finally:
        ex.close()


# ---------------------------------------------------------------------------------------------- set-up


def test_docker_is_available_on_ci() -> None:
    """On CI the Docker tests must really run: a broken engine or image fails here with the reason."""
    if not on_ci():
        pytest.skip("only checked on CI (CI=true)")
    assert AVAILABLE, f"CI must run the Docker tests, but: {REASON} (see /tmp/codegym-services/status.txt)"


@pytest.mark.docker
@needs_docker
def test_missing_image_names_the_image_and_the_fix() -> None:
    ok, reason = docker_available("codegym-no-such-image:0")
    assert ok is False
    assert "codegym-no-such-image:0" in reason
    assert "build_sandbox_image.sh" in reason


def test_unreachable_engine_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    require("docker", "docker")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/codegym-docker.sock")
    ok, reason = docker_available()
    assert ok is False
    assert "ci_services.sh" in reason


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"container_memory_mb": 1}, "container_memory_mb"),
        ({"pids_limit": 0}, "pids_limit"),
        ({"tmpfs_mb": True}, "tmpfs_mb"),
        ({"cpus": -1.0}, "cpus"),
        ({"workers": 0}, "workers"),
    ],
)
def test_bad_settings_raise_value_error_naming_them(kwargs: dict[str, object], name: str) -> None:
    require("docker", "docker")
    with pytest.raises(ValueError, match=name):
        DockerBackend(**kwargs)  # type: ignore[arg-type]


def test_bootstrap_carries_the_zygote() -> None:
    import base64
    import zlib

    from codegym.execution.backend import ZYGOTE_PATH

    code = zygote_bootstrap()
    packed = code.split("b64decode('", 1)[1].split("'", 1)[0]
    with open(ZYGOTE_PATH, "rb") as f:
        assert zlib.decompress(base64.b64decode(packed)) == f.read()


# ---------------------------------------------------------------------------------------------- containers


@pytest.mark.docker
@needs_docker
def test_containers_are_locked_down(dex: codegym.Executor) -> None:
    assert run_probe(dex, "return 1", 1).passed
    backend = dex.backend
    assert isinstance(backend, DockerBackend)
    ids = backend.container_ids()
    assert len(ids) == 2 and all(ids)
    docker_client = client()
    for cid in ids:
        attrs = docker_client.containers.get(cid).attrs
        host = attrs["HostConfig"]
        assert host["NetworkMode"] == "none"
        assert host["ReadonlyRootfs"] is True
        assert host["Memory"] == 1024 * 1024 * 1024
        assert host["MemorySwap"] == 1024 * 1024 * 1024
        assert host["PidsLimit"] == 256
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges" in host["SecurityOpt"]
        assert set(host["Tmpfs"]) == {"/sandbox", "/tmp"}
        assert attrs["Config"]["Labels"][LABEL] == "1"
    features = backend.features()
    assert features["network"] == "none" and features["read_only_root"] is True
    assert features["uid"] in backend.sandbox_uids()


@pytest.mark.docker
@needs_docker
def test_containers_are_reused_across_runs_and_batches(dex: codegym.Executor) -> None:
    backend = dex.backend
    assert isinstance(backend, DockerBackend)
    dex.run(ADD, ADD.reference)
    ids = backend.container_ids()
    replaced = backend.replaced
    results = dex.run_batch([(ADD, ADD.reference)] * 12 + [(ADD, "def add(a, b):\n    return a * b\n")] * 4)
    assert [r.status for r in results] == ["passed"] * 12 + ["failed"] * 4
    assert backend.container_ids() == ids
    assert backend.replaced == replaced
    running = client().containers.list(filters={"label": LABEL, "id": ids[0]})
    assert [c.id for c in running] == [ids[0]]


@pytest.mark.docker
@needs_docker
def test_no_network_inside(dex: codegym.Executor) -> None:
    # Only a loopback interface exists, and no address outside can be reached.
    assert run_probe(dex, "import os\nreturn sorted(os.listdir('/sys/class/net'))", ["lo"]).passed
    body = """
import socket
out = []
for host in ('1.1.1.1', '10.0.0.1', '172.17.0.1'):
    try:
        socket.create_connection((host, 53), timeout=1).close()
        out.append('connected')
    except OSError as exc:
        out.append(type(exc).__name__)
return out
"""
    result = run_probe(dex, body, ["OSError", "OSError", "OSError"])
    assert result.passed, result.feedback


@pytest.mark.docker
@needs_docker
def test_root_file_system_is_read_only(dex: codegym.Executor) -> None:
    # As the sandbox uid: the root file system is read-only, and the work root belongs to root.
    body = """
import errno, os
out = []
for path in ('/etc/codegym-x', '/usr/codegym-x', '/codegym-x', '/sandbox/codegym-x'):
    try:
        open(path, 'w').close()
        out.append('written')
    except OSError as exc:
        out.append(errno.errorcode[exc.errno])
open('mine.txt', 'w').write('ok')
out.append(open('mine.txt').read())
return out
"""
    result = run_probe(dex, body, ["EROFS", "EROFS", "EROFS", "EACCES", "ok"])
    assert result.passed, result.feedback
    # Even root in the container cannot write the root file system.
    backend = dex.backend
    assert isinstance(backend, DockerBackend)
    container = client().containers.get(backend.container_ids()[0])
    code, out = container.exec_run(["touch", "/etc/codegym-x"])
    assert code != 0 and b"Read-only file system" in out


@pytest.mark.docker
@needs_docker
def test_environment_is_the_containers_only(dex: codegym.Executor) -> None:
    os.environ["CODEGYM_DOCKER_SECRET"] = "s3cret-docker"
    try:
        body = """
import os
env = {}
for pid in os.listdir('/proc'):
    if pid.isdigit():
        try:
            env[pid] = open('/proc/%s/environ' % pid, 'rb').read().decode(errors='replace')
        except OSError:
            pass
return any('s3cret-docker' in text for text in env.values()) or 's3cret-docker' in str(os.environ)
"""
        assert run_probe(dex, body, False).passed
    finally:
        del os.environ["CODEGYM_DOCKER_SECRET"]


@pytest.mark.docker
@needs_docker
def test_memory_limit_of_a_run_holds(dex: codegym.Executor) -> None:
    result = run_probe(dex, "x = b'x' * (600 * 1024 * 1024)\nreturn len(x)", 600 * 1024 * 1024)
    assert result.status == "memory_limit", (result.status, result.feedback)
    assert run_probe(dex, "return 2", 2).passed


@pytest.mark.docker
@needs_docker
def test_a_run_killed_by_the_containers_oom_killer_is_memory_limit() -> None:
    # Each process stays under the per-run address-space limit, but together they exceed the container:
    # its memory cgroup kills the biggest, the run's main process. That is the run's memory, not a crash.
    with codegym.Executor(
        backend="docker", workers=1, timeout_s=10.0, memory_mb=230, max_procs=16, cache=False,
        container_memory_mb=256,
    ) as ex:  # fmt: skip
        # The container gets memory_mb plus the zygote's headroom: 230 + 256 MB. The main process takes
        # 220 MB first; then each of three children takes 150 MB: the main process is the biggest.
        body = """
import os, time
for _ in range(3):
    if os.fork() == 0:
        time.sleep(1)
        small = b'y' * (150 * 1024 * 1024)
        time.sleep(5)
        os._exit(0)
big = b'x' * (220 * 1024 * 1024)
time.sleep(6)
return 0
"""
        result = run_probe(ex, body, 0)
        assert result.status == "memory_limit", (result.status, result.feedback)
        assert run_probe(ex, "return 2", 2).passed


@pytest.mark.docker
@needs_docker
def test_container_memory_limit_holds_for_many_processes() -> None:
    # Each process stays under the per-run address-space limit (RLIMIT_AS), but together they exceed the
    # container's memory: the container's cgroup kills some of them, the sandbox survives.
    with codegym.Executor(
        backend="docker", workers=1, timeout_s=10.0, memory_mb=200, max_procs=16, cache=False,
        container_memory_mb=256,
    ) as ex:  # fmt: skip
        body = """
import os, time
kids = []
for _ in range(6):
    pid = os.fork()
    if pid == 0:
        block = b'y' * (150 * 1024 * 1024)
        time.sleep(1)
        os._exit(0)
    kids.append(pid)
return sorted({os.waitpid(pid, 0)[1] for pid in kids})
"""
        result = run_probe(ex, body, [0])
        assert result.status == "failed", (result.status, result.feedback)
        assert "got: [0, 9]" in result.feedback or "got: [9]" in result.feedback, result.feedback
        assert run_probe(ex, "return 3", 3).passed
        backend = ex.backend
        assert isinstance(backend, DockerBackend)
        assert backend.leftover_processes() == []


@pytest.mark.docker
@needs_docker
def test_container_pids_limit_holds() -> None:
    with codegym.Executor(backend="docker", workers=1, cache=False, pids_limit=40) as ex:
        assert ex.run(ADD, ADD.reference).passed
        backend = ex.backend
        assert isinstance(backend, DockerBackend)
        container = client().containers.get(backend.container_ids()[0])
        assert container.attrs["HostConfig"]["PidsLimit"] == 40
        # As root in the container (not limited by the per-run RLIMIT_NPROC), threads stop at the limit.
        spawn = (
            "import threading, time\nn = 0\ntry:\n"
            "    while n < 1000:\n"
            "        threading.Thread(target=time.sleep, args=(3,), daemon=True).start()\n        n += 1\n"
            "except RuntimeError:\n    pass\nprint(n)\n"
        )
        code, out = container.exec_run(["python3", "-c", spawn])
        assert code == 0, out
        assert 0 < int(out.decode().split()[-1]) < 40
        time.sleep(3.5)  # the threads end
        assert ex.run(ADD, ADD.reference).passed


@pytest.mark.docker
@needs_docker
def test_fork_bomb_leaves_nothing(dex: codegym.Executor) -> None:
    program = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result = dex.run(ADD, program)
    assert result.status in ("timeout", "runtime_error"), result.status
    backend = dex.backend
    assert isinstance(backend, DockerBackend)
    assert backend.leftover_processes() == []
    assert backend.leftover_workdirs() == []
    assert dex.run(ADD, ADD.reference).passed


# ---------------------------------------------------------------------------------------------- crashes


def _wait_for_exit(backend: DockerBackend, slot: int, seconds: float = 10.0) -> None:
    zygote = backend._zygotes[slot]
    deadline = time.monotonic() + seconds
    while zygote is not None and zygote.alive() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.docker
@needs_docker
def test_a_crashed_container_is_replaced() -> None:
    with codegym.Executor(backend="docker", workers=1, cache=False) as ex:
        backend = ex.backend
        assert isinstance(backend, DockerBackend)
        assert ex.run(ADD, ADD.reference).passed
        (old,) = backend.container_ids()
        assert old is not None
        client().containers.get(old).kill()
        _wait_for_exit(backend, 0)
        assert ex.run(ADD, ADD.reference).passed
        (new,) = backend.container_ids()
        assert new is not None and new != old
        assert backend.replaced == 1
        import docker.errors

        with pytest.raises(docker.errors.NotFound):
            client().containers.get(old)


@pytest.mark.docker
@needs_docker
def test_a_container_killed_during_a_run_gives_sandbox_error_then_recovers() -> None:
    with codegym.Executor(backend="docker", workers=1, timeout_s=10.0, cache=False) as ex:
        backend = ex.backend
        assert isinstance(backend, DockerBackend)
        assert ex.run(ADD, ADD.reference).passed
        (cid,) = backend.container_ids()
        killer = threading.Timer(1.0, lambda: client().containers.get(cid).kill())
        killer.start()
        try:
            result = ex.run(ADD, "import time\ntime.sleep(8)\n" + ADD.reference)
        finally:
            killer.join()
        assert result.status == "sandbox_error", (result.status, result.feedback)
        assert ex.run(ADD, ADD.reference).passed
        assert backend.container_ids() != [cid]


# ---------------------------------------------------------------------------------------------- lifecycle


@pytest.mark.docker
@needs_docker
def test_close_removes_the_containers() -> None:
    ex = codegym.Executor(backend="docker", workers=2, cache=False)
    assert ex.run_batch([(ADD, ADD.reference)] * 4)[3].passed
    backend = ex.backend
    assert isinstance(backend, DockerBackend)
    ids = backend.container_ids()
    ex.close()
    remaining = {c.id for c in client().containers.list(all=True, filters={"label": LABEL})}
    assert not remaining & set(ids)


@pytest.mark.docker
@needs_docker
def test_stale_containers_of_dead_owners_are_removed() -> None:
    import socket

    docker_client = client()
    stale = docker_client.containers.run(
        "codegym-sandbox:latest",
        ["sleep", "infinity"],
        detach=True,
        network_mode="none",
        labels={LABEL: "1", "codegym.owner": f"{socket.gethostname()}:999999999"},
    )
    alive = docker_client.containers.run(
        "codegym-sandbox:latest",
        ["sleep", "infinity"],
        detach=True,
        network_mode="none",
        labels={LABEL: "1", "codegym.owner": f"{socket.gethostname()}:{os.getpid()}"},
    )
    try:
        assert remove_stale_containers() >= 1
        ids = {c.id for c in docker_client.containers.list(all=True, filters={"label": LABEL})}
        assert stale.id not in ids
        assert alive.id in ids
    finally:
        alive.remove(force=True)
        try:
            stale.remove(force=True)
        except Exception:
            pass


@pytest.mark.docker
@needs_docker
def test_bad_image_is_a_clear_error() -> None:
    with pytest.raises(SandboxError, match="codegym-no-such-image:0"):
        DockerBackend(workers=1, image="codegym-no-such-image:0")


# ---------------------------------------------------------------------------------------------- verdicts


def _programs() -> list[tuple[Task, str]]:
    """References of every built-in suite (a slice of each) and mechanical mutants of them."""
    pairs: list[tuple[Task, str]] = []
    for name, count in (("basic", 25), ("humaneval", 25), ("apps", 6), ("mbpp", 9), ("arith", 5)):
        for task in list(codegym.load_suite(name))[:count]:
            pairs.append((task, task.reference))
            if any(isinstance(t, StdioTest) for t in task.tests):
                pairs.append((task, "print('wrong')\n"))
            else:
                pairs.append((task, task.reference + f"\n{task.entry_point} = lambda *a, **k: None\n"))
            pairs.append((task, task.reference + "\nraise ValueError('mutant')\n"))
            pairs.append((task, task.reference + "\ndef broken(:\n"))
    return pairs


@pytest.mark.docker
@needs_docker
def test_verdicts_identical_to_local(dex: codegym.Executor) -> None:
    pairs = _programs()
    docker_results = dex.run_batch(pairs)
    with codegym.Executor(backend="local", workers=2, timeout_s=2.0, memory_mb=256, cache=False) as local:
        local_results = local.run_batch(pairs)
    statuses = [r.status for r in local_results]
    assert statuses.count("passed") == len(pairs) // 4  # every reference passes, no mutant does
    assert {"failed", "runtime_error", "syntax_error"} <= set(statuses)
    differences = [
        (task.task_id, got.status, want.status, got.feedback[:80], want.feedback[:80])
        for (task, _), got, want in zip(pairs, docker_results, local_results)
        if got != want
    ]
    assert differences == []


@pytest.mark.docker
@needs_docker
def test_an_image_without_python_gives_a_clear_sandbox_error() -> None:
    with codegym.Executor(backend="docker", workers=1, python="python-missing", cache=False) as ex:
        result = ex.run(ADD, ADD.reference)
    assert result.status == "sandbox_error"
    assert "has no usable python-missing" in result.feedback


@pytest.mark.docker
@needs_docker
def test_a_forked_process_gets_its_own_containers_and_leaves_the_parents() -> None:
    import json

    with codegym.Executor(backend="docker", workers=1, cache=False) as ex:
        backend = ex.backend
        assert isinstance(backend, DockerBackend)
        assert ex.run(ADD, ADD.reference).passed
        parent_ids = backend.container_ids()
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its own container, closed without touching the parent's
            try:
                status = ex.run(ADD, ADD.reference).status
                os.write(write_fd, json.dumps([status, backend.container_ids()]).encode())
                ex.close()
            finally:
                os._exit(0)
        os.close(write_fd)
        os.waitpid(pid, 0)
        status, child_ids = json.loads(os.read(read_fd, 65536).decode())
        os.close(read_fd)
        assert status == "passed"
        assert child_ids != parent_ids
        assert ex.run(ADD, ADD.reference).passed
        assert backend.container_ids() == parent_ids
        assert client().containers.get(parent_ids[0]).status == "running"


@pytest.mark.docker
@needs_docker
def test_container_memory_is_raised_live_for_a_larger_memory_limit() -> None:
    backend = DockerBackend(workers=1)
    small = codegym.Executor(backend=backend, memory_mb=256, cache=False)
    large = codegym.Executor(backend=backend, memory_mb=1500, cache=False)
    try:
        assert small.run(ADD, ADD.reference).passed
        (cid,) = backend.container_ids()
        assert backend.container_memory_mb == 1024
        result = run_probe(large, "x = b'x' * (1200 * 1024 * 1024)\nreturn len(x) // 2**20", 1200)
        assert result.passed, (result.status, result.feedback)
        assert backend.container_ids() == [cid]  # the same container, updated in place
        assert backend.container_memory_mb == 1500 + 256
        assert client().containers.get(cid).attrs["HostConfig"]["Memory"] == (1500 + 256) << 20
        assert run_probe(small, "x = b'x' * (400 * 1024 * 1024)\nreturn 0", 0).status == "memory_limit"
    finally:
        small.close()


def _my_containers() -> set[str]:
    """Ids of the sandbox containers that this test process made (any backend, e.g. module fixtures)."""
    name = f"codegym-sandbox-{os.getpid()}-"
    return {c.id for c in client().containers.list(all=True, filters={"label": LABEL, "name": name})}


@pytest.mark.slow
@pytest.mark.docker
@needs_docker
def test_thousands_of_runs_leak_nothing_in_containers_or_parent() -> None:
    psutil = require("psutil", "dev")
    from test_executor_leaks import EXPECTED, PROGRAMS  # the local leak test's mix of outcomes

    with codegym.Executor(backend="docker", workers=2, cache=False, timeout_s=5.0) as ex:
        backend = ex.backend
        assert isinstance(backend, DockerBackend)
        ex.run_batch([(t, p.format(i=-1)) for t, p in PROGRAMS])  # start the pool
        ids = backend.container_ids()
        containers_before = _my_containers()
        assert set(ids) <= containers_before
        me = psutil.Process()
        fds_before = me.num_fds()
        children_before = sorted(p.pid for p in me.children())
        total, batch = 3_000, 500
        for start in range(0, total, batch):
            pairs = [PROGRAMS[i % len(PROGRAMS)] for i in range(start, start + batch)]
            results = ex.run_batch([(t, p.format(i=start + k)) for k, (t, p) in enumerate(pairs)])
            expected = [EXPECTED[i % len(PROGRAMS)] for i in range(start, start + batch)]
            assert [r.status for r in results] == expected
        # Before the checks below, which open the SDK's own (pooled) connections to the engine.
        assert me.num_fds() == fds_before
        assert sorted(p.pid for p in me.children()) == children_before  # the same docker exec clients
        assert backend.container_ids() == ids
        assert backend.replaced == 0 and backend.restarts == 0
        assert backend.leftover_processes() == []
        assert backend.leftover_workdirs() == []
        assert _my_containers() == containers_before  # none replaced, none added


def test_unknown_transport_is_a_value_error() -> None:
    require("docker", "docker")
    with pytest.raises(ValueError, match="transport"):
        DockerBackend(transport="ssh")


@pytest.mark.docker
@needs_docker
def test_sdk_transport_gives_the_same_verdicts_and_survives_a_crash(dex: codegym.Executor) -> None:
    pairs = _programs()[::3]
    with codegym.Executor(
        backend="docker", transport="sdk", workers=2, timeout_s=2.0, memory_mb=256, cache=False
    ) as sdk:
        backend = sdk.backend
        assert isinstance(backend, DockerBackend) and backend.transport == "sdk"
        assert sdk.run_batch(pairs) == dex.run_batch(pairs)
        old = backend.container_ids()[0]
        assert old is not None
        client().containers.get(old).kill()
        _wait_for_exit(backend, 0)
        assert sdk.run_batch([(ADD, ADD.reference)] * 4)[0].passed
        assert backend.container_ids()[0] != old and backend.replaced == 1
        assert backend.leftover_processes() == []
