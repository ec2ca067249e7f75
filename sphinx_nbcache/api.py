"""The Python API: everything the ``nbcache`` command does, on the core Sphinx uses.

::

    from sphinx_nbcache.api import open_cache

    with open_cache("docs") as cache:           # options from docs/conf.py, cache docs/.nbcache
        report = cache.execute(jobs=4)           # stale pages, in parallel
        for record in report.failed:
            print(record.page, record.failure.traceback)
        cache.prune(max_entries=200)

One implementation, two doors: pages are planned by :mod:`~sphinx_nbcache.plan`, executed by
:class:`~sphinx_nbcache.runner.Runner`, kept by :class:`~sphinx_nbcache.store.Store` and merged
by :mod:`~sphinx_nbcache.merge`, exactly as in a build, so a page executed here is not executed
again by ``sphinx-build``. Sphinx is never imported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import nbformat

from .config import DEFAULT_CACHE_DIR, Options
from .diff import NotebookDiff, diff_sources
from .errors import NotebookReadError, NotFoundError
from .hashing import EXECUTION_TAGS, code_sources, kernel_name
from .merge import extract_outputs, merge_outputs
from .plan import Page, PageState, inspect_page, job_for, plan_pages
from .project import Project, find_docs_dir
from .records import Failure, Outputs, Record
from .runner import Runner
from .store import GRACE_SECONDS, Store
from .store._archive import ImportReport, export_archive, import_archive
from .store._jupyter_cache import import_jupyter_cache

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


@dataclass(frozen=True)
class ExecutionReport:
    """What :meth:`Cache.execute` did; each failure's traceback is ``record.failure.traceback``."""

    succeeded: tuple[Record, ...]
    failed: tuple[Record, ...]  # the notebook's code failed (cached like a success)
    errored: tuple[Record, ...]  # could not run: no kernel, unreadable page (not cached)
    skipped: tuple[PageState, ...]  # cached already, excluded, or execution off

    @property
    def cached_failures(self) -> tuple[PageState, ...]:
        """Pages not run because their cached result is a failure."""
        return tuple(s for s in self.skipped if s.verdict == "failed")

    @property
    def ok(self) -> bool:
        return not (self.failed or self.errored or self.cached_failures)


def open_cache(docs_dir: str | Path | None = None, cache: str | Path | None = None) -> Cache:
    """The cache of a docs folder, with the options of its ``conf.py``.

    ``docs_dir`` defaults to the nearest folder holding a ``conf.py`` at or above the current
    one (none: default options, ``.nbcache`` here). ``cache`` overrides ``nbcache_path``.
    """
    root = Path(docs_dir) if docs_dir is not None else find_docs_dir(Path.cwd())
    if root is not None and not root.is_dir():
        raise NotFoundError(str(root), "no such folder; give the folder holding conf.py")
    return Cache(project=Project.load(root, cache))


