"""Run notebooks as tasks on a ``dask.distributed`` cluster (``nbcache_executor = "dask"``).

Each job is one task (:func:`._dask_task.run_on_worker`): the page's folder is packed on the
build machine (:meth:`ProjectFiles.pack`: ignore patterns, at most ``limit`` bytes) and shipped
with the task; the worker runs the notebook in a fresh kernel there and sends the Outcome back.
``url=None`` starts a :class:`distributed.LocalCluster` of ``jobs`` single-threaded worker
processes on 127.0.0.1 for the executor's life, over TLS with a certificate made for it alone
(:meth:`distributed.security.Security.temporary`): another local user who finds its port
cannot submit tasks. With a scheduler's address, the cluster decides how many notebooks run at
once (one per worker thread), and the address and Dask's own configuration say how to connect
(``tls://`` with ``distributed.comm.tls.*``, or plain ``tcp://``).

A worker lost while running a page: Dask runs the page again elsewhere; lost a second time,
the page is given up with a failure naming both workers (status ``error``: run again next
build). An unreachable scheduler, or one without workers, is one :class:`ExecutorError` when
the executor is made. Losing the scheduler later fails the pages still out (never a hang);
so do pages left waiting when every worker is gone, after ``no_workers_timeout`` on a local
cluster (a remote scheduler needs ``distributed.scheduler.no-workers-timeout`` set).

The client is asynchronous, on a loop thread of ours that ends at :meth:`shutdown`: a build
keeps no Dask thread running after it (a local cluster's scheduler, which runs in the build's
process, leaves Dask's idle "offload" thread behind).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import uuid
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, ExecutorError
from ..records import Failure
from ._dask_task import busy_keys, run_on_worker
from ._job import Job, Outcome, error_outcome
from ._remote import LoopThread, check_env_names, passed_environment, resolve

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
            import distributed  # noqa: F401
        except ImportError:
            raise ExecutorError(
                "dask", "needs the 'distributed' package: pip install 'sphinx-nbcache[dask]'"
            ) from None
        try:
            self.env = check_env_names(env)
        except ValueError as exc:
            raise ConfigError("nbcache_executor_env", str(exc)) from None
        self.jobs = max(1, jobs)
        self.address: str = url or ""
        self._cluster: Any = None
        self._client: Any = None
        self._pending: dict[str, _Pending] = {}  # touched on the loop thread only
        #: workers the scheduler removed: a start event of theirs that arrives after their
        #: removal (the two come by different ways) names a run that is lost too
        self._removed: set[str] = set()
        self._runs: set[asyncio.Task[None]] = set()  # one per job, until its outcome is given
        self._tasks: list[concurrent.futures.Future[None]] = []
        self._outcomes: list[concurrent.futures.Future[Outcome]] = []
        self._closed = False
        self._cancelling = False
        self._topic = f"nbcache-started-{uuid.uuid4().hex}"
        self._thread = LoopThread("nbcache-dask")
        opening = self._open(url, connect_timeout, worker_timeout, no_workers_timeout)
        try:
            self._thread.run(opening, timeout=connect_timeout + worker_timeout + 120)
        except BaseException:
            with contextlib.suppress(Exception):
                self._thread.run(self._close(), timeout=60)
            self._thread.stop()
            raise
        atexit.register(self._atexit)

    # -- public -------------------------------------------------------------------------------

    def submit(self, job: Job) -> concurrent.futures.Future[Outcome]:
        if self._closed:
            raise RuntimeError("this executor has been shut down")
        packed = None
        if job.files is not None and not job.in_temp:
            packed, _left_out = job.files.pack(job.folder)
        env = passed_environment(job, self.env)
        future: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
        self._tasks.append(self._thread.submit(self._run(job, packed, env, future)))
        self._outcomes.append(future)
        return future

    def shutdown(self, cancel: bool = False) -> None:
        """Wait for (or cancel) every job, then close the client (and the local cluster)."""
        if self._closed:
            return
        self._closed = True
        if cancel:
            self._cancelling = True
            for task in self._tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                self._thread.run(self._cancel_all(), timeout=60)
        else:
            concurrent.futures.wait(self._tasks)
        with contextlib.suppress(Exception):
            self._thread.run(self._close(), timeout=90)
        self._thread.stop()
        for future in self._outcomes:
            if not future.done():
                future.cancel()
        atexit.unregister(self._atexit)

    def _atexit(self) -> None:
        self.shutdown(cancel=True)

    # -- on the loop thread -------------------------------------------------------------------

    async def _open(
        self, url: str | None, connect_timeout: float, worker_timeout: float, idle: float
    ) -> None:
        import dask
        import distributed

        security: Any = None
        if url is None:
            try:
                security = _temporary_security()
                with dask.config.set({"distributed.scheduler.no-workers-timeout": idle}):
                    self._cluster = await distributed.LocalCluster(
                        n_workers=self.jobs,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        protocol="tls://",
                        security=security,
                        dashboard_address=None,
                        silence_logs=logging.ERROR,
                        asynchronous=True,
                    )
            except ExecutorError:
                raise
            except Exception as exc:
                raise ExecutorError(
                    "dask",
                    f"cannot start a local Dask cluster ({type(exc).__name__}: {exc}); give a "
                    "scheduler's address in nbcache_executor_url, or use the 'local' executor",
                ) from exc
            self.address = self._cluster.scheduler_address
        try:
            self._client = await distributed.Client(
                self.address,
                timeout=connect_timeout,
                asynchronous=True,
                set_as_default=False,
                **({} if security is None else {"security": security}),
            )
        except (OSError, TimeoutError, ValueError) as exc:
            raise ExecutorError(
                "dask",
                f"cannot reach the Dask scheduler at {self.address} ({exc}); check "
                "nbcache_executor_url and that `dask scheduler` runs there",
            ) from None
        try:
            await self._client.wait_for_workers(1, timeout=worker_timeout)
        except (TimeoutError, OSError):
            raise ExecutorError(
                "dask",
                f"the Dask scheduler at {self.address} has no worker (waited "
                f"{worker_timeout:g} s); start some with `dask worker {self.address}`",
            ) from None
        self._client.subscribe_topic(self._topic, self._on_started)
        self._client.subscribe_topic("all", self._on_cluster_event)

    async def _run(
        self,
        job: Job,
        packed: bytes | None,
        env: dict[str, str],
        future: concurrent.futures.Future[Outcome],
    ) -> None:
        key = f"nbcache-{job.page}-{uuid.uuid4().hex[:12]}"
        pending = self._pending[key] = _Pending(job, future)
        run = asyncio.current_task()
        assert run is not None
        self._runs.add(run)
        try:
            with warnings.catch_warnings():  # a big page folder is a "large graph": expected
                warnings.filterwarnings("ignore", "Sending large graph")
                pending.task = self._client.submit(
                    run_on_worker, job, packed, env, self._topic, key=key, pure=False
                )
            try:
                outcome: Outcome = await pending.task
            except Exception as exc:  # the task erred or was cancelled under us
                outcome = self._outcome_of(pending, exc)
            if self._cancelling:
                raise asyncio.CancelledError
            resolve(future, outcome)  # no-op if given up already
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:  # the executor itself broke: the engine reports it
            if not future.done():
                future.set_exception(exc)
            raise
        finally:
            self._pending.pop(key, None)
            self._runs.discard(run)

    async def _on_started(self, event: tuple[float, dict[str, Any]]) -> None:
        _, msg = event
        pending = self._pending.get(str(msg.get("key")))
        if pending is None:
            return
        worker = str(msg.get("worker"))
        if worker in self._removed:  # its removal was heard first: this run is lost already
            await self._lost(pending, worker)
        else:
            pending.worker = worker

    async def _on_cluster_event(self, event: tuple[float, Any]) -> None:
        _, msg = event
        if not isinstance(msg, dict):
            return
        worker = str(msg.get("worker"))
        if msg.get("action") == "add-worker":  # a worker restarted at the same address
            self._removed.discard(worker)
        if msg.get("action") != "remove-worker":
            return
        self._removed.add(worker)
        for pending in list(self._pending.values()):
            if pending.worker == worker:
                await self._lost(pending, worker)

    async def _lost(self, pending: _Pending, worker: str) -> None:
        """The worker running ``pending`` died: give the page up at the limit."""
        pending.worker = None
        pending.lost.append(worker)
        if len(pending.lost) >= _LOST_LIMIT and not pending.future.done():
            resolve(pending.future, self._lost_outcome(pending))
            with contextlib.suppress(Exception):
                await self._client.cancel([pending.task])

    def _outcome_of(self, pending: _Pending, error: Exception) -> Outcome:
        if type(error).__name__ == "KilledWorker":  # the scheduler's own limit came first
            pending.lost.append(_address(getattr(error, "last_worker", None) or "?"))
            return self._lost_outcome(pending)
        if isinstance(error, concurrent.futures.CancelledError):
            reason = "the Dask scheduler at {} cancelled the task (lost or restarted?)"
            failure = Failure("internal", "CancelledError", reason.format(self.address))
        else:
            failure = Failure(
                "internal",
                type(error).__name__,
                f"the Dask cluster at {self.address} failed running the task: {error}",
            )
        again = failure._replace(evalue=f"{failure.evalue}; it runs again next build")
        return error_outcome(pending.job, again)

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

    async def _cancel_all(self, timeout: float = 15.0) -> None:
        """Cancel every task and wait until none still runs (a cancelled task stops its
        kernel within half a second)."""
        tasks = [p.task for p in self._pending.values() if p.task is not None]
        with contextlib.suppress(Exception):
            await self._client.cancel(tasks)
        runs = list(self._runs)
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        keys = [t.key for t in tasks]
        deadline = asyncio.get_running_loop().time() + timeout
        while keys and asyncio.get_running_loop().time() < deadline:
            try:
                busy = await self._client.run(busy_keys, keys, on_error="ignore")
            except Exception:
                return
            if not any(busy.values()):
                return
            await asyncio.sleep(0.1)

    async def _close(self) -> None:
        if self._client is not None:
            for topic in (self._topic, "all"):
                with contextlib.suppress(Exception):
                    self._client.unsubscribe_topic(topic)
            with contextlib.suppress(Exception), _quiet("distributed.client", "distributed.comm"):
                await self._client.close(timeout=30)  # a lost scheduler: a traceback per retry
            self._client = None
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                await self._cluster.close(timeout=30)
            self._cluster = None


def _temporary_security() -> Any:
    """TLS with a new self-signed certificate, required of every client (the build's own
    client, the scheduler and the workers hold it; nobody else does)."""
    from distributed.security import Security

    try:
        return Security.temporary()
    except ImportError:
        raise ExecutorError(
            "dask",
            "the local Dask cluster uses TLS with a temporary certificate, which needs the "
            "'cryptography' package: pip install 'sphinx-nbcache[dask]' (or cryptography)",
        ) from None


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
