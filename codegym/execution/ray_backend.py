"""The Ray backend: the local backend's zygotes on every node of a Ray cluster.

Each Ray actor owns a :class:`~codegym.execution.backend.LocalBackend` (a pool of zygotes started with
the actor's interpreter, with the same containment as on the trainer's machine: namespaces, cgroups,
rlimits, an unprivileged uid). The parent splits a batch into chunks, keeps every actor busy with up to
two chunks in flight, and judges the raw replies itself, exactly as for the local backend: expected
values never leave the trainer's process.

Placement (``placement=``):

* ``"node"`` (default): one actor per alive node with CPUs, pinned to it, running as many zygotes as its
  share of ``workers`` (by default every CPU of the cluster).
* ``"cpu"``: one actor per worker, one zygote each, spread over the cluster by Ray.

Typical use::

    with codegym.Executor(backend="ray", ray_address="auto") as ex:   # an existing cluster
        results = ex.run_batch(pairs)

``ray_address=None`` joins the cluster this process is already connected to, else starts (or finds, via
``$RAY_ADDRESS`` or the address file of the last ``ray start``) one, like ``ray.init()``; an address
found that way where no cluster answers is an error within seconds (``ray.init`` would wait for it
without end), and ``ray_address="local"`` always starts a new local cluster. Every node needs CodeGym
installed in the interpreter that Ray runs its workers with. See ``docs/backends.md``.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from codegym.execution.backend import (
    Job,
    LocalBackend,
    RawReply,
    ReplyCallback,
    SandboxError,
    job_deadline_s,
)

_INFLIGHT_PER_ACTOR = 2
_PLACEMENTS = ("node", "cpu")


def ray_available() -> tuple[bool, str]:
    """Whether Ray can be imported: ``(True, "")`` or ``(False, reason)`` with the install command."""
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        return False, f"ray is not importable ({exc}); pip install 'codegym[ray]'"
    return True, ""


def implied_address(address: str | None) -> tuple[str, str] | None:
    """The cluster that ``ray.init(address=address)`` would join, and where it found it, if it says.

    For ``None`` and ``"auto"`` Ray takes ``$RAY_ADDRESS``, else the address that the last ``ray start``
    (or a ``ray.cluster_utils.Cluster``) wrote to ``<temp dir>/ray/ray_current_cluster``; a file left by
    a cluster that is gone makes ``ray.init()`` wait for it without end. ``None`` when Ray would start
    a new local cluster (or, for ``"auto"``, look for running ones), or for any other ``address``.
    """
    if address not in (None, "auto"):
        return None
    from_env = os.environ.get("RAY_ADDRESS")
    if from_env:
        return from_env, "$RAY_ADDRESS"
    try:  # Ray's own lookup of the file (its location follows $TMPDIR); a private name, so guarded
        try:
            from ray._common.utils import get_ray_address_file
        except ImportError:  # older Ray releases kept it in ray._private.utils
            from ray._private.utils import get_ray_address_file

        path = get_ray_address_file(None)
        with open(path) as f:
            found = f.read().strip()
    except Exception:  # noqa: BLE001 - no file, or another Ray version: leave it to ray.init
        return None
    return (found, f"{path} (written by the last `ray start`)") if found else None


def check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Raise :class:`SandboxError` if the cluster that ``address`` leads to does not answer.

    ``ray.init`` waits without end for an address where no cluster runs; this check fails in seconds
    instead, naming the address and where it came from: ``address`` itself, or for ``None`` and
    ``"auto"`` the address Ray would take from ``$RAY_ADDRESS`` or a ``ray start``'s address file
    (:func:`implied_address`). ``"local"``, and anything that is not ``host:port``, are left to Ray.
    """
    source = "ray_address"
    implied = implied_address(address)
    if implied is not None:
        address, source = implied
    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return  # not host:port: let Ray explain
    import socket

    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        where = f"ray_address={address!r}" if implied is None else f"{address!r} from {source}"
        hint = "" if implied is None else "; ray_address='local' starts a new local cluster instead"
        raise SandboxError(
            f"cannot reach Ray at {where}: {type(exc).__name__}: {exc} "
            f"(is a cluster running there? `ray start --head` starts one{hint})"
        ) from exc