class Cache:
    """A cache folder, and optionally the docs folder whose pages it caches."""

    def __init__(
        self, path: str | Path = DEFAULT_CACHE_DIR, *, project: Project | None = None
    ) -> None:
        if project is None:
            options = Options(cache_path=Path(path).resolve())
            project = Project(None, options)
        self.project = project
        self.store = Store(project.options.cache_path)

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
        return plan_pages(
            pages, self.options, self.store, force=names, md_config=self.project.md_config
        )

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
        on_record: Callable[[Record], Any] | None = None,
        on_start: Callable[[int], Any] | None = None,
    ) -> ExecutionReport:
        """Execute the stale pages (all pages with ``force``), ``jobs`` at a time.

        ``timeout`` (seconds per cell; 0 for none) replaces the configured one; a notebook's
        own ``metadata.execution.timeout`` still wins. ``on_start(n)`` is told how many will
        run, ``on_record(record)`` is called as each finishes (from this thread).
        """
        options = self.options
        if timeout is not None:
            options = dataclasses.replace(options, timeout=timeout if timeout > 0 else None)
        pages = self.pages(targets)
        names = {p.name for p in pages} if force else None
        states = plan_pages(
            pages, options, self.store, force=names, md_config=self.project.md_config
        )
        stale = [s for s in states if s.stale]
        errored = [_read_error(s) for s in states if s.verdict == "unreadable"]
        skipped = tuple(s for s in states if not s.stale and s.verdict != "unreadable")
        workers = max(1, jobs or options.jobs)
        if on_start is not None:
            on_start(len({s.key for s in stale}))
        runner = Runner(self.store, workers, min(workers, max(0, len(stale) - workers)))
        try:
            runner.submit_all(job_for(s, options, self.project.md_config) for s in stale)
            for record in runner.as_completed():
                if on_record is not None:
                    on_record(record)
        except BaseException:
            runner.close(cancel=True)  # interrupted: stop the kernels
            raise
        runner.close()
        used = {s.key: s.page.name for s in skipped if s.key and s.record is not None}
        self.store.touch(used, used)
        done = {r.key: r for r in runner.executed}
        ran = [done[k] for k in dict.fromkeys(s.key for s in stale if s.key) if k in done]
        return ExecutionReport(
            succeeded=tuple(r for r in ran if r.status == "ok"),
            failed=tuple(r for r in ran if r.status == "failed"),
            errored=(*(r for r in ran if r.status == "error"), *errored),
            skipped=skipped,
        )

    def cache_notebook(self, target: Target, *, check: bool = True) -> Record:
        """Store the outputs of an already-executed notebook file under its key.

        With ``check``, every code cell with code must have an execution count. A cell whose
        outputs hold an error (and is not tagged ``raises-exception``) makes it a failed result.
        """
        page = self.page(target)
        notebook, own, memo = inspect_page(page, self.options, self.project.md_config)
        assert memo.key is not None
        code = [c for c in notebook.cells if c.get("cell_type") == "code"]
        if check:
            for number, (cell, source) in enumerate(
                zip(code, code_sources(notebook), strict=True), 1
            ):
                if source.strip() and cell.get("execution_count") is None:
                    raise NotebookReadError(
                        str(page.path),
                        f"code cell {number} was not executed (no execution count); execute "
                        "the notebook first, or pass check=False",
                    )
        failure = None if own.allow_errors else _error_in(notebook)
        record = Record(
            key=memo.key,
            status="ok" if failure is None else "failed",
            blob=None,
            kernel=kernel_name(notebook, own),
            timeout=own.timeout,
            failure=failure,
            page=page.name,
        )
        return self.store.put(record, extract_outputs(notebook))

    # -- records ------------------------------------------------------------------------------

    def records(self) -> list[Record]:
        """Every record, most recently used first."""
        return self.store.records()

    def get(self, record_id: str) -> Record:
        """The record whose key starts with ``record_id`` (a unique prefix, like git)."""
        wanted = record_id.strip().lower()
        if len(wanted) < 4:
            raise NotFoundError(f"record id {record_id!r}", "give at least 4 characters of it")
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
        merged: nbformat.NotebookNode = merge_outputs(notebook, self.outputs(record), copy_nb=True)
        return merged

    def diff(self, target: Target) -> NotebookDiff:
        """What differs between a page and its cached result (or its last cached version)."""
        page = self.page(target)
        notebook, own, memo = inspect_page(page, self.options, self.project.md_config)
        key = memo.key or ""
        record = self.store.get(key) or self._previous(page)
        if record is None:
            raise NotFoundError(
                f"no cached version of {page.name}", "run `nbcache execute` or build the docs first"
            )
        cached = self.outputs(record).sources if record.blob else None
        now = code_sources(notebook)
        cells = diff_sources(cached, now) if cached is not None else ()
        settings: list[tuple[str, Any, Any]] = []
        kernel = kernel_name(notebook, own)
        if record.kernel and record.kernel != kernel:
            settings.append(("kernel", record.kernel, kernel))
        if record.timeout != own.timeout:
            settings.append(("timeout", record.timeout, own.timeout))
        note = ""
        if record.key != key and cached is not None and not cells:
            tags = ", ".join(sorted(EXECUTION_TAGS))
            note = f"same code: an execution tag ({tags}) or allow_errors changed"
        return NotebookDiff(
            page.name, key, record.key, cells, tuple(settings), cached is not None, note
        )

    def remove(self, record_ids: Iterable[str]) -> int:
        """Delete records by id (unique key prefixes); returns how many."""
        return self.store.remove([self.get(i).key for i in record_ids])

    def invalidate(self, targets: Iterable[Target]) -> list[Record]:
        """Forget the results of these pages so they run again next time (jupyter-book#1633)."""
        doomed: dict[str, Record] = {}
        for page in self.pages(targets):
            for record in (self.match(page), self._previous(page)):
                if record is not None:
                    doomed[record.key] = record
        self.store.remove(doomed)
        return list(doomed.values())

    def clear(self) -> int:
        """Delete every record and blob; returns how many records."""
        removed = self.store.remove(r.key for r in self.records())
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
        before = {r.key: r for r in self.records()}
        evicted = self.store.evict(max_entries or 0, max_size or 0, grace=grace)
        return [before[k] for k in evicted if k in before]

    # -- moving caches ------------------------------------------------------------------------

    def export(self, target: str | Path) -> int:
        """Write the cache to a ``.tar.gz``; returns the number of records."""
        return export_archive(self.store, target)

    def import_archive(self, source: str | Path) -> ImportReport:
        """Merge an exported ``.tar.gz`` into this cache (newer results win, nothing unsafe)."""
        return import_archive(self.store, source)

    def import_jupyter_cache(self, path: str | Path) -> ImportReport:
        """Re-key and store every executed notebook of a jupyter-cache folder."""
        return import_jupyter_cache(self.store, path, self.options, self._uri_name)

    # -- internals ----------------------------------------------------------------------------

    def _key(self, target: Target | nbformat.NotebookNode) -> str:
        if isinstance(target, dict):
            from .hashing import notebook_key

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


def _read_error(state: PageState) -> Record:
    reason = state.error.reason if state.error is not None else state.reason
    failure = Failure("read", "NotebookReadError", reason)
    return Record("", "error", None, failure=failure, page=state.page.name)


def _error_in(notebook: nbformat.NotebookNode) -> Failure | None:
    """The first error output of a cell not tagged ``raises-exception``."""
    for index, cell in enumerate(notebook.cells):
        if cell.get("cell_type") != "code":
            continue
        if "raises-exception" in (cell.get("metadata", {}).get("tags") or ()):
            continue
        for output in cell.get("outputs", ()):
            if output.get("output_type") == "error":
                traceback = "\n".join(output.get("traceback", ()))
                return Failure(
                    "cell", output.get("ename", ""), output.get("evalue", ""), traceback, index
                )
    return None
