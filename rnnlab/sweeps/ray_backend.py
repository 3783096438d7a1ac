"""The Ray backend: a sweep's trials on Ray actors, locally or on a cluster (imported only for `--backend ray`).

One actor per worker slot (`TrialWorker`, num_cpus = its torch threads), each a long-lived process
that imports torch once and runs trials one after another. A trial is two calls on its actor, sent
together (an actor runs its calls in order): `start` builds the trainer and makes the run directory
(-> "created", or "skipped"/"error"), `finish` trains it (-> "ended"). A dead actor -> "lost".

Stop: `ray.cancel` raises KeyboardInterrupt in the trial, which the trainer takes as "interrupted
twice: no checkpoint". Instead each actor reports its pid and node id, and `stop()` sends it SIGTERM
from a zero-CPU task pinned to that node (so it works on any node of a cluster): the trainer's
StopSignal finishes the step, checkpoints and records `stopped`. A second stop sends SIGINT (which
Ray workers block; the actor unblocks it), which a stopping trainer takes as "at once".

Filesystems: the driver writes a marker file in its runs directory (store.write_probe); an actor
that cannot read it trains into a temporary runs directory of its own and ships the finished run
directory back as tar bytes (store.pack_run), which the driver unpacks into its runs directory
(store.unpack_run). A resumed trial's run directory is shipped out to such an actor the same way.
RNNLAB_RAY_SHARED_FS=0 makes every actor act as if it shared nothing (the tests force the path so).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import tempfile
import time
from collections import deque
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from .. import store
from .backends import Backend
from .trial import TrialJob, start_trial

OBJECT_STORE = 200_000_000  # a local Ray started by rnnlab: small, the shipped runs are what it holds
_started_here = False  # connect() started a local Ray (the backend's close shuts it down again)


def connect(address: str | None = None) -> int:
    """Join the Ray cluster at `address` ("auto": the one `ray start` made here), or start a small local
    one; returns the cluster's CPU count."""
    global _started_here
    address = address or os.environ.get("RAY_ADDRESS") or None  # what a bare ray.init() would join
    if not ray.is_initialized():
        _started_here = not address
        if address:
            from ..errors import ConfigError, first_line

            allowed = "auto, or HEAD:6379, after `ray start --head` there"
            problem = _unreachable(address)  # ray.init itself would retry a dead address for minutes
            if problem:
                raise ConfigError("--address", address, f"no Ray cluster to join ({problem})", allowed)
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            except ConnectionError as error:
                raise ConfigError("--address", address, f"no Ray cluster to join ({first_line(error)})", allowed) from None
        else:
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, object_store_memory=OBJECT_STORE,
                     log_to_driver=False, configure_logging=False)
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _unreachable(address: str) -> str | None:
    """Why a HOST:PORT address takes no connection (None when it does, or for `auto` and ray:// ones)."""
    import socket

    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not host or not port.isdigit():
        return None
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as error:
        return error.strerror or error.__class__.__name__
    return None


def _last_line(error: Exception) -> str:
    """The last line of a Ray error's text (its cause), without the colour codes Ray puts in it."""
    import re

    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(error)).splitlines() if line.strip()]
    return lines[-1][:300] if lines else error.__class__.__name__


@ray.remote(num_cpus=0)
def _signal_worker(pid: int, signals: list[int]) -> None:
    try:
        for n, signum in enumerate(signals):
            if n:
                time.sleep(0.1)  # apart: Python runs a pending SIGINT's handler before SIGTERM's
            os.kill(pid, signum)
    except ProcessLookupError:
        pass  # its trial had ended and Ray took the worker down


