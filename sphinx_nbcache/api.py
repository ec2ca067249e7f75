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
from types import TracebackType
from typing import TYPE_CHECKING, Any

import nbformat

from .config import DEFAULT_CACHE_DIR, Options
from .engine.core import Engine
from .engine.report import ExecutionReport
from .errors import NotebookReadError, NotFoundError
from .notebooks.hashing import code_cells, code_sources, kernel_name, notebook_key
from .notebooks.merge import merge_outputs, outputs_of
from .notebooks.pages import Page
from .notebooks.project import Project, find_docs_dir
from .plan.diff import NotebookDiff, diff_page
from .plan.freshness import declared_patterns
from .plan.parse import inspect_page
from .plan.verdicts import PageState
from .records import Failure, Outputs, Record
from .store import GRACE_SECONDS, ImportReport, Store, open_store

if TYPE_CHECKING:
    from .workflows.reads import CachedNotebook

__all__ = [
    "Cache",
    "ExecutionReport",
    "ImportReport",
    "NotebookDiff",
    "Page",
    "PageState",
    "Record",
    "open_cache",
]

Target = str | Path | Page


def open_cache(
    docs_dir: str | Path | None = None,
    cache: str | Path | None = None,
    *,
    read_only: bool = False,
) -> Cache:
    """The cache of a docs folder, with the options of its ``conf.py``.

    ``docs_dir`` defaults to the nearest folder holding a ``conf.py`` at or above the current
    one (none: default options, ``.nbcache`` here). ``cache`` overrides ``nbcache_path``.
    ``read_only`` creates and repairs nothing (a cache that is not there reads as empty).
    """
    root = Path(docs_dir) if docs_dir is not None else find_docs_dir(Path.cwd())
    if root is not None and not root.is_dir():
        raise NotFoundError(
            f"no folder {str(root)!r}", "give the docs folder (the one holding conf.py)"
        )
    return Cache(project=Project.load(root, cache), read_only=read_only)


