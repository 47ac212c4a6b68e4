"""The Ray backend: zygote pools inside Ray actors on a real local Ray cluster (started once per module)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import on_ci, require

import codegym
from codegym import CallTest, Task
from codegym.execution.ray_backend import RayBackend, ray_available

AVAILABLE, REASON = ray_available()
# Skipped where Ray is missing, but not on CI: there a missing Ray fails these tests instead.
pytestmark = [pytest.mark.ray, pytest.mark.skipif(not AVAILABLE and not on_ci(), reason=REASON)]

ADD = Task(
    task_id="ray/add",
    prompt="def add(a, b):\n",
    entry_point="add",
    reference="def add(a, b):\n    return a + b\n",
    tests=(CallTest((1, 2), 3), CallTest((10, -4), 6)),
)
WRONG = "def add(a, b):\n    return a - b\n"


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A real local Ray cluster with 2 CPUs for the whole module (starting Ray takes seconds)."""
    import ray

    started = False
    if not ray.is_initialized():
        # address="local": always a new cluster. Without it ray.init joins whatever $RAY_ADDRESS or a
        # leftover /tmp/ray/ray_current_cluster (written by any earlier `ray start`) names, and then
        # refuses num_cpus ("When connecting to an existing cluster, num_cpus ... must not be provided").
        ray.init(
            address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False
        )
        started = True
    try:
        yield
    finally:
        if started:
            ray.shutdown()


@pytest.fixture(scope="module")
def rex(ray_cluster: None) -> Iterator[codegym.Executor]:
    # It reserves both CPUs of the cluster: the other tests' backends pass reserve_cpus=False.
    ex = codegym.Executor(backend="ray", timeout_s=2.0, memory_mb=256, cache=False)
    try:
        yield ex
    finally:
        ex.close()


def _pairs() -> list[tuple[Task, str]]:
    pairs: list[tuple[Task, str]] = []
    for name, count in (("basic", 20), ("humaneval", 10), ("apps", 3), ("mbpp", 5)):
        for i, task in enumerate(list(codegym.load_suite(name))[:count]):
            pairs.append((task, task.reference))
            pairs.append((task, task.reference + "\nraise ValueError('mutant')\n"))
            pairs.append((task, "while True:\n    pass\n" if i == 1 and name == "basic" else "x = (\n"))
    return pairs


def test_uses_the_running_cluster_and_one_actor_per_node(rex: codegym.Executor) -> None:
    backend = rex.backend
    assert isinstance(backend, RayBackend)
    assert backend.started_ray is False  # the fixture's cluster was joined, not a new one started
    features = backend.features()
    assert features["backend"] == "ray"
    assert features["placement"] == "node"
    assert features["actors"] == 1 and features["zygotes_per_actor"] == [2]
    assert backend.workers == 2
    assert features["actor_pid"] != os.getpid()  # the zygotes run in the actor process, not here


def test_verdicts_identical_to_local(rex: codegym.Executor) -> None:
    pairs = _pairs()
    ray_results = rex.run_batch(pairs)
    with codegym.Executor(backend="local", workers=2, timeout_s=2.0, memory_mb=256, cache=False) as local:
        local_results = local.run_batch(pairs)
    statuses = [r.status for r in local_results]
    assert statuses.count("passed") == len(pairs) // 3
    assert {"runtime_error", "syntax_error", "timeout"} <= set(statuses)
    differences = [
        (task.task_id, got.status, want.status)
        for (task, _), got, want in zip(pairs, ray_results, local_results)
        if got != want
    ]
    assert differences == []


def test_results_in_input_order(rex: codegym.Executor) -> None:
    programs = [ADD.reference if i % 3 else WRONG for i in range(50)]
    results = rex.run_batch([(ADD, p) for p in programs])
    assert [r.status for r in results] == ["passed" if i % 3 else "failed" for i in range(50)]