class TrialWorker:
    """A worker slot: torch imported once, trials run one after another in the actor's main thread
    (where the trainer's StopSignal can install its handler)."""

    def __init__(self, threads: int):
        self.stopping = False
        for sig in (signal.SIGTERM, signal.SIGINT):  # between trials: take no more (the trainer's own while training)
            signal.signal(sig, self._on_signal)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # Ray blocks it; a second stop sends it
        from ..train.threads import assign

        assign(threads)  # imports torch, once per actor; trials with threads = 0 keep this share
        self.shared: dict[str, bool] = {}  # probe path -> whether this actor sees it
        self.local: Path | None = None  # its own runs directory, where the driver's is out of sight
        self.trainer, self.key, self.ship = None, None, False

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True

    def where(self) -> tuple[int, str]:
        return os.getpid(), ray.get_runtime_context().get_node_id()

    def cleanup(self) -> None:
        if self.local is not None:
            shutil.rmtree(self.local, ignore_errors=True)

    def sees(self, probe: tuple[str, str] | None) -> bool:
        if probe is None:
            return False
        if probe[0] not in self.shared:
            try:
                self.shared[probe[0]] = Path(probe[0]).read_text() == probe[1]
            except OSError:
                self.shared[probe[0]] = False
        return self.shared[probe[0]]

    def start(self, job: TrialJob, probe, shipped: bytes | None) -> tuple:
        self.trainer, self.key, self.ship = None, job.key, not self.sees(probe)
        if self.stopping:
            return ("skipped", job.key)
        try:
            if self.ship:
                if self.local is None:
                    self.local = Path(tempfile.mkdtemp(prefix="rnnlab-ray-runs-"))
                if shipped is not None:
                    store.unpack_run(self.local, shipped, replace=True)
                job = dataclasses.replace(job, runs_dir=str(self.local))
            self.trainer = start_trial(job, lambda: not self.stopping)
        except Exception as error:  # a config or checkpoint problem: one line, the sweep goes on
            from ..errors import first_line

            return ("error", job.key, f"{error.__class__.__name__}: {first_line(error)}")
        if self.trainer is None:
            return ("skipped", job.key)
        return ("created", job.key, self.trainer.run.id)

    def finish(self) -> tuple | None:
        """Train the trial `start` made; ("ended", key, state, error, its run directory as tar bytes or None)."""
        trainer, self.trainer = self.trainer, None
        if trainer is None:
            return None
        outcome = trainer.train()
        data = None
        if self.ship:
            data = store.pack_run(trainer.run)
            store.remove_run(trainer.run, ignore_errors=True)  # this actor's temporary copy
        return ("ended", self.key, outcome.state, outcome.error, data)


