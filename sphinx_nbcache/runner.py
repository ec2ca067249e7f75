"""Execute stale pages and store their results; let readers wait for them.

The runner joins the executor to the store: every outcome is stored (blob, then row, one
transaction) by the runner's storing thread the moment its future resolves, then waiters are
woken. Waiters in this process wait on the
job's future; waiters in processes forked after :meth:`Runner.start` (``sphinx-build -j``
readers) poll the store for the key, backing off up to 0.1 s (a process-shared condition
would hang the build if a reader died while waiting on it).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import functools
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .execute import Executor, Job, LocalExecutor, Outcome, run_notebook
from .records import Record
from .store import Store

__all__ = ["Runner"]


class Runner:
    """Runs jobs on an executor, stores outcomes, and answers "is key K done?"."""

    def __init__(
        self,
        store: Store,
        jobs: int,
        prestart: int,
        executor: Executor | None = None,
        on_stored: Callable[[Record], Any] | None = None,
    ) -> None:
        self.store = store
        self._executor = executor or LocalExecutor(jobs, prestart)
        self._owner = os.getpid()
        self._started = time.time()
        self._futures: dict[str, concurrent.futures.Future[Outcome]] = {}
        self._messages: queue.SimpleQueue[Record] = queue.SimpleQueue()
        self._on_stored = on_stored
        self._local = threading.Condition()
        self.executed: list[Record] = []
        self._done: dict[str, Outcome] = {}
        self._stored: dict[str, concurrent.futures.Future[Outcome]] = {}
        self._inbox: queue.SimpleQueue[tuple[str, concurrent.futures.Future[Outcome]] | None] = (
            queue.SimpleQueue()
        )
        self._storer: threading.Thread | None = None
        self._cancelling = False  # interrupted: a failure now may be the interruption's doing

    # -- submitting ---------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queue a job unless its key is already queued in this run.

        In a process forked from the one that made the runner, the job runs right here (the
        executor's thread does not exist after a fork) and its result is stored.
        """
        if os.getpid() != self._owner:
            outcome = asyncio.run(run_notebook(job))
            self.store.put(outcome.record, outcome.outputs)
            return
        if job.key not in self._futures:
            if self._storer is None:
                self._storer = threading.Thread(target=self._store_all, name="nbcache-store")
                self._storer.daemon = True
                self._storer.start()
            future = self._executor.submit(job)
            if not self._futures:  # after the executor's own: runs before it at exit
                atexit.register(self.close, cancel=True)
            stored: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
            self._futures[job.key] = stored
            future.add_done_callback(functools.partial(self._arrived, job.key))

    def submit_all(self, jobs: Iterable[Job]) -> None:
        for job in jobs:
            self.submit(job)

    def pending(self, key: str) -> bool:
        """True if ``key`` was submitted in this run (whether or not it has finished)."""
        if key in self._futures:
            return True
        if os.getpid() != self._owner:  # submitted by this forked reader itself
            record = self.store.get(key)
            return record is not None and record.created >= self._started - 1.0
        return False

    # -- results ------------------------------------------------------------------------------

    def wait(self, key: str, on_record: Callable[[Record], Any] | None = None) -> Outcome | None:
        """The outcome produced for ``key`` in this run, waiting for it if needed.

        ``on_record`` is called (in the calling thread) for every record stored meanwhile, in
        any order: the Sphinx glue logs them. Returns None if the key was never submitted. In a
        forked reader the outcome's outputs are None: load them from the store.
        """
        if os.getpid() != self._owner:
            if not self.pending(key):
                return None
            record = self._wait_forked(key)
            return None if record is None else Outcome(record, None)
        if key not in self._futures:
            return None
        future = self._futures.get(key)
        if future is None:
            return None
        with self._local:
            while True:
                self._drain(on_record)
                if key in self._done:
                    return self._done[key]
                if future.done():
                    future.result()  # re-raises what broke the executor or the store
                    return self._done.get(key)
                self._local.wait(timeout=5.0)

    def as_completed(self) -> Iterator[Record]:
        """Every submitted job's record, as each finishes (its kernel stopped too)."""
        for future in concurrent.futures.as_completed(list(self._futures.values())):
            yield future.result().record

    def drain(self, on_record: Callable[[Record], Any]) -> None:
        """Hand every record stored since the last call to ``on_record``."""
        self._drain(on_record)

    def close(self, cancel: bool = False) -> None:
        """Finish (or cancel) all work, stop the kernels, store what came back."""
        if os.getpid() != self._owner:
            return
        self._cancelling = self._cancelling or cancel
        atexit.unregister(self.close)
        self._executor.shutdown(cancel=cancel)
        if self._storer is not None:
            self._inbox.put(None)
            self._storer.join()
            self._storer = None

    # -- internals ----------------------------------------------------------------------------

    def _arrived(self, key: str, future: concurrent.futures.Future[Outcome]) -> None:
        self._inbox.put((key, future))  # in whatever thread resolved it: store elsewhere

    def _store_all(self) -> None:
        """The storing thread: each finished job's outcome goes to the store, in turn."""
        while True:
            item = self._inbox.get()
            if item is None:
                return
            key, future = item
            stored = self._futures[key]
            try:
                outcome = future.result()
                if self._cancelling and not outcome.record.ok:  # its kernel was stopped
                    raise concurrent.futures.CancelledError
                record = self.store.put(outcome.record, outcome.outputs)
                done = Outcome(record, outcome.outputs)
            except BaseException as exc:  # cancelled, or the executor or the store broke
                if isinstance(exc, concurrent.futures.CancelledError):
                    stored.cancel()
                else:
                    stored.set_exception(exc)
                self._wake()
                continue
            self.executed.append(record)
            self._messages.put(record)
            with self._local:
                self._done[record.key] = done
                self._local.notify_all()
            stored.set_result(done)

    def _wake(self) -> None:
        with self._local:
            self._local.notify_all()

    def _drain(self, on_record: Callable[[Record], Any] | None) -> None:
        while True:
            try:
                record = self._messages.get_nowait()
            except queue.Empty:
                return
            if on_record is not None:
                on_record(record)

    def _wait_forked(self, key: str) -> Record | None:
        parent = os.getppid()

        def fresh() -> Record | None:
            record = self.store.get(key)
            if record is not None and record.created >= self._started - 1.0:
                return record
            return None

        delay = 0.005
        while True:
            record = fresh()
            if record is not None:
                return record
            if os.getppid() != parent:  # the build process is gone
                return None
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
