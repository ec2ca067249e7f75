"""The engine: plan -> order -> submit -> store -> wait -> merge -> report, free of Sphinx.

One :class:`Engine` serves one build, one CLI command or one API call. It is made from the
options, with the store and the executor injected (by default both come from the options:
``nbcache_database`` / ``nbcache_blobs`` and ``nbcache_executor``). The Sphinx glue, the Python
API and the command line all drive this object; none of them plans, orders, executes, stores
or merges on its own::

    engine = Engine(options, root=docs)
    states = engine.plan(pages)               # find stale (one batch lookup)
    engine.mark_used(states)                  # LRU: what this run will show
    engine.start(states)                      # order, then submit the stale ones
    for record in engine.as_completed(): ...  # stored as each finishes
    record, merged = engine.result(...)       # wait if needed, then merge (a page being read)
    report = engine.report()                  # what ran, failed, came from the cache
    engine.finish()                           # stop kernels, evict, close
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Options
from .errors import CorruptCacheError, NotebookExecutionError
from .pages import Page
from .store import StoreLocation

if TYPE_CHECKING:  # loaded on first use: a build with nothing changed needs none of them
    import nbformat

    from .execute import Executor, Outcome
    from .freshness import FileMemo, Freshness
    from .memo import Memo
    from .records import Outputs, Record
    from .report import ExecutionReport
    from .runner import Runner
    from .store import Store
    from .store._blobs import Blobs
    from .verdicts import PageState

__all__ = ["Engine", "ExecutorFactory", "Warn"]

#: How the engine reports a problem at a page: (page, message, subtype).
Warn = Callable[[str, str, str], Any]
#: Makes the executor: given how many kernels to start ahead of need.
ExecutorFactory = Callable[[int], "Executor"]


class Engine:
    """Notebook execution for one run, on an injected store and executor."""

    def __init__(
        self,
        options: Options,
        *,
        root: Path | None = None,
        md_config: Any = None,
        store: Store | None = None,
        executor: ExecutorFactory | None = None,
        warn: Warn | None = None,
        files: FileMemo | None = None,
    ) -> None:
        self.options = options
        self.root = root  # the project folder: jobs name page folders relative to it
        self.md_config = md_config
        self.warn: Warn = warn or (lambda page, message, subtype: None)
        self.planned: dict[str, PageState] = {}
        self.order: list[str] = []  # stale pages, in the order they execute
        self.plan_seconds = 0.0  # finding stale pages
        self.waited_seconds = 0.0  # waiting for results while merging
        self.started = time.perf_counter()
        self.planned_at: float | None = None  # wall clock of the first plan (for leases)
        o = options
        self.location = StoreLocation(o.cache_path, o.database, o.blobs, o.blobs_options)
        self._store = store
        self._blobs: Blobs | None = None
        self._opened = False
        self._executor_factory = executor or self._default_executor
        self._files = files  # path -> (mtime, size, sha256) of files results depend on
        self._freshness: Freshness | None = None
        self._runner: Runner | None = None

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
        """The store's change token; the embedded SQLite store answers without being opened
        (a no-op build never loads the database layer)."""
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
            from .freshness import Freshness

            self._freshness = Freshness(self.options, self.root, self._files)
        return self._freshness

    # -- plan ---------------------------------------------------------------------------------

    def plan(
        self,
        pages: Iterable[Page],
        memos: MutableMapping[str, Memo] | None = None,
        must_read: set[str] | None = None,
        force: set[str] | None = None,
    ) -> list[PageState]:
        """A verdict for every page (see :func:`~sphinx_nbcache.plan.plan_pages`)."""
        from .plan import plan_pages

        begin = time.perf_counter()
        if self.planned_at is None:
            self.planned_at = time.time()
        states = plan_pages(
            pages,
            self.options,
            self.store,
            memos,
            must_read,
            force,
            self.md_config,
            self.freshness,
        )
        self.planned.update((state.page.name, state) for state in states)
        if self.restore([s for s in states if s.verdict in ("cached", "failed")]):
            # files other pages read may be back: look at the stale ones again (no re-reading)
            again = {s.page.name for s in states if s.stale and s.record is not None}
            if again:
                redone = {
                    s.page.name: s
                    for s in plan_pages(
                        [s.page for s in states if s.page.name in again],
                        self.options,
                        self.store,
                        memos,
                        None,
                        force,
                        self.md_config,
                        self.freshness,
                    )
                }
                states = [redone.get(s.page.name, s) for s in states]
                self.planned.update(redone)
        self.plan_seconds += time.perf_counter() - begin
        return states

    def restore(self, states: Iterable[PageState]) -> int:
        """Put back the files the notebooks of these pages wrote, where they are missing;
        returns how many. A read-only store restores nothing."""
        if self.store.read_only:
            return 0
        from .artifacts import restore_artifacts

        count = 0
        for state in states:
            record = state.record
            if record is None or not record.artifacts:
                continue
            restored, notes = restore_artifacts(
                record, state.page.path.parent, self.root, self.blobs, self.freshness
            )
            count += len(restored)
            for note in notes:
                self.warn(state.page.name, note, "artifact")
        return count

    def mark_used(self, states: Iterable[PageState]) -> None:
        """Mark the results these pages will show as used now (eviction by a concurrent run
        spares them) and remember which page shows which: one transaction."""
        used = {
            s.record.id: s.page.name
            for s in states
            if s.record is not None and s.verdict in ("cached", "failed")
        }
        self.store.touch(used, used)

    # -- order and submit ---------------------------------------------------------------------

    def start(self, states: Iterable[PageState]) -> list[PageState]:
        """Submit the stale pages among ``states``, longest-running first; returns them in
        the order they were submitted."""
        from .plan import execution_order

        stale = [s for s in states if s.stale]
        if not stale:
            return []
        ordered = execution_order(stale, self.store, self.warn)
        self.order = [s.page.name for s in ordered]
        runner = self._get_runner(prestart=max(0, len(ordered) - self.options.jobs))
        self._know(runner, ordered)
        runner.submit_all(self._job(state) for state in ordered)
        return ordered

    def submit(self, state: PageState) -> None:
        """Submit one page (a page found stale only while reading it)."""
        runner = self._get_runner(prestart=0)
        self._know(runner, [state])
        runner.submit(self._job(state))

    @staticmethod
    def _know(runner: Runner, states: Iterable[PageState]) -> None:
        """Tell the runner which results each key had when planned: any other result it
        finds later was stored by another build sharing the store (see ``leasing``)."""
        for state in states:
            if state.key and state.seen is not None:
                runner.known.setdefault(state.key, set()).update(state.seen)

    def _job(self, state: PageState) -> Any:
        from .jobs import job_for

        return job_for(state, self.options, self.root, self.md_config, self.freshness)

    def _get_runner(self, prestart: int) -> Runner:
        if self._runner is None:
            from .runner import Runner

            wanted = min(self.options.prestart, prestart)
            self._runner = Runner(
                self.store,
                self._executor_factory,
                wanted,
                self.options.lease_seconds,
                since=self.planned_at,
            )
        return self._runner

    def _default_executor(self, prestart: int) -> Executor:
        from .execute import load_executor

        o = self.options
        return load_executor(
            o.executor,
            **{
                **o.executor_options,
                "jobs": o.jobs,
                "max_jobs": o.max_jobs,
                "prestart": prestart,
                "url": o.executor_url,
                "token": o.executor_token,
                "env": o.executor_env,
                "fork_kernels": o.fork_kernels,
                "kernel_threads": o.kernel_threads,
            },
        )

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
        page: Page,
        key: str,
        notebook: nbformat.NotebookNode,
        own: Options,
        on_record: Callable[[Record], Any] | None = None,
    ) -> tuple[Record, nbformat.NotebookNode]:
        """The result for ``key`` and ``notebook`` merged with it (in place): waited for if it
        is running, else looked up, else (a damaged or vanished entry) executed now."""
        from .merge import assume_language, merge_outputs
        from .verdicts import PageState

        for attempt in range(3):  # cached -> (damaged) submitted -> waited for
            outputs: Outputs | None = None
            if self.pending(key):
                outcome = self.wait(key, on_record)
                assert outcome is not None
                record, outputs = outcome.record, outcome.outputs
            else:
                found = self._planned_record(page.name, key) if attempt == 0 else None
                found = found or self.store.get(key)
                if found is None or found.status == "error" or attempt == 1:
                    state = PageState(page, "stale", key=key, options=own, notebook=notebook)
                    self.submit(state)
                    continue
                record = found
            try:
                if outputs is None and record.blob is not None:
                    outputs = self.store.load_outputs(record)
                if outputs is None:  # it never ran
                    assume_language(notebook, record.kernel)
                    return record, notebook
                return record, merge_outputs(notebook, outputs, where=f"result {record.id[:10]}")
            except CorruptCacheError as exc:
                self.warn(
                    page.name,
                    f"damaged cache entry ({exc.reason}); executing the notebook again",
                    "cache",
                )
                self.store.remove([record.id])
        raise NotebookExecutionError(page.name, "could not obtain a result for the notebook")

    def _planned_record(self, name: str, key: str) -> Record | None:
        """The record looked up when planning (saves a query per page)."""
        planned = self.planned.get(name)
        if planned is None or planned.key != key or planned.verdict not in ("cached", "failed"):
            return None
        return planned.record

    # -- report -------------------------------------------------------------------------------

    def report(self, states: Iterable[PageState] | None = None) -> ExecutionReport:
        """What this run did with ``states`` (default: every page planned)."""
        from .records import Failure, Record
        from .report import ExecutionReport

        states = list(self.planned.values() if states is None else states)
        done = {r.key: r for r in (*self.waited, *self.executed)}
        keys = dict.fromkeys(s.key for s in states if s.stale and s.key)
        ran = [done[k] for k in keys if k in done]
        unreadable = []
        for state in states:
            if state.verdict == "unreadable":
                reason = state.error.reason if state.error is not None else state.reason
                failure = Failure("read", "NotebookReadError", reason)
                unreadable.append(
                    Record(
                        "",
                        "error",
                        None,
                        failure=failure,
                        page=state.page.name,
                        created=time.time(),
                    )
                )
        return ExecutionReport(
            succeeded=tuple(r for r in ran if r.status == "ok"),
            failed=tuple(r for r in ran if r.status == "failed"),
            errored=(*(r for r in ran if r.status == "error"), *unreadable),
            skipped=tuple(s for s in states if not s.stale and s.verdict != "unreadable"),
            states=tuple(states),
        )

    def finish(self, cancel: bool = False, evict: bool = True, close: bool = True) -> list[str]:
        """Stop executing (or cancel), keep the store within its limits, close it (unless
        not ``close``: a store shared with other runs); returns the ids of evicted results."""
        evicted: list[str] = []
        try:
            if self._runner is not None:
                self._runner.close(cancel=cancel)
            if self._freshness is not None and not cancel:
                self._freshness.kernels.remember()  # the environment's answers, for next time
            if evict and self._opened and (self.options.max_entries or self.options.max_size):
                evicted = self.store.evict(self.options.max_entries, self.options.max_size)
        finally:
            if self._store is not None and close:
                self._store.close()
        return evicted