class Cache:
    """A cache folder, and optionally the docs folder whose pages it caches."""

    def __init__(
        self,
        path: str | Path = DEFAULT_CACHE_DIR,
        *,
        project: Project | None = None,
        read_only: bool = False,
    ) -> None:
        if project is None:
            options = Options(cache_path=Path(path).resolve())
            project = Project(None, options)
        self.project = project
        o = project.options
        self.store: Store = open_store(
            o.cache_path, o.database, o.blobs, o.blobs_options, read_only=read_only
        )

    def engine(self, options: Options | None = None) -> Engine:
        """An engine on this cache's store (one per run)."""
        return Engine(
            options or self.options,
            root=self.project.root,
            md_config=self.project.md_config,
            store=self.store,
        )

    def notices(self) -> list[str]:
        """The store's one-line notices (damage found or repaired, migration), each once."""
        notices = list(self.store.notices)
        self.store.notices.clear()
        return notices

    @property
    def options(self) -> Options:
        return self.project.options

    @property
    def path(self) -> Path:
        return self.options.cache_path

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- pages --------------------------------------------------------------------------------

    def pages(self, targets: Iterable[Target] | None = None) -> list[Page]:
        """Pages: every notebook of the docs folder, or the files / folders / names given."""
        if targets is None:
            return self.project.pages()
        found: dict[str, Page] = {}
        for target in targets:
            for page in self._expand(target):
                found.setdefault(page.name, page)
        return list(found.values())

    def page(self, target: Target) -> Page:
        """One page, given as a path, a page name (``examples/demo``) or a :class:`Page`."""
        if isinstance(target, Page):
            return target
        path = Path(target)
        if path.is_file():
            return self.project.page(path)
        if self.project.root is not None:
            if (self.project.root / path).is_file():
                return self.project.page(self.project.root / path)
            for page in self.project.pages():
                if page.name == Path(str(target)).as_posix().removesuffix(path.suffix):
                    return page
        raise NotFoundError(
            f"no page {str(target)!r}", "give the path of a notebook file or a page name"
        )

    def _expand(self, target: Target) -> list[Page]:
        if not isinstance(target, Page) and Path(target).is_dir():
            return Project.load(Path(target), self.path).pages()
        return [self.page(target)]

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
    ) -> ExecutionReport:
        """Execute the stale pages (all pages with ``force``), ``jobs`` at a time.

        ``timeout`` (seconds per cell; 0 for none) replaces the configured one; a notebook's
        own ``metadata.execution.timeout`` still wins. ``executor`` replaces
        ``nbcache_executor``. ``on_start(n)`` is told how many will run, ``on_record(record)``
        is called as each finishes (from this thread).
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
        page = self.page(target)
        notebook, own, memo = inspect_page(page, self.options, self.project.md_config)
        assert memo.key is not None
        if check:
            for number, (cell, source) in enumerate(
                zip(code_cells(notebook), code_sources(notebook), strict=True), 1
            ):
                if source.strip() and cell.get("execution_count") is None:
                    raise NotebookReadError(
                        str(page.path),
                        f"code cell {number} was not executed (no execution count); execute "
                        "the notebook first, or pass check=False",
                    )
        failure = _error_in(notebook)
        record = Record(
            key=memo.key,
            status="ok" if failure is None or own.allow_errors else "failed",
            blob=None,
            kernel=kernel_name(notebook, own),
            timeout=own.timeout,
            failure=None if own.allow_errors else failure,
            page=page.name,
            allow_errors=own.allow_errors,
            raised=failure is not None,
        )
        return self.store.put(record, outputs_of(notebook))

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
        """The record for a page's (or notebook's) current code, if the cache has it."""
        return self.store.get(self._key(target))

    def outputs(self, record: Record) -> Outputs:
        return self.store.load_outputs(record)

    def merge(self, target: Target) -> nbformat.NotebookNode:
        """The page with the outputs of its cached result (the page's current code)."""
        page = self.page(target)
        notebook, _own, memo = inspect_page(page, self.options, self.project.md_config)
        record = self.store.get(memo.key or "")
        if record is None:
            raise NotFoundError(
                f"no cached result for the current code of {page.name}",
                "run `nbcache execute` first (`nbcache diff` shows what changed)",
            )
        if record.blob is None and record.status == "error":
            summary = record.failure.summary() if record.failure else "it could not run"
            raise NotFoundError(
                f"{page.name} has no outputs: its kernel did not start ({summary})",
                "fix that (see `nbcache show` for the details), then run `nbcache execute`",
            )
        merged: nbformat.NotebookNode = merge_outputs(
            notebook, self.outputs(record), copy_nb=True, where=f"result {record.id[:10]}"
        )
        return merged

    def read(self, target: Target, wait: float = 0.0) -> CachedNotebook:
        """The page's current result as a notebook with its scraps (see ``read_notebook``);
        waits up to ``wait`` seconds for a build that is executing it."""
        from .workflows.reads import read_from

        return read_from(self, self.page(target), wait)

    def diff(self, target: Target) -> NotebookDiff:
        """What differs between a page and its cached result (or its last cached version):
        its code, its execution settings, and what the result depended on."""
        page = self.page(target)
        notebook, own, memo = inspect_page(page, self.options, self.project.md_config)
        key = memo.key or ""
        found = self.store.lookup([key]).get(key, [])
        engine = self.engine()
        declared = declared_patterns(page.name, self.options)
        folder = page.path.parent
        fresh = [r for r in found if engine.freshness.stale_reason(r, folder, declared) is None]
        newest = fresh or found
        record = newest[0] if newest else self._previous(page)
        if record is None:
            raise NotFoundError(
                f"no cached version of {page.name}", "run `nbcache execute` or build the docs first"
            )
        cached = self.outputs(record).sources if record.blob else None
        changed = None
        if record.key == key and not fresh:
            changed = engine.freshness.stale_reason(record, folder, declared)
        return diff_page(page.name, notebook, own, key, record, cached, changed)

    def why(self, target: Target) -> PageState:
        """The page's verdict and its reason: ``stale`` because ``helpers.py changed
        (imported in code cell 2)``, ``cached`` with ``3 files and 4 packages unchanged``..."""
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
        from .store.jupyter_cache import import_jupyter_cache

        return import_jupyter_cache(self.store, path, self.options, self._uri_name)

    # -- internals ----------------------------------------------------------------------------

    def _key(self, target: Target | nbformat.NotebookNode) -> str:
        if isinstance(target, dict):
            notebook = nbformat.from_dict(target)
            return notebook_key(notebook, self.options.for_notebook(notebook.get("metadata", {})))
        _notebook, _own, memo = inspect_page(
            self.page(target), self.options, self.project.md_config
        )
        return memo.key or ""

    def _previous(self, page: Page) -> Record | None:
        """The last cached version of a page, whatever its code then."""
        key = self.store.page_keys().get(page.name)
        record = self.store.get(key) if key else None
        if record is not None:
            return record
        return next((r for r in self.records() if r.page == page.name), None)

    def _uri_name(self, uri: str) -> str:
        return self.project.name_of(Path(uri))


def _error_in(notebook: nbformat.NotebookNode) -> Failure | None:
    """The first error output of a cell not tagged ``raises-exception``."""
    for index, cell in enumerate(notebook.cells):
        if cell.get("cell_type") != "code":
            continue  # indices count every cell: the failure's cell_index does
        if "raises-exception" in (cell.get("metadata", {}).get("tags") or ()):
            continue
        for output in cell.get("outputs", ()):
            if output.get("output_type") == "error":
                traceback = "\n".join(output.get("traceback", ()))
                return Failure(
                    "cell", output.get("ename", ""), output.get("evalue", ""), traceback, index
                )
    return None
