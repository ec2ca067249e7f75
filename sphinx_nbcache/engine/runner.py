"""Execute jobs on an executor and store their outcomes; let readers wait for them.

The runner joins any :class:`~sphinx_nbcache.execute.Executor` to the store: when a job's
future resolves, the runner's storing thread stores the outcome (blob, then row, one
transaction: :func:`.storing.store_outcome`), then wakes whoever waits. An executor in a
process of its own (``execute.ProcessExecutor``) is given :class:`.storing.StoreApart`: the
same function, run there on the store reopened from its location; only the stored record comes
back (the outputs are read from the blobs when the page is rendered). Waiters in this process
wait on the stored future; waiters in processes forked after the runner started (``sphinx-build
-j`` readers) poll the store for the key, backing off up to 0.1 s (a process-shared condition
would hang the build if a reader died while waiting on it). A forked reader that must execute
something itself makes an executor of its own from the same factory.

While a runner has an executor in this process, its GIL switch interval is at most
:data:`SWITCH_INTERVAL`: the executor's thread and the storing thread then get the GIL soon
after they have work instead of up to 5 ms later, behind Sphinx reading pages (400 one-cell
pages: 96 s at 5 ms, 79 s at 0.5 ms; docs/performance.md). The last runner that lowered it
restores it, unless someone changed it meanwhile; one set lower is left alone.

``on_event(kind, key, page, when)`` is told of each job's ``submitted``, ``started`` (when
the executor says: one with an ``on_start`` attribute is given a callback) and ``done``
(:mod:`.progress`), in whatever thread it happens; it must be quick.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import functools
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..execute import Executor, Job, Outcome, error_outcome
from ..records import Failure, Record
from ..store import Store, StoreLocation
from .leases import Leases
from .progress import OnEvent
from .storing import StoreApart, store_outcome
from .waiting import poll

if TYPE_CHECKING:
    from ..plan.verdicts import PageState

__all__ = ["SWITCH_INTERVAL", "Runner"]

SWITCH_INTERVAL = 0.0005  # seconds; see the module's docstring
_switching = threading.Lock()
_lowered: list[float] = []  # the process's own interval, once per runner that lowered it

ExecutorMaker = Callable[[int], Executor]  # prestart -> a new executor


class Runner:
    """Runs jobs on an executor, stores outcomes, and answers "is key K done?"."""

    def __init__(
        self,
        store: Store,
        make_executor: ExecutorMaker,
        prestart: int = 0,
        lease_seconds: float = 60.0,
        since: float | None = None,
        on_event: OnEvent | None = None,
        location: StoreLocation | None = None,
    ) -> None:
        self.store = store
        self._on_event = on_event
        self._pages: dict[str, str] = {}  # key -> page of every job submitted
        #: where ``store`` is, for an executor that stores where it runs (None: not known)
        self.location = location
        self._make_executor = make_executor
        self._executor: Executor | None = None
        self._prestart = prestart
        self._owner = os.getpid()
        self._futures: dict[str, concurrent.futures.Future[Outcome]] = {}  # stored outcomes
        self._messages: queue.SimpleQueue[Record] = queue.SimpleQueue()
        self._local = threading.Condition()
        self._submitting = threading.Lock()
        self._making = threading.Lock()  # the executor, made once
        self._submitted = False  # a first job went to the executor
        self.executed: list[Record] = []
        self._done: dict[str, Outcome] = {}
        self._inbox: queue.SimpleQueue[tuple[Job, concurrent.futures.Future[Outcome]] | None] = (
            queue.SimpleQueue()
        )
        self._storer: threading.Thread | None = None
        self._lowered = False  # this runner lowered the switch interval (see the docstring)
        self._cancelling = False  # interrupted: a failure now may be the interruption's doing
        self.waited: list[Record] = []  # results other builds sharing the store produced
        self.known: dict[str, set[str]] = {}  # key -> ids of its results when it was planned
        self._leases = Leases(
            store, lease_seconds, self._from_elsewhere, self._execute, since=since, known=self.known
        )

    # -- submitting ---------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queue a job unless its key is already queued in this run (see :meth:`submit_all`).

        In a process forked from the one that made the runner, the job runs right here, on an
        executor of this process's own, and its result is stored before this returns.
        """
        if os.getpid() != self._owner:
            self._run_here(job)
            return
        self.submit_all([job])

    def submit_all(self, jobs: Iterable[Job]) -> None:
        """Queue jobs, in order, unless their key is queued already. A key another build
        sharing the store is executing is waited for instead (its lease), and taken over if
        that build dies. Safe to call from several threads (a server's calls)."""
        with self._submitting:
            self._get_executor()  # first: one in a process of its own starts meanwhile
            fresh: dict[str, Job] = {}
            for job in jobs:
                running = self._futures.get(job.key)
                if (running is None or running.done()) and job.key not in fresh:
                    fresh[job.key] = job
            if not fresh:
                return
            if not self._futures:  # at exit: stop waiting for other builds, give up leases
                atexit.register(self.close, cancel=True)
            for key, job in fresh.items():
                self._futures[key] = concurrent.futures.Future()
                with self._local:
                    self._done.pop(key, None)  # a new run of it: wait for that one
                self._pages[key] = job.page
                self._event("submitted", key)
            run, _done = self._leases.take(fresh.values())
            for job in run:
                self._execute(job)

    def _get_executor(self) -> Executor:
        with self._making:
            if self._executor is None:
                executor = self._make_executor(self._prestart)
                store_with = getattr(executor, "store_with", None)
                if self.location and not self.store.read_only and callable(store_with):
                    store_with(StoreApart(self.location))
                if not getattr(executor, "apart", False):  # its threads share our interpreter
                    self._lowered = _lower_switch_interval()
                if self._on_event is not None and hasattr(executor, "on_start"):
                    executor.on_start = functools.partial(self._event, "started")
                self._storer = threading.Thread(target=self._store_all, name="nbcache-store")
                self._storer.daemon = True
                self._storer.start()
                self._executor = executor
            return self._executor

    def _execute(self, job: Job) -> None:
        future = self._get_executor().submit(job)
        if not self._submitted:  # again, after the executor's own exit hook (made by its first
            self._submitted = True  # submit at the latest): an interrupted kernel's failure is
            # the interruption's doing
            atexit.unregister(self.close)
            atexit.register(self.close, cancel=True)
        future.add_done_callback(functools.partial(self._arrived, job))

    def _from_elsewhere(self, job: Job, record: Record) -> None:
        """Another build stored ``job``'s result: it is this run's result too."""
        self.waited.append(record)
        self._event("done", job.key)
        with self._local:
            self._done[job.key] = Outcome(record, None)
            self._local.notify_all()
        stored = self._futures[job.key]
        if not stored.done():
            stored.set_result(self._done[job.key])

    def _run_here(self, job: Job) -> None:
        executor = self._make_executor(0)
        try:
            outcome = _outcome_of(job, executor.submit(job))
        finally:
            executor.shutdown()
        self._store(job, outcome)

    def _store(self, job: Job, outcome: Outcome) -> Outcome:
        """Store a job's outcome, unless stored where it ran already."""
        return outcome if outcome.stored else store_outcome(self.store, job, outcome)

    @property
    def most_at_once(self) -> int | None:
        """The most notebooks the executor ran at the same time (None: it does not say)."""
        peak = getattr(self._executor, "peak_running", None)
        return peak if isinstance(peak, int) and peak > 0 else None

    def forks_every_kernel(self) -> bool:
        """True if the executor forks every kernel of this run from a warm process (so this
        process may fork while they run: it starts no other process meanwhile)."""
        check = getattr(self._executor, "forks_every_kernel", None)
        return bool(check()) if callable(check) else False

    def pending(self, key: str) -> bool:
        """True if ``key`` was submitted in this run (whether or not it has finished)."""
        if key in self._futures:
            return True
        if os.getpid() != self._owner:  # submitted by this forked reader itself
            return key in self._leases.new_results([key], errors=True)
        return False

    def know(self, states: Iterable[PageState]) -> None:
        """Which results each key had when planned: any other result found later was stored
        by another build sharing the store (see ``leases``)."""
        for state in states:
            if state.key and state.seen is not None:
                self.known.setdefault(state.key, set()).update(state.seen)

    # -- results ------------------------------------------------------------------------------

    def wait(self, key: str, on_record: Callable[[Record], Any] | None = None) -> Outcome | None:
        """The outcome produced for ``key`` in this run, waiting for it if needed.

        ``on_record`` is called (in the calling thread) for every record stored meanwhile, in
        any order. Returns None if the key was never submitted. In a forked reader the
        outcome's outputs are None: load them from the store.
        """
        if os.getpid() != self._owner:
            if not self.pending(key):
                return None
            record = self._wait_forked(key)
            return None if record is None else Outcome(record, None)
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
        """Every submitted job's record, as each is stored."""
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
        if cancel:
            self._leases.close()  # stop waiting for other builds
        if self._executor is not None:
            self._executor.shutdown(cancel=cancel)
        if self._storer is not None:
            self._inbox.put(None)
            self._storer.join()
            self._storer = None
        self._leases.close()
        for future in self._futures.values():  # waited for and never arrived: cancelled
            if not future.done():
                future.cancel()
        if self._lowered:
            self._lowered = False
            _restore_switch_interval()

    # -- internals ----------------------------------------------------------------------------

    def _arrived(self, job: Job, future: concurrent.futures.Future[Outcome]) -> None:
        self._inbox.put((job, future))  # in whatever thread resolved it: store elsewhere

    def _store_all(self) -> None:
        """The storing thread: each finished job's outcome goes to the store, in turn."""
        while True:
            item = self._inbox.get()
            if item is None:
                return
            job, future = item
            stored = self._futures[job.key]
            try:
                if future.cancelled():
                    raise concurrent.futures.CancelledError
                outcome = _outcome_of(job, future)
                if self._cancelling and not outcome.record.ok:  # its kernel was stopped
                    raise concurrent.futures.CancelledError
                done = self._store(job, outcome)
                record = done.record
                self._leases.stored(job.key)
            except BaseException as exc:  # cancelled, or the store broke
                if isinstance(exc, concurrent.futures.CancelledError):
                    stored.cancel()
                else:
                    stored.set_exception(exc)
                self._event("done", job.key)
                self._wake()
                continue
            self.executed.append(record)
            self._event("done", job.key)
            self._messages.put(record)
            with self._local:
                self._done[record.key] = done
                self._local.notify_all()
            stored.set_result(done)

    def _event(self, kind: str, key: str) -> None:
        if self._on_event is not None:
            with contextlib.suppress(Exception):  # showing progress never breaks a run
                self._on_event(kind, key, self._pages.get(key, ""), time.monotonic())

    def _wake(self) -> None:
        with self._local:
            self._local.notify_all()

    def _drain(self, on_record: Callable[[Record], Any] | None) -> None:
        if on_record is None:  # kept for the next caller that shows them
            return
        while True:
            try:
                record = self._messages.get_nowait()
            except queue.Empty:
                return
            on_record(record)

    def _wait_forked(self, key: str) -> Record | None:
        parent = os.getppid()

        def fresh() -> Record | None:  # stored since planning, by this build or another
            return self._leases.new_results([key], errors=True).get(key)

        return poll(fresh, keep_waiting=lambda: os.getppid() == parent)  # else the build died