class ZygoteActor:
    """The body of one Ray actor: a :class:`LocalBackend` with ``workers`` zygotes on its node.

    Args:
        workers: Zygotes of this actor (concurrent jobs on its node).
        backend_kwargs: Passed to :class:`LocalBackend` (e.g. ``isolate=False``).
    """

    def __init__(self, workers: int, backend_kwargs: dict[str, Any]) -> None:
        # Several actors may share a node: pinning each one's zygotes to the node's first cores would
        # stack them up, so the scheduler places them unless the caller asks otherwise.
        self.backend = LocalBackend(workers, **{"pin_cpus": False, **backend_kwargs})

    def run_jobs(self, jobs: list[Job]) -> list[RawReply]:
        """Run the jobs on this node's pool; raw replies in order."""
        return self.backend.run_jobs(jobs)

    def features(self) -> dict[str, Any]:
        """The local zygotes' features, with the node's address and the actor's pid."""
        import ray

        feats = self.backend.features()
        feats["node_ip"] = ray.util.get_node_ip_address()
        feats["actor_pid"] = os.getpid()
        return feats

    def hellos(self) -> list[dict[str, Any]]:
        """The hello frames of this actor's running zygotes (pid and features of each)."""
        return self.backend.hellos()

    def close(self) -> None:
        """Stop the zygotes."""
        self.backend.close()