class RayBackend(Backend):
    """Trials on `workers` TrialWorker actors; the driver keeps the queue and hands a job to each idle actor."""

    def __init__(self, workers: int, threads: int, address: str | None = None, shared_fs: bool | None = None):
        connect(address)
        if shared_fs is None:
            shared_fs = os.environ.get("RNNLAB_RAY_SHARED_FS", "").strip().lower() not in ("0", "no", "false")
        self.shared_fs = shared_fs
        biggest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=1)
        threads = max(1, min(threads, int(biggest)))  # an actor must fit on one node
        cls = ray.remote(num_cpus=threads, max_restarts=0)(TrialWorker)
        self.actors = [cls.remote(threads) for _ in range(workers)]
        self.places = {actor: actor.where.remote() for actor in self.actors}  # pid, node id (for stop)
        self.idle_actors = list(self.actors)
        self.queue: deque[TrialJob] = deque()
        self.inflight: dict = {}  # object ref -> (actor, job, "start" | "finish")
        self.pending: set[str] = set()
        self.probe: tuple[str, str] | None = None
        self.stops_asked = self.stops_sent = 0

    # -- the seam ------------------------------------------------------------------------------
    def submit(self, job: TrialJob) -> None:
        if self.probe is None and self.shared_fs:
            self.probe = store.write_probe(Path(job.runs_dir))
        self.pending.add(job.key)
        self.queue.append(job)

    def poll(self, timeout: float) -> list[tuple]:
        out: list[tuple] = []
        if self.stops_asked > self.stops_sent:
            self._send_stops()
        if self.stops_asked:
            while self.queue:  # a stop came first: these never start
                job = self.queue.popleft()
                self.pending.discard(job.key)
                out.append(("skipped", job.key))
        self._dispatch()
        if self.inflight:
            ready, _ = ray.wait(list(self.inflight), num_returns=1, timeout=timeout)
            if ready:
                ready, _ = ray.wait(list(self.inflight), num_returns=len(self.inflight), timeout=0)
            ready.sort(key=lambda ref: self.inflight[ref][2] != "start")  # a trial's "created" before its "ended"
            for ref in ready:
                out += self._settle(ref)
        if not self.actors:  # every actor died: nobody is left to take the queued jobs
            while self.queue:
                job = self.queue.popleft()
                self.pending.discard(job.key)
                out.append(("skipped", job.key))
        return out

    def idle(self) -> bool:
        return not self.pending

    def stop(self) -> None:
        """Called from the driver's signal handler: only counted here, sent from the next `poll` (no Ray
        calls inside a signal handler)."""
        self.stops_asked += 1

    def close(self, now: bool = False) -> None:
        if not now and self.actors:
            try:  # their temporary runs directories (where nothing was shared), before they go
                ray.get([actor.cleanup.remote() for actor in self.actors], timeout=30)
            except Exception:
                pass
        for actor in self.actors:
            ray.kill(actor)
        self.actors.clear()
        if self.probe is not None:
            store.remove_probe(self.probe[0])
        global _started_here
        if _started_here:
            ray.shutdown()
            _started_here = False

    # -- inside --------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        while self.queue and self.idle_actors and not self.stops_asked:
            actor, job = self.idle_actors.pop(0), self.queue.popleft()
            shipped = None
            if job.resume is not None and not ray.get(actor.sees.remote(self.probe)):
                shipped = store.pack_run(store.RunDir(Path(job.runs_dir) / job.resume))
            self.inflight[actor.start.remote(job, self.probe, shipped)] = (actor, job, "start")
            self.inflight[actor.finish.remote()] = (actor, job, "finish")

    def _settle(self, ref) -> list[tuple]:
        actor, job, phase = self.inflight.pop(ref)
        try:
            message = ray.get(ref)
        except ray.exceptions.RayTaskError as failure:  # the trainer raised past its own handling
            self.pending.discard(job.key)
            if actor in self.actors:
                self.idle_actors.append(actor)
            from ..errors import first_line

            return [("error", job.key, first_line(failure.cause if failure.cause is not None else failure))]
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                ray.exceptions.ObjectLostError) as failure:
            if actor in self.actors:
                self.actors.remove(actor)
            if phase == "start" or job.key not in self.pending:
                return []  # its "finish" reports the loss, once
            self.pending.discard(job.key)
            if getattr(failure, "actor_init_failed", False):  # e.g. rnnlab or torch missing on its node
                return [("error", job.key, f"its Ray worker could not start: {_last_line(failure)} "
                                           "(are rnnlab and torch installed on every node?)")]
            return [("lost", job.key)]
        if phase == "start":
            if message[0] != "created":
                self.pending.discard(job.key)
            return [message]
        if actor in self.actors:
            self.idle_actors.append(actor)
        if message is None:  # `start` had skipped it or failed
            return []
        self.pending.discard(job.key)
        kind, key, state, error, data = message
        if data is not None:
            try:
                store.unpack_run(Path(job.runs_dir), data, replace=job.resume is not None)
            except Exception as failure:
                return [("ended", key, "failed", f"its run directory could not be shipped back: {failure}")]
        return [(kind, key, state, error)]

    def _send_stops(self) -> None:
        """The first stop: SIGTERM (the trainer finishes its step, checkpoints, records `stopped`); any
        later one: SIGINT, which a trainer already stopping takes as "at once", as with the local pool."""
        signals = [int(signal.SIGTERM if n == 0 else signal.SIGINT) for n in range(self.stops_sent, self.stops_asked)]
        self.stops_sent = self.stops_asked
        busy = {actor for actor, _, _ in self.inflight.values()}
        for actor in busy:
            try:
                pid, node = ray.get(self.places[actor], timeout=30)
            except Exception:
                continue  # it never started, or died: nothing to stop there
            strategy = NodeAffinitySchedulingStrategy(node, soft=False)
            _signal_worker.options(scheduling_strategy=strategy).remote(pid, signals)
