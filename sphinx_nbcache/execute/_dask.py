"""Run notebooks as tasks on a ``dask.distributed`` cluster (``nbcache_executor = "dask"``).

Each job is one task (:func:`._dask_task.run_on_worker`): the page's folder is packed on the
build machine (:meth:`ProjectFiles.pack`: ignore patterns, at most ``limit`` bytes) and shipped
with the task; the worker runs the notebook in a fresh kernel there and sends the Outcome back.
``url=None`` starts a :class:`distributed.LocalCluster` of ``jobs`` single-threaded worker
processes on 127.0.0.1 for the executor's life; with a scheduler's address, the cluster
decides how many notebooks run at once (one per worker thread).

A worker lost while running a page: Dask runs the page again elsewhere; lost a second time,
the page is given up with a failure naming both workers (status ``error``: run again next
build). An unreachable scheduler, or one without workers, is one :class:`ExecutorError` when
the executor is made. Losing the scheduler later fails the pages still out (never a hang);
so do pages left waiting when every worker is gone, after ``no_workers_timeout`` on a local
cluster (a remote scheduler needs ``distributed.scheduler.no-workers-timeout`` set).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import logging
import threading
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, ExecutorError
from ..records import Failure
from ._dask_task import busy_keys, run_on_worker
from ._job import Job, Outcome
from ._kernel import error_outcome
from ._remote import check_env_names, passed_environment, resolve

__all__ = ["DaskExecutor"]

_LOST_LIMIT = 2  # workers lost while running one page before it is given up
log = logging.getLogger(__name__)


@dataclass
class _Pending:
    job: Job
    future: concurrent.futures.Future[Outcome]
    task: Any = None  # the distributed.Future
    worker: str | None = None  # the worker running it now (from its start event)
    lost: list[str] = field(default_factory=list)  # workers lost while running it


class DaskExecutor:
    """Executes jobs as tasks on a Dask cluster (a local one when ``url`` is None)."""

    def __init__(
        self,
        url: str | None = None,
        jobs: int = 1,
        env: Iterable[str] = (),
        connect_timeout: float = 10.0,
        worker_timeout: float = 60.0,
        no_workers_timeout: float = 120.0,
        **_settings: Any,
    ) -> None:
        try:
            import dask
            import distributed
        except ImportError:
            raise ExecutorError(
                "dask", "needs the 'distributed' package: pip install 'sphinx-nbcache[dask]'"
            ) from None
        try:
            self.env = check_env_names(env)
        except ValueError as exc:
            raise ConfigError("nbcache_executor_env", str(exc)) from None
        self.jobs = max(1, jobs)
        self._cluster: Any = None
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._cancelling = False
        self._topic = f"nbcache-started-{uuid.uuid4().hex}"
        if url is None:
            try:
                with dask.config.set(
                    {"distributed.scheduler.no-workers-timeout": no_workers_timeout}
                ):
                    self._cluster = distributed.LocalCluster(
                        n_workers=self.jobs,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address=None,
                        silence_logs=logging.ERROR,
                    )
            except Exception as exc:
                raise ExecutorError(
                    "dask",
                    f"cannot start a local Dask cluster ({type(exc).__name__}: {exc}); give a "
                    "scheduler's address in nbcache_executor_url, or use the 'local' executor",
                ) from exc
            address = self._cluster.scheduler_address
        else:
            address = url
        self.address: str = address
        try:
            self._client = distributed.Client(
                address, timeout=connect_timeout, set_as_default=False
            )
        except (OSError, TimeoutError, ValueError) as exc:
            self._close_cluster()
            raise ExecutorError(
                "dask",
                f"cannot reach the Dask scheduler at {address} ({exc}); check "
                "nbcache_executor_url and that `dask scheduler` runs there",
            ) from None
        try:
            self._client.wait_for_workers(1, timeout=worker_timeout)
        except (TimeoutError, OSError):
            self._close()
            raise ExecutorError(
                "dask",
                f"the Dask scheduler at {address} has no worker (waited {worker_timeout:g} s); "
                f"start some with `dask worker {address}`",
            ) from None
        self._client.subscribe_topic(self._topic, self._on_started)
        self._client.subscribe_topic("all", self._on_cluster_event)
        atexit.register(self._atexit)

    # -- public -------------------------------------------------------------------------------

    def submit(self, job: Job) -> concurrent.futures.Future[Outcome]:
        if self._closed:
            raise RuntimeError("this executor has been shut down")
        packed = None
        if job.files is not None and not job.in_temp:
            packed, _left_out = job.files.pack(job.folder)
        env = passed_environment(job, self.env)
        key = f"nbcache-{job.page}-{uuid.uuid4().hex[:12]}"
        pending = _Pending(job, concurrent.futures.Future())
        with self._lock:
            self._pending[key] = pending
        with warnings.catch_warnings():  # a big page folder is a "large graph": expected
            warnings.filterwarnings("ignore", "Sending large graph")
            pending.task = self._client.submit(
                run_on_worker, job, packed, env, self._topic, key=key, pure=False
            )
        pending.task.add_done_callback(lambda task: self._on_done(key, task))
        return pending.future

    def shutdown(self, cancel: bool = False) -> None:
        """Wait for (or cancel) every job, then close the client (and the local cluster)."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            pending = list(self._pending.values())
        if cancel:
            self._cancelling = True
            tasks = [p.task for p in pending if p.task is not None]
            with contextlib.suppress(Exception):
                self._client.cancel(tasks)
            for item in pending:
                item.future.cancel()
            self._wait_for_kernels([t.key for t in tasks])
        else:
            concurrent.futures.wait([p.future for p in pending])
        self._close()
        atexit.unregister(self._atexit)

    def _atexit(self) -> None:
        self.shutdown(cancel=True)

    # -- events from the cluster --------------------------------------------------------------

    def _on_started(self, event: tuple[float, dict[str, Any]]) -> None:
        _, msg = event
        with self._lock:
            pending = self._pending.get(str(msg.get("key")))
            if pending is not None:
                pending.worker = str(msg.get("worker"))

    async def _on_cluster_event(self, event: tuple[float, Any]) -> None:
        _, msg = event
        if not isinstance(msg, dict) or msg.get("action") != "remove-worker":
            return
        worker = str(msg.get("worker"))
        given_up = []
        with self._lock:
            for key, pending in list(self._pending.items()):
                if pending.worker != worker:
                    continue
                pending.worker = None
                pending.lost.append(worker)
                if len(pending.lost) >= _LOST_LIMIT:
                    del self._pending[key]
                    given_up.append(pending)
        for pending in given_up:
            resolve(pending.future, self._lost_outcome(pending))
            with contextlib.suppress(Exception):
                await self._client.cancel([pending.task], asynchronous=True)

    def _on_done(self, key: str, task: Any) -> None:
        """A task finished, failed or was cancelled (runs in a thread of the client's)."""
        with self._lock:
            pending = self._pending.pop(key, None)
        if pending is None:
            return  # given up already
        if self._cancelling:
            pending.future.cancel()
            return
        try:
            resolve(pending.future, self._outcome_of(pending, task))
        except BaseException as exc:  # the executor itself broke: the engine reports it
            if not pending.future.done():
                pending.future.set_exception(exc)

    def _outcome_of(self, pending: _Pending, task: Any) -> Outcome:
        job = pending.job
        if task.status == "finished":
            try:
                outcome: Outcome = task.result(timeout=300)
                return outcome
            except Exception as exc:
                return error_outcome(job, self._failure("internal", exc, "fetching its result"))
        if task.status == "error":
            error = task.exception()
            if type(error).__name__ == "KilledWorker":
                pending.lost.append(_address(getattr(error, "last_worker", None) or "?"))
                return self._lost_outcome(pending)
            return error_outcome(job, self._failure("internal", error, "running its task"))
        failure = Failure(
            "internal",
            "CancelledError",
            f"the Dask scheduler at {self.address} cancelled the task (lost or restarted?); "
            "it runs again on the next build",
        )
        return error_outcome(job, failure)

    def _failure(self, kind: Any, exc: BaseException, doing: str) -> Failure:
        return Failure(
            kind,
            type(exc).__name__,
            f"the Dask cluster at {self.address} failed {doing}: {exc}; it runs again on the "
            "next build",
        )

    def _lost_outcome(self, pending: _Pending) -> Outcome:
        workers = ", ".join(_address(w) for w in pending.lost)
        failure = Failure(
            "dead_kernel",
            "WorkerLost",
            f"the Dask workers running this page died {len(pending.lost)} times ({workers}); "
            "it was given up (a notebook that uses too much memory can kill its worker) and "
            "runs again on the next build",
        )
        return error_outcome(pending.job, failure)

    # -- clean-up -----------------------------------------------------------------------------

    def _wait_for_kernels(self, keys: list[str], timeout: float = 15.0) -> None:
        """Until no cancelled task still runs (its kernel stops within half a second)."""
        deadline = time.monotonic() + timeout
        while keys and time.monotonic() < deadline:
            try:
                busy = self._client.run(busy_keys, keys, on_error="ignore")
            except Exception:
                return
            if not any(busy.values()):
                return
            time.sleep(0.1)

    def _close(self) -> None:
        for topic in (self._topic, "all"):
            with contextlib.suppress(Exception):
                self._client.unsubscribe_topic(topic)
        with contextlib.suppress(Exception), _quiet("distributed.client", "distributed.comm"):
            self._client.close(timeout=30)  # after a lost scheduler: a traceback per retry
        self._close_cluster()

    def _close_cluster(self) -> None:
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close(timeout=30)
            self._cluster = None


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Silence these loggers for a while (what they would say is in the outcomes)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _address(worker: Any) -> str:
    """A worker's address from what Dask gives (an address, or a WorkerState)."""
    return str(getattr(worker, "address", worker))