def _outcome_of(job: Job, future: concurrent.futures.Future[Outcome]) -> Outcome:
    """The job's outcome; an executor that broke instead gives an ``internal`` error outcome
    (reported like any failure, retried next build), so a plug-in bug never hangs a build."""
    try:
        outcome = future.result()
    except concurrent.futures.CancelledError:
        raise
    except Exception as exc:
        failure = Failure(
            "internal",
            type(exc).__name__,
            f"the executor failed to run this notebook: {exc}",
        )
        return error_outcome(job, failure)
    if not isinstance(outcome, Outcome) or outcome.record.key != job.key:
        failure = Failure(
            "internal",
            "ExecutorError",
            "the executor returned something else than this job's Outcome",
        )
        return error_outcome(job, failure)
    return outcome


def _lower_switch_interval() -> bool:
    """Lower the GIL switch interval to SWITCH_INTERVAL; False if it was that low already."""
    with _switching:
        own = _lowered[0] if _lowered else sys.getswitchinterval()
        if own <= SWITCH_INTERVAL:
            return False  # set so low by the user: left alone
        _lowered.append(own)
        sys.setswitchinterval(SWITCH_INTERVAL)
        return True


def _restore_switch_interval() -> None:
    with _switching:
        own = _lowered.pop()
        if not _lowered and sys.getswitchinterval() == SWITCH_INTERVAL:
            sys.setswitchinterval(own)  # the last runner with an executor is done
