"""The engine: plan -> order -> submit -> store -> wait -> merge -> report, free of Sphinx.

One :class:`Engine` serves one build, one CLI command, one API call, or a server's calls. It
is made from the options, with the store and the executor injected (by default both come from
the options: ``nbcache_database`` / ``nbcache_blobs`` and ``nbcache_executor``). The Sphinx
glue, the Python API, the workflows and the command line all drive this object; none of them
plans, orders, executes, stores or merges on its own::

    engine = Engine(options, root=docs)
    states = engine.plan(pages)               # find stale (one batch lookup)
    engine.mark_used(states)                  # LRU: what this run will show
    engine.start(states)                      # order, then submit the stale ones
    for record in engine.as_completed(): ...  # stored as each finishes
    record, merged = engine.result(run)       # wait if needed, then merge (a page being read)
    report = engine.report()                  # what ran, failed, came from the cache
    engine.finish()                           # stop kernels, evict, close
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Options
from ..errors import CorruptCacheError, NotebookExecutionError
from ..notebooks.pages import Page
from ..store import StoreLocation

if TYPE_CHECKING:  # loaded on first use: a build with nothing changed needs none of them
    import nbformat

    from ..execute import Executor, Job, Outcome
    from ..notebooks.readers import MdConfig
    from ..notebooks.runnable import Runnable
    from ..plan.freshness import FileMemo, Freshness
    from ..plan.lookup import Lookup
    from ..plan.memo import Memo
    from ..plan.verdicts import PageState
    from ..records import Outputs, Record
    from ..store import Blobs, Store
    from .jobs import KernelDoor
    from .progress import OnEvent
    from .report import ExecutionReport
    from .runner import Runner

__all__ = ["Engine", "MakeExecutor", "Warn"]

#: How the engine reports a problem at a page: (page, message, subtype).
Warn = Callable[[str, str, str], Any]
#: Makes the run's executor, given how many kernels to start ahead of need.
MakeExecutor = Callable[[int], "Executor"]


class Engine:
    """Notebook execution for one run, on an injected store and executor."""

    def __init__(
        self,
        options: Options,
        *,
        root: Path | None = None,
        md_config: MdConfig = None,
        store: Store | None = None,
        executor: MakeExecutor | None = None,
        warn: Warn | None = None,
        files: FileMemo | None = None,
        on_event: OnEvent | None = None,
    ) -> None:
        self.options = options
        self.on_event = on_event  # told of each job's progress; set before the first submit
        self.root = root  # the project folder: jobs name page folders relative to it
        self.md_config = md_config
        self.warn: Warn = warn or (lambda page, message, subtype: None)
        self.planned: dict[str, PageState] = {}  # by state id (a page's name, or a variant's)
        self.order: list[str] = []  # stale pages, in the order they execute
        self.plan_seconds = 0.0  # finding stale pages
        self.waited_seconds = 0.0  # waiting for results while merging
        self.started = time.perf_counter()
        self.planned_at: float | None = None  # wall clock of the first plan (for leases)
        self.location = StoreLocation.of(options)
        self._store, self._own_store = store, store is None  # own: an executor may reopen it
        self._blobs: Blobs | None = None
        self._opened = False  # the store: opened on first use
        self._make_executor = executor or functools.partial(_default_executor, options)
        self._files = files  # path -> (mtime, size, sha256) of files results depend on
        self._freshness: Freshness | None = None
        self._lookup: Lookup | None = None
        self._runner: Runner | None = None
        self._making = threading.Lock()  # one runner, whatever thread asks first
        #: the door local kernels read and call through (``workflows.link.serve_kernels``)
        self.kernel_link: Callable[[Engine], KernelDoor] | None = None
        self._link: KernelDoor | None = None

    # -- the store ----------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The store, opened on first use (:class:`StoreError` if it cannot be used)."""
        if self._store is None:
            self._store = self.location.open()
        if not self._opened:
            self._store.open()
            self._opened = True
        return self._store

    def token(self) -> str | None:
        """The store's change token (SQLite: without opening it; a no-op loads no database)."""
        if self._store is None and self.location.sqlite_folder is not None:
            return self.location.local_token()
        return self.store.token()

    @property
    def blobs(self) -> Blobs:
        """The store's blobs, without opening its database."""
        if self._store is not None:
            return self._store.blobs
        if self._blobs is None:
            self._blobs = self.location.open_blobs()
        return self._blobs

    def describe_store(self) -> str:
        """Where the results are kept (no credentials), without opening the store."""
        return self._store.describe() if self._store is not None else self.location.describe()

    def take_notices(self) -> list[str]:
        """The store's one-line notices (damage repaired, migration), each given once."""
        if self._store is None:
            return []
        notices = list(self._store.notices)
        self._store.notices.clear()
        return notices

    @property
    def freshness(self) -> Freshness:
        """Checks stored results against the files and environment now."""
        if self._freshness is None:
            from ..plan.freshness import Freshness

            self._freshness = Freshness(self.options, self.root, self._files, self.md_config)
        return self._freshness

    @property
    def lookup(self) -> Lookup:
        """The one way to a current result (key -> stored -> still valid? -> verdict)."""
        if self._lookup is None:
            from ..plan.lookup import Lookup

            o, f = self.options, self.freshness
            self._lookup = Lookup(o, f, lambda k: self.store.lookup(k), lambda: self.store)
        return self._lookup

    # -- plan ---------------------------------------------------------------------------------

    def plan(
        self,
        pages: Iterable[Page],
        memos: MutableMapping[str, Memo] | None = None,
        must_read: set[str] | None = None,
        force: set[str] | None = None,
    ) -> list[PageState]:
        """A verdict for every page (see :func:`~sphinx_nbcache.plan.stale.plan_pages`)."""
        from ..plan.stale import plan_pages

        begin = time.perf_counter()
        if self.planned_at is None:
            self.planned_at = time.time()
        pages = list(pages)
        o, lookup, md_config = self.options, self.lookup, self.md_config
        states = plan_pages(pages, o, self.store, memos, must_read, force, md_config, lookup)
        self.planned.update((state.id, state) for state in states)
        if self.restore([s for s in states if s.verdict in ("cached", "failed")]):
            # files other pages read may be back: look at the stale ones again (no re-reading)
            again = [s.page for s in states if s.stale and s.record is not None]
            if again:
                redone = plan_pages(again, o, self.store, memos, None, force, md_config, lookup)
                by_id = {s.id: s for s in redone}
                states = [by_id.get(s.id, s) for s in states]
                self.planned.update(by_id)
        self.plan_seconds += time.perf_counter() - begin
        return states

    def current(self, run: Runnable, force: bool = False) -> PageState:
        """The verdict on a variant or a call (planned with the pages of this run)."""
        state = self.lookup.current(run, force)
        self.planned[state.id] = state
        return state

    def restore(self, states: Iterable[PageState]) -> int:
        """Put back the files the notebooks of these pages wrote, where they are missing;
        returns how many. A read-only store restores nothing."""
        if self.store.read_only:
            return 0
        from .artifacts import restore_all

        allowed = self.options.artifact_patterns
        return restore_all(states, self.root, self.blobs, self.freshness, self.warn, allowed)

    def mark_used(self, states: Iterable[PageState]) -> None:
        """Mark the results these pages will show as used now (eviction by a concurrent run
        spares them) and remember which page shows which: one transaction."""
        used = {
            s.record.id: s.page.name
            for s in states
            if s.record is not None and s.verdict in ("cached", "failed") and s.variant == ""
        }
        self.store.touch(used, used)

    # -- order and submit ---------------------------------------------------------------------

    def start(self, states: Iterable[PageState]) -> list[PageState]:
        """Submit the stale pages and variants among ``states``, in the order they should run
        (:func:`~sphinx_nbcache.plan.ordering.execution_order`); returns them in that order."""
        stale = [s for s in states if s.stale and not self.pending(s.key or "")]
        if not stale:
            return []
        from ..plan.ordering import execution_order

        ordered = execution_order(stale, self.store, self.root, self.warn)
        self.order.extend(s.page.name for s in ordered if s.variant == "")
        runner = self._get_runner(prestart=max(0, len(ordered) - self.options.jobs))
        runner.know(ordered)
        runner.submit_all(self._job(state) for state in ordered)
        return ordered

    def submit(self, state: PageState) -> None:
        """Submit one page, variant or call (found stale only while reading, or forced)."""
        runner = self._get_runner(prestart=self.options.prestart)
        runner.know([state])
        runner.submit(self._job(state))

    def _job(self, state: PageState) -> Job:
        from .jobs import job_for

        link = self._link_address()
        return job_for(state, self.options, self.freshness, self.root, self.md_config, link)

    def _link_address(self) -> dict[str, str]:
        """Where this run's local kernels ask the build for results ({}: no such door)."""
        if self.kernel_link is None or self.options.executor != "local":
            return {}
        with self._making:
            if self._link is None:
                self._link = self.kernel_link(self)
        return self._link.address()

    def _get_runner(self, prestart: int) -> Runner:
        with self._making:
            return self._make_runner(prestart)

    def _make_runner(self, prestart: int) -> Runner:
        if self._runner is None:
            from .runner import Runner

            wanted = min(self.options.prestart, prestart)
            self._runner = Runner(
                self.store,
                self._make_executor,
                wanted,
                self.options.lease_seconds,
                since=self.planned_at,
                on_event=self.on_event,
                location=self.location if self._own_store else None,
            )
        return self._runner

    # -- wait ---------------------------------------------------------------------------------

    def pending(self, key: str) -> bool:
        return self._runner is not None and self._runner.pending(key)

    @property
    def most_at_once(self) -> int | None:
        """The most notebooks executing at the same time in this run (None: not known)."""
        return self._runner.most_at_once if self._runner is not None else None

    def may_fork_while_executing(self) -> bool:
        """True if this process may fork (``sphinx-build -j`` readers) while notebooks still
        execute: every kernel comes from a warm process, none is started here meanwhile."""
        return self._runner is not None and self._runner.forks_every_kernel()

    def wait(self, key: str, on_record: Callable[[Record], Any] | None = None) -> Outcome | None:
        """The outcome of ``key`` in this run, waiting for it (None: never submitted)."""
        if self._runner is None:
            return None
        begin = time.perf_counter()
        try:
            return self._runner.wait(key, on_record)
        finally:
            self.waited_seconds += time.perf_counter() - begin

    def as_completed(self) -> Iterator[Record]:
        """Every submitted page's record, as each is stored."""
        return iter(()) if self._runner is None else self._runner.as_completed()

    def drain(self, on_record: Callable[[Record], Any]) -> None:
        if self._runner is not None:
            self._runner.drain(on_record)

    @property
    def executed(self) -> list[Record]:
        """Results executed by this run."""
        return [] if self._runner is None else self._runner.executed

    @property
    def waited(self) -> list[Record]:
        """Results of stale pages that another build sharing the store executed meanwhile."""
        return [] if self._runner is None else self._runner.waited

    # -- merge --------------------------------------------------------------------------------

    def result(
        self,
        run: Runnable,
        notebook: nbformat.NotebookNode | None = None,
        on_record: Callable[[Record], Any] | None = None,
        *,
        copy_nb: bool = False,
    ) -> tuple[Record, nbformat.NotebookNode]:
        """The current result of ``run`` and ``notebook`` (default: what runs) merged with
        it: waited for if it is running, else the one planned or looked up, else (none, or a
        damaged entry) executed now."""
        from .results import merged

        target = run.notebook if notebook is None else notebook
        for attempt in range(3):  # current -> (damaged) submitted -> waited for
            outputs: Outputs | None = None
            if self.pending(run.key):
                outcome = self.wait(run.key, on_record)
                assert outcome is not None
                record, outputs = outcome.record, outcome.outputs
            else:
                state = self._planned(run) if attempt == 0 else None
                if state is None:
                    state = self.current(run)
                if state.record is None or state.stale or attempt == 1:
                    state.verdict = "stale"
                    self.submit(state)
                    continue
                record = state.record
            try:
                return record, merged(record, target, self.blobs, outputs, copy_nb=copy_nb)
            except CorruptCacheError as exc:
                self.warn(
                    run.page.name,
                    f"damaged cache entry ({exc.reason}); executing the notebook again",
                    "cache",
                )
                self.store.remove([record.id])
        raise NotebookExecutionError(run.page.name, "could not obtain a result for the notebook")

    def _planned(self, run: Runnable) -> PageState | None:
        """The state decided when planning, if it is for this code (saves a query a page)."""
        from ..plan.verdicts import PageState

        planned = self.planned.get(PageState(run.page, "stale", run=run).id)
        if planned is None or planned.key != run.key:
            return None
        return planned if planned.verdict in ("cached", "failed", "stale") else None

    # -- report -------------------------------------------------------------------------------

    def report(self, states: Iterable[PageState] | None = None) -> ExecutionReport:
        """What this run did with ``states`` (default: every page and variant planned)."""
        from .report import build_report

        states = list(self.planned.values() if states is None else states)
        wall = time.perf_counter() - self.started
        return build_report(
            states, self.executed, self.waited, wall=wall, most_at_once=self.most_at_once
        )

    def finish(self, cancel: bool = False, evict: bool = True, close: bool = True) -> list[str]:
        """Stop executing (or cancel), keep the store within its limits, close it (unless
        not ``close``: a store shared with other runs); returns the ids of evicted results."""
        evicted: list[str] = []
        try:
            if self._runner is not None:
                self._runner.close(cancel=cancel)
            if self._link is not None:
                self._link.close()
                self._link = None
            if self._freshness is not None and not cancel:
                self._freshness.kernels.remember()  # the environment's answers, for next time
            if evict and self._opened and (self.options.max_entries or self.options.max_size):
                evicted = self.store.evict(self.options.max_entries, self.options.max_size)
        finally:
            if self._store is not None and close:
                self._store.close()
        return evicted


def _default_executor(options: Options, prestart: int) -> Executor:
    """The executor the options name (imported here: a no-op build loads no executor)."""
    from .jobs import make_executor

    return make_executor(options, prestart)