def test_cpu_placement_spreads_one_zygote_per_actor(ray_cluster: None) -> None:
    with codegym.Executor(backend="ray", placement="cpu", reserve_cpus=False, cache=False) as ex:
        backend = ex.backend
        assert isinstance(backend, RayBackend)
        pids = backend.actor_pids()
        assert len(pids) == 2 and len(set(pids)) == 2
        results = ex.run_batch([(ADD, ADD.reference)] * 10 + [(ADD, WRONG)] * 2)
        assert [r.status for r in results] == ["passed"] * 10 + ["failed"] * 2


def test_a_dead_actor_fails_only_its_jobs_and_is_replaced(ray_cluster: None) -> None:
    import ray

    small = {"workers": 1, "reserve_cpus": False, "actor_timeout_s": 60, "cache": False}
    with codegym.Executor(backend="ray", **small) as ex:
        backend = ex.backend
        assert isinstance(backend, RayBackend)
        assert ex.run(ADD, ADD.reference).passed
        (old_pid,) = backend.actor_pids()
        ray.kill(backend._actors[0], no_restart=True)
        # ray.kill only asks for the kill: a call sent before the actor's process is gone can still
        # run there and pass. Wait until it is gone, so that the next run meets a dead actor.
        assert _wait_until_gone(old_pid, timeout_s=30), f"actor process {old_pid} still alive after 30 s"
        result = ex.run(ADD, ADD.reference)
        assert result.status == "sandbox_error", result.status
        assert backend.actor_failures == 1
        assert ex.run(ADD, ADD.reference).passed
        assert backend.actor_pids() != [old_pid]


def _wait_until_gone(pid: int, timeout_s: float) -> bool:
    """Whether process ``pid`` has exited (or is a zombie) within ``timeout_s`` seconds."""
    psutil = require("psutil", "dev")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_close_kills_the_actors_and_their_zygotes(ray_cluster: None) -> None:
    psutil = require("psutil", "dev")
    ex = codegym.Executor(backend="ray", workers=1, reserve_cpus=False, actor_timeout_s=60, cache=False)
    assert ex.run(ADD, ADD.reference).passed
    backend = ex.backend
    assert isinstance(backend, RayBackend)
    zygote_pids = [h["pid"] for h in _hellos(backend)]
    assert zygote_pids
    ex.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(psutil.pid_exists(p) for p in zygote_pids):
        time.sleep(0.1)
    assert [p for p in zygote_pids if psutil.pid_exists(p)] == []


def _hellos(backend: RayBackend) -> list[dict[str, object]]:
    import ray

    return [h for a in backend._actors for h in ray.get(a.hellos.remote())]


def test_bad_arguments_are_value_errors(ray_cluster: None) -> None:
    with pytest.raises(ValueError, match="placement"):
        RayBackend(placement="everywhere")
    with pytest.raises(ValueError, match="workers"):
        RayBackend(workers=0)


MULTI_NODE_SCRIPT = """
import json
import ray
from ray.cluster_utils import Cluster
import codegym
from codegym import CallTest, Task

ADD = Task(task_id="x", prompt="", entry_point="add", reference="def add(a, b):\\n    return a + b\\n",
           tests=(CallTest((1, 2), 3),))
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
worker = cluster.add_node(num_cpus=1)
ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
cluster.wait_for_nodes()
out = {}
for reserve in (True, False):
    if not reserve:
        worker = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
    # actor_timeout_s bounds the actors' start (5 s was too short on a loaded machine) and is how long
    # the lost node's chunk is waited for before its actor is given up (so not much longer).
    with codegym.Executor(backend="ray", cache=False, reserve_cpus=reserve, actor_timeout_s=15) as ex:
        f = ex.backend.features()
        r = out[str(reserve)] = {"actors": f["actors"], "nodes": len(f["nodes"])}
        r["first"] = sorted({x.status for x in ex.run_batch([(ADD, ADD.reference)] * 20)})
        cluster.remove_node(worker)
        r["during"] = sorted({x.status for x in ex.run_batch([(ADD, ADD.reference)] * 20)})
        r["after"] = sorted({x.status for x in ex.run_batch([(ADD, ADD.reference)] * 20)})
        r["actors_after"] = ex.backend.features()["actors"]
print("RESULT " + json.dumps(out))
ray.shutdown()
cluster.shutdown()
"""