class RayBackend:
    """Run jobs on zygote pools inside Ray actors; implements the executor's backend protocol.

    Args:
        workers: Total zygotes over the cluster (default: every CPU the cluster reports).
        ray_address: ``None`` (join the current connection, or ``ray.init()`` one: ``$RAY_ADDRESS``,
            the last ``ray start``'s cluster, or a new local cluster), ``"auto"`` (an existing cluster
            on this machine's network), ``"local"`` (always a new local cluster), or an address such as
            ``"ray://head:10001"``. An address where nothing answers, given or found, is a
            :class:`SandboxError` within seconds.
        placement: ``"node"`` (one actor per node) or ``"cpu"`` (one actor per worker); see the module
            docstring.
        reserve_cpus: Reserve one Ray CPU per zygote, so that other Ray work does not share those cores.
            ``False`` reserves none (the zygotes then compete with other tasks).
        init_kwargs: More arguments for ``ray.init`` when this backend starts Ray (e.g.
            ``{"num_cpus": 2}``); ignored when Ray is already initialized.
        actor_timeout_s: How long to wait for the actors (and their zygotes) to start; also how long
            past its jobs' own time limits an actor call may take before the actor is killed, its
            jobs become ``sandbox_error`` and it is replaced (a lost node is often noticed only then).
        **local_kwargs: Passed to each actor's :class:`LocalBackend` (e.g. ``isolate=False``).

    Raises:
        ValueError: for an unknown placement or a bad ``workers`` (the message names the value).
        SandboxError: when no node with CPUs is alive, or the actors cannot start.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        ray_address: str | None = None,
        placement: str = "node",
        reserve_cpus: bool = True,
        init_kwargs: dict[str, Any] | None = None,
        actor_timeout_s: float = 120.0,
        **local_kwargs: Any,
    ) -> None:
        if placement not in _PLACEMENTS:
            raise ValueError(f"placement must be one of {_PLACEMENTS}, got {placement!r}")
        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 4096
        ):
            raise ValueError(f"workers must be an int in [1, 4096], got {workers!r}")
        ok, why = ray_available()
        if not ok:
            raise SandboxError(why)
        import ray

        self.started_ray = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            kwargs.update(init_kwargs or {})
            check_reachable(ray_address)
            try:
                ray.init(address=ray_address, **kwargs)
            except Exception as exc:  # ConnectionError, bad address, ...: say where it tried
                raise SandboxError(
                    f"cannot start or join Ray (ray_address={ray_address!r}): {type(exc).__name__}: "
                    f"{str(exc)[:300]}"
                ) from exc
            self.started_ray = True
        self.ray_address = ray_address
        self.placement = placement
        self.reserve_cpus = reserve_cpus
        self._local_kwargs = dict(local_kwargs)
        self._owner_pid = os.getpid()
        self._closed = False
        self.actor_timeout_s = float(actor_timeout_s)
        self.actor_failures = 0
        """How many actor calls failed (their jobs got ``error`` replies and the actor was replaced)."""
        nodes = _cpu_nodes()
        if not nodes:
            raise SandboxError("the Ray cluster has no alive node with CPUs")
        total_cpus = sum(cpus for _, cpus in nodes)
        self.workers = workers if workers is not None else max(1, int(total_cpus))
        self._specs = self._plan(nodes)
        self._actors: list[Any] = [self._start_actor(i) for i in range(len(self._specs))]
        try:
            # Also starts every actor's zygotes, so that the first batch does not pay for it.
            ray.get([a.features.remote() for a in self._actors], timeout=actor_timeout_s)
        except Exception as exc:
            self.close()
            hint = " (not enough free CPUs? try reserve_cpus=False)" if reserve_cpus else ""
            raise SandboxError(
                f"the Ray actors did not start within {actor_timeout_s:g} s{hint}: {type(exc).__name__}: "
                f"{str(exc)[:300]}"
            ) from exc

    # ------------------------------------------------------------------ actors

    def _plan(self, nodes: list[tuple[str, float]]) -> list[tuple[str | None, int]]:
        """(node id or None, zygotes) for each actor."""
        if self.placement == "cpu":
            return [(None, 1)] * self.workers
        # Share the workers over the nodes in proportion to their CPUs (largest remainders first).
        total = sum(cpus for _, cpus in nodes)
        exact = [self.workers * cpus / total for _, cpus in nodes]
        counts = [math.floor(x) for x in exact]
        order = sorted(range(len(nodes)), key=lambda i: exact[i] - counts[i], reverse=True)
        for i in order[: self.workers - sum(counts)]:
            counts[i] += 1
        return [(node_id, n) for (node_id, _), n in zip(nodes, counts) if n > 0]

    def _start_actor(self, index: int) -> Any:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        node_id, zygotes = self._specs[index]
        strategy: Any = "SPREAD" if node_id is None else NodeAffinitySchedulingStrategy(node_id, soft=False)
        actor_cls = ray.remote(ZygoteActor)
        return actor_cls.options(
            num_cpus=zygotes if self.reserve_cpus else 0,
            scheduling_strategy=strategy,
            max_restarts=0,
        ).remote(zygotes, self._local_kwargs)

    def _replace_actor(self, index: int) -> None:
        """Kill actor ``index`` and start another; drop the slot (``None``) if none can be placed."""
        import ray

        try:
            ray.kill(self._actors[index], no_restart=True)
        except Exception:
            pass  # already dead
        # The replacement is placed by Ray: pinning it to the old node could wait forever for a node
        # that is gone (Ray's view of dead nodes lags behind).
        self._specs[index] = (None, self._specs[index][1])
        actor = self._start_actor(index)
        try:
            ray.get(actor.features.remote(), timeout=self.actor_timeout_s)
        except Exception:
            # No room for it (e.g. its node is gone and the others' CPUs are reserved): run on fewer.
            try:
                ray.kill(actor, no_restart=True)
            except Exception:
                pass
            actor = None
        self._actors[index] = actor

    def _ensure_actors(self) -> None:
        """Drop slots whose actor could not be replaced; start afresh if none is left."""
        import ray

        keep = [i for i, a in enumerate(self._actors) if a is not None]
        self._actors = [self._actors[i] for i in keep]
        self._specs = [self._specs[i] for i in keep]
        if self._actors:
            return
        nodes = _cpu_nodes()
        if not nodes:
            raise SandboxError("the Ray cluster has no alive node with CPUs")
        self._specs = self._plan(nodes)
        self._actors = [self._start_actor(i) for i in range(len(self._specs))]
        try:
            ray.get([a.features.remote() for a in self._actors], timeout=self.actor_timeout_s)
        except Exception as exc:
            for actor in self._actors:
                ray.kill(actor, no_restart=True)
            self._actors, self._specs = [], []
            raise SandboxError(
                f"no Ray actor could be started: {type(exc).__name__}: {str(exc)[:300]}"
            ) from exc

    # ------------------------------------------------------------------ Backend protocol

    def run_jobs(self, jobs: Sequence[Job], on_reply: ReplyCallback | None = None) -> list[RawReply]:
        """Run the jobs on the actors (dynamic chunks, up to two in flight per actor); replies in order.

        ``on_reply(index, reply)`` is called for each job when its chunk comes back; the first exception
        it raises is raised when every job has its reply.

        A failed actor call (the actor or its node died, or it did not answer within its deadline) gives
        its jobs ``error`` replies, so that they end as ``sandbox_error``; the actor is replaced before
        the next chunk is sent to it.
        """
        import ray

        if self._closed:
            raise SandboxError("backend is closed")
        if os.getpid() != self._owner_pid:
            raise SandboxError("a RayBackend cannot be used from a forked process; make a new Executor")
        jobs = list(jobs)
        replies: list[RawReply | None] = [None] * len(jobs)
        errors: list[Exception] = []
        user_on_reply = on_reply

        def report(index: int, reply: RawReply) -> None:
            if user_on_reply is None:
                return
            try:
                user_on_reply(index, reply)
            except Exception as exc:  # raised after the batch
                errors.append(exc)

        on_reply = report
        if not jobs:
            return []
        try:
            self._ensure_actors()
        except SandboxError as exc:
            failed: list[RawReply] = [{"type": "error", "message": str(exc)} for _ in jobs]
            for i, reply in enumerate(failed):
                on_reply(i, reply)
            if errors:
                raise errors[0] from None
            return failed
        pending = deque(range(len(jobs)))
        total = sum(z for _, z in self._specs)
        inflight: dict[Any, tuple[int, list[int], float]] = {}
        load = [0] * len(self._actors)
        killed: set[int] = set()

        def submit(actor_index: int) -> None:
            zygotes = self._specs[actor_index][1]
            # Big enough to amortize a Ray call, small enough to balance: about 1/4 of a fair share.
            size = max(zygotes, math.ceil(len(pending) * zygotes / total / 4))
            chunk = [pending.popleft() for _ in range(min(size, len(pending)))]
            ref = self._actors[actor_index].run_jobs.remote([jobs[i] for i in chunk])
            # Even run one after another, the chunk and what is queued before it end by then.
            budget = sum(job_deadline_s(jobs[i]) for i in chunk) * _INFLIGHT_PER_ACTOR
            inflight[ref] = (actor_index, chunk, time.monotonic() + self.actor_timeout_s + budget)
            load[actor_index] += 1

        while pending or inflight:
            for a in range(len(self._actors)):
                while pending and load[a] < _INFLIGHT_PER_ACTOR and a not in killed and self._actors[a]:
                    submit(a)
            if not inflight:  # every actor is gone and none could be replaced
                message = "no Ray actor is left to run this job (see RayBackend.actor_failures)"
                while pending:
                    i = pending.popleft()
                    replies[i] = {"type": "error", "message": message}
                    if on_reply is not None:
                        on_reply(i, replies[i])  # type: ignore[arg-type]
                break
            wait_s = max(0.0, min(d for _, _, d in inflight.values()) - time.monotonic())
            done, _ = ray.wait(list(inflight), num_returns=1, timeout=wait_s)
            if not done:
                # A chunk is overdue: kill its actor; its calls then fail and are handled below.
                now = time.monotonic()
                for actor_index, _, deadline in list(inflight.values()):
                    if deadline <= now and actor_index not in killed:
                        killed.add(actor_index)
                        ray.kill(self._actors[actor_index], no_restart=True)
                continue
            for ref in done:
                actor_index, chunk, _ = inflight.pop(ref)
                load[actor_index] -= 1
                try:
                    got = ray.get(ref)
                    if len(got) != len(chunk):
                        raise SandboxError(f"actor returned {len(got)} replies for {len(chunk)} jobs")
                except Exception as exc:
                    self.actor_failures += 1
                    message = f"ray actor failed: {type(exc).__name__}: {str(exc)[:300]}"
                    got = [{"type": "error", "message": message}] * len(chunk)
                    killed.add(actor_index)
                if load[actor_index] == 0 and actor_index in killed:
                    self._replace_actor(actor_index)
                    killed.discard(actor_index)
                for i, reply in zip(chunk, got):
                    replies[i] = reply
                    if on_reply is not None:
                        on_reply(i, reply)
        out: list[RawReply] = []
        for i, r in enumerate(replies):
            if r is None:
                r = {"type": "error", "message": "no reply"}
                if on_reply is not None:
                    on_reply(i, r)
            out.append(r)
        if errors:
            raise errors[0]
        return out

    def features(self) -> dict[str, Any]:
        """The first actor's zygote features, plus the placement of every actor."""
        import ray

        self._ensure_actors()
        feats = dict(ray.get(self._actors[0].features.remote()))
        feats.update(
            {
                "backend": "ray",
                "placement": self.placement,
                "actors": len(self._actors),
                "zygotes_per_actor": [z for _, z in self._specs],
                "nodes": sorted({n for n, _ in self._specs if n is not None}),
                "node_ips": sorted({f["node_ip"] for f in self._actor_features()}),
            }
        )
        return feats

    def _actor_features(self) -> list[dict[str, Any]]:
        import ray

        return list(ray.get([a.features.remote() for a in self._actors if a is not None]))

    def actor_pids(self) -> list[int]:
        """The process id of each actor (for tests and diagnostics)."""
        return [f["actor_pid"] for f in self._actor_features()]

    def close(self) -> None:
        """Stop the zygotes, kill the actors, and shut Ray down if this backend started it."""
        if self._closed or os.getpid() != self._owner_pid:
            return
        self._closed = True
        import ray

        if not ray.is_initialized():
            return
        actors = [a for a in self._actors if a is not None]
        try:
            ray.get([a.close.remote() for a in actors], timeout=30)
        except Exception:
            pass  # a dead actor's zygotes died with it (PDEATHSIG)
        for actor in actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:
                pass
        self._actors = []
        if self.started_ray:
            ray.shutdown()


def _cpu_nodes() -> list[tuple[str, float]]:
    """(node id, CPUs) of every alive node that has CPUs, in a stable order."""
    import ray

    nodes = [
        (n["NodeID"], float(n.get("Resources", {}).get("CPU", 0.0)))
        for n in ray.nodes()
        if n.get("Alive") and n.get("Resources", {}).get("CPU", 0.0) > 0
    ]
    return sorted(nodes)


__all__ = ["RayBackend", "ZygoteActor", "ray_available"]
