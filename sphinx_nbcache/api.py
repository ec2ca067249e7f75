"""The Python API: everything the ``nbcache`` command does, on the engine Sphinx uses.

::

    from sphinx_nbcache.api import open_cache

    with open_cache("docs") as cache:           # options from docs/conf.py, cache docs/.nbcache
        report = cache.execute(jobs=4)           # stale pages, in parallel
        for record in report.failed:
            print(record.page, record.failure.traceback)
        cache.prune(max_entries=200)

One implementation, two doors: pages are planned, executed, stored and merged by
:class:`~sphinx_nbcache.engine.core.Engine` exactly as in a build, so a page executed here is not
executed again by ``sphinx-build``. Sphinx is never imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import freeze  # noqa: F401  (registers the frozen folder as a source of results)
from .config import Options
from .engine.cache import ProjectCache, Target, open_project
from .engine.core import Engine
from .engine.report import ExecutionReport
from .engine.results import merged
from .errors import NotebookReadError, NotFoundError
from .notebooks.hashing import code_cells, code_sources
from .notebooks.merge import result_of
from .notebooks.pages import Page
from .notebooks.runnable import Runnable, key_of
from .plan.diff import NotebookDiff, diff_page
from .plan.parse import inspect_page
from .plan.verdicts import PageState
from .records import Outputs, Record
from .store import GRACE_SECONDS, ImportReport
from .workflows import kinds as _kinds  # noqa: F401  (the workflows' dependency kinds)

if TYPE_CHECKING:
    import nbformat

    from .engine.progress import OnEvent
    from .workflows.cached import CachedNotebook

__all__ = [
    "Cache",
    "ExecutionReport",
    "ImportReport",
    "NotebookDiff",
    "Page",
    "PageState",
    "Record",
    "Target",
    "open_cache",
]


def open_cache(
    docs_dir: str | Path | None = None,
    cache: str | Path | None = None,
    *,
    read_only: bool = False,
) -> Cache:
    """The cache of a docs folder, with the options of its ``conf.py`` (see
    :func:`~sphinx_nbcache.engine.cache.open_project` for the arguments)."""
    opened = open_project(docs_dir, cache, read_only=read_only)
    return Cache(project=opened.project, store=opened.store)


class Cache(ProjectCache):
    """A cache folder, and optionally the docs folder whose pages it caches: everything the
    ``nbcache`` command does."""

    def engine(self, options: Options | None = None) -> Engine:
        """An engine on this cache's store (one per run), whose local kernels read and call
        other notebooks through it (never with the store's credentials)."""
        from .workflows.link import serve_kernels

        engine = super().engine(options)
        engine.kernel_link = serve_kernels
        return engine

    def plan(self, targets: Iterable[Target] | None = None, force: bool = False) -> list[PageState]:
        """A verdict for each page: cached, failed, stale (with the reason), excluded..."""
        pages = self.pages(targets)
        names = {p.name for p in pages} if force else None
        return self.engine().plan(pages, force=names)

    def status(self, targets: Iterable[Target] | None = None) -> list[PageState]:
        """Like :meth:`plan`, with stale pages explained by what changed since cached."""
        states = self.plan(targets)
        for state in states:
            if state.stale and state.record is None:
                try:
                    change = self.diff(state.page)
                except NotFoundError:
                    continue
                state.reason = f"changed since cached: {change.summary()}"
        return states

    # -- executing ----------------------------------------------------------------------------

    def execute(
        self,
        targets: Iterable[Target] | None = None,
        *,
        jobs: int | None = None,
        force: bool = False,
        timeout: float | None = None,
        executor: str | None = None,
        on_record: Callable[[Record], Any] | None = None,
        on_start: Callable[[int], Any] | None = None,
        on_event: OnEvent | None = None,
    ) -> ExecutionReport:
        """Execute the stale pages (all pages with ``force``), ``jobs`` at a time.

        ``timeout`` (seconds per cell; 0 for none) replaces the configured one; a notebook's
        own ``metadata.execution.timeout`` still wins. ``executor`` replaces
        ``nbcache_executor``. ``on_start(n)`` is told how many will run, ``on_record(record)``
        is called as each finishes (from this thread); ``on_event(kind, key, page, when)`` is
        told as each is submitted, starts and is done (from any thread: see
        :class:`~sphinx_nbcache.engine.progress.Progress`).
        """
        options = self.options
        if timeout is not None:
            options = options._replace(timeout=timeout if timeout > 0 else None)
        if jobs:
            options = options._replace(jobs=max(1, jobs), max_jobs=max(1, jobs))
        if executor:
            options = options._replace(executor=executor)
        pages = self.pages(targets)
        engine = self.engine(options)
        engine.on_event = on_event
        states = engine.plan(pages, force={p.name for p in pages} if force else None)
        engine.mark_used(states)
        if on_start is not None:
            on_start(len({s.key for s in states if s.stale}))
        try:
            engine.start(states)
            for record in engine.as_completed():
                if on_record is not None:
                    on_record(record)
        except BaseException:
            engine.finish(cancel=True, evict=False)  # interrupted: stop the kernels
            raise
        engine.finish()
        return engine.report(states)

    def cache_notebook(self, target: Target, *, check: bool = True) -> Record:
        """Store the outputs of an already-executed notebook file under its key.

        With ``check``, every code cell with code must have an execution count. A cell whose
        outputs hold an error (and is not tagged ``raises-exception``) makes it a failed result.
        """
        run = self._read(target)
        notebook = run.notebook
        if check:
            for number, (cell, source) in enumerate(
                zip(code_cells(notebook), code_sources(notebook), strict=True), 1
            ):
                if source.strip() and cell.get("execution_count") is None:
                    raise NotebookReadError(
                        str(run.page.path),
                        f"code cell {number} was not executed (no execution count); execute "
                        "the notebook first, or pass check=False",
                    )
        record, outputs = result_of(notebook, run.key, run.options, page=run.page.name)
        return self.store.put(record, outputs)

    # -- records ------------------------------------------------------------------------------

    def records(self) -> list[Record]:
        """Every record, most recently used first."""
        return self.store.records()

    def get(self, record_id: str) -> Record:
        """The record whose id (or key) starts with ``record_id`` (a unique prefix, like git)."""
        wanted = record_id.strip().lower()
        if len(wanted) < 4:
            raise NotFoundError(f"record id {record_id!r}", "give at least 4 characters of it")
        matches = [r for r in self.records() if r.id.startswith(wanted)]
        if not matches:  # a key names its results too (one, unless it ran against other data)
            matches = [r for r in self.records() if r.key.startswith(wanted)]
        if not matches:
            raise NotFoundError(f"no record {record_id!r}", "see `nbcache list` for the ids")
        if len(matches) > 1:
            raise NotFoundError(
                f"record id {record_id!r} is ambiguous ({len(matches)} records)",
                "give more characters of it",
            )
        return matches[0]

    def find(self, id_or_page: Target) -> Record:
        """The record of a page (its current code, else its last cached version) or an id."""
        try:
            page = self.page(id_or_page)
        except NotFoundError:
            if isinstance(id_or_page, Page):
                raise
            return self.get(str(id_or_page))
        record = self.match(page) or self._previous(page)
        if record is None:
            raise NotFoundError(
                f"no cached result for {page.name}", "run `nbcache execute` or build the docs"
            )
        return record

    def match(self, target: Target | nbformat.NotebookNode) -> Record | None:
        """The newest record of a page's (or notebook's) current code, if the cache has one
        (whether or not what it depended on still holds: :meth:`current` says that)."""
        if isinstance(target, dict):
            import nbformat

            key = key_of(nbformat.from_dict(target), self.options)
        else:
            key = self._read(target).key
        return self.store.get(key)

    def current(self, target: Target) -> PageState:
        """The page's verdict, from the engine's one lookup: its current result (if any) in
        ``record``, or why it has none in ``reason``."""
        page = self.page(target)
        run, memo = inspect_page(page, self.options, self.project.md_config)
        state = PageState(page, "stale", run=run)
        self.engine().lookup.judge([(state, memo, False)])
        return state

    def outputs(self, record: Record) -> Outputs:
        return self.store.load_outputs(record)

    def merge(self, target: Target) -> nbformat.NotebookNode:
        """The page with the outputs of its current result, as a build would show it."""
        state = self.current(target)
        record = state.record
        if record is not None and record.blob is None and record.status == "error":
            raise NotFoundError(
                f"{state.page.name} has no outputs: its kernel did not start ({record.explain()})",
                "fix that (see `nbcache show` for the details), then run `nbcache execute`",
            )
        if record is None or state.verdict not in ("cached", "failed"):
            raise NotFoundError(
                f"no current result for {state.page.name} ({state.reason or state.verdict})",
                "run `nbcache execute` first (`nbcache why` says what changed)",
            )
        assert state.run is not None
        return merged(record, state.run.notebook, self.store.blobs, copy_nb=True)

    def read(self, target: Target, wait: float = 0.0) -> CachedNotebook:
        """The page's current result as a notebook with its scraps (see ``read_notebook``);
        waits up to ``wait`` seconds for a build that is executing it."""
        from .workflows.reads import read_from

        return read_from(self, self.page(target), wait)

    def diff(self, target: Target) -> NotebookDiff:
        """What differs between a page and its current result (or, with none, the newest
        result of its code, or its last cached version): its code, its execution settings,
        and what the result depended on."""
        state = self.current(target)
        run = state.run
        assert run is not None
        record = state.record or self._previous(state.page)
        if record is None:
            raise NotFoundError(
                f"no cached version of {state.page.name}",
                "run `nbcache execute` or build the docs first",
            )
        cached = self.outputs(record).sources if record.blob else None
        changed = state.reason if state.stale and record.key == run.key else None
        name = state.page.name
        return diff_page(name, run.notebook, run.options, run.key, record, cached, changed)

    def why(self, target: Target) -> PageState:
        """The page's verdict and its reason: ``stale`` because ``helpers.py changed
        (imported in code cell 2)``, ``cached`` with ``helpers.py and 4 packages unchanged``."""
        [state] = self.status([self.page(target)])
        return state

    def remove(self, record_ids: Iterable[str]) -> int:
        """Delete records by id (unique prefixes); returns how many."""
        return self.store.remove([self.get(i).id for i in record_ids])

    def invalidate(self, targets: Iterable[Target]) -> list[Record]:
        """Forget the results of these pages so they run again next time (jupyter-book#1633)."""
        doomed: dict[str, Record] = {}
        for page in self.pages(targets):
            for record in (self.match(page), self._previous(page)):
                if record is not None:
                    doomed[record.id] = record
        self.store.remove(doomed)
        return list(doomed.values())

    def clear(self) -> int:
        """Delete every record and blob; returns how many records."""
        removed = self.store.remove(r.id for r in self.records())
        self.store.forget_pages(self.store.page_keys())
        self.store.collect_garbage(grace=0)
        return removed

    def size_of(self, record: Record) -> int:
        return self.store.blobs.size(record.blob) if record.blob else 0

    def prune(
        self,
        max_entries: int | None = None,
        max_size: int | None = None,
        grace: float = GRACE_SECONDS,
    ) -> list[Record]:
        """Delete least recently used records until at most ``max_entries`` records and
        ``max_size`` bytes of outputs remain; returns the deleted records.

        Records used or stored in the last ``grace`` seconds are kept even over the limits, so
        a build running meanwhile never loses a result it is about to read.
        """
        before = {r.id: r for r in self.records()}
        evicted = self.store.evict(max_entries or 0, max_size or 0, grace=grace)
        return [before[k] for k in evicted if k in before]

    # -- moving caches ------------------------------------------------------------------------

    def export(self, target: str | Path) -> int:
        """Write the cache to a ``.tar.gz``; returns the number of records."""
        from .store import export_archive

        return export_archive(self.store, target)

    def import_archive(self, source: str | Path) -> ImportReport:
        """Merge an exported ``.tar.gz`` into this cache (newer results win, nothing unsafe)."""
        from .store import import_archive

        return import_archive(self.store, source)

    def import_jupyter_cache(self, path: str | Path) -> ImportReport:
        """Re-key and store every executed notebook of a jupyter-cache folder."""
        from .store import import_jupyter_cache

        return import_jupyter_cache(
            self.store, path, self.options, lambda uri: self.project.name_of(Path(uri))
        )

    # -- internals ----------------------------------------------------------------------------

    def _read(self, target: Target) -> Runnable:
        run, _memo = inspect_page(self.page(target), self.options, self.project.md_config)
        return run

    def _previous(self, page: Page) -> Record | None:
        """The last cached version of a page, whatever its code then."""
        key = self.store.page_keys().get(page.name)
        record = self.store.get(key) if key else None
        if record is not None:
            return record
        return next((r for r in self.records() if r.page == page.name), None)