@pytest.mark.slow
def test_two_nodes_one_actor_each_and_a_lost_node() -> None:
    """A real two-node cluster (ray.cluster_utils, in a subprocess: this process is already a driver)."""
    import json
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", MULTI_NODE_SCRIPT], capture_output=True, text=True, timeout=300
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, proc.stderr[-2000:]
    out = json.loads(lines[-1][len("RESULT ") :])
    for reserve in ("True", "False"):
        got = out[reserve]
        assert got["actors"] == 2 and got["nodes"] == 2  # one actor pinned to each node
        assert got["first"] == ["passed"]
        assert got["during"] == ["passed", "sandbox_error"]  # the lost node's jobs fail, the others pass
        assert got["after"] == ["passed"]
    # With both CPUs reserved the lost node's actor cannot be replaced: the backend runs on one.
    assert out["True"]["actors_after"] == 1
    # Without reservations the replacement is placed on the remaining node.
    assert out["False"]["actors_after"] == 2


def _free_port() -> int:
    """A port that was free a moment ago: nothing listens on it."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_address_where_no_cluster_runs_fails_fast_and_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from codegym.execution.backend import SandboxError
    from codegym.execution.ray_backend import check_reachable

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # Ray's address file goes there: none
    port = _free_port()
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):  # ray.init would wait without end
        with pytest.raises(SandboxError, match=f"ray_address='{address}'"):
            check_reachable(address, timeout_s=2.0)
    for address in (None, "auto", "local"):
        check_reachable(address)  # no address implied: left to Ray


def test_an_implied_address_where_no_cluster_runs_fails_fast_and_says_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """ray.init() joins $RAY_ADDRESS or the last `ray start`'s address file; a dead one is named."""
    from codegym.execution.backend import SandboxError
    from codegym.execution.ray_backend import check_reachable, implied_address

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    stale = f"127.0.0.1:{_free_port()}"
    address_file = tmp_path / "ray" / "ray_current_cluster"
    address_file.parent.mkdir()
    address_file.write_text(stale + "\n")
    assert implied_address(None) == (stale, f"{address_file} (written by the last `ray start`)")
    assert implied_address("auto") is not None and implied_address("local") is None
    for address in (None, "auto"):
        with pytest.raises(SandboxError, match=f"'{stale}' from {address_file}.*ray_address='local'"):
            check_reachable(address, timeout_s=2.0)
    check_reachable("local")  # a new local cluster: nothing to check

    env_address = f"127.0.0.1:{_free_port()}"
    monkeypatch.setenv("RAY_ADDRESS", env_address)  # Ray prefers it to the file
    assert implied_address(None) == (env_address, "$RAY_ADDRESS")
    with pytest.raises(SandboxError, match=r"from \$RAY_ADDRESS"):
        check_reachable(None, timeout_s=2.0)


STALE_FILE_SCRIPT = """
import time
import codegym
from codegym.execution.backend import SandboxError

start = time.monotonic()
try:
    codegym.Executor(backend="ray")
except SandboxError as exc:
    print("RESULT", round(time.monotonic() - start, 1), exc)
"""


@pytest.mark.slow
def test_executor_with_a_stale_ray_address_file_fails_in_seconds(tmp_path: Path) -> None:
    """The user's case: a `ray start` cluster is gone but its address file is left (ray.init hung)."""
    import subprocess
    import sys

    address_file = tmp_path / "ray" / "ray_current_cluster"
    address_file.parent.mkdir()
    address_file.write_text(f"127.0.0.1:{_free_port()}")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["TMPDIR"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", STALE_FILE_SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT")]
    assert lines, f"no SandboxError raised:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    _, seconds, message = lines[0].split(" ", 2)
    assert float(seconds) < 30, lines[0]
    assert str(address_file) in message and "ray_address='local'" in message
