"""The state of one build: plan at ``env-get-outdated``, resolve each page at render time.

``BuildState.plan`` finds every notebook page, decides which are stale, starts executing them
and returns the unchanged pages Sphinx must read again. ``BuildState.resolve`` is called by the
myst-nb seam for each notebook page being read: it waits for the page's result (or takes it
from the cache), merges it, and reports failures as located warnings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sphinx.errors import SphinxError
from sphinx.util import logging
from sphinx.util.display import status_iterator

from ..config import Options
from ..errors import CorruptCacheError
from ..hashing import notebook_key
from ..plan import (
    Memo,
    Page,
    PageState,
    execution_order,
    job_for,
    plan_pages,
    still_valid,
)
from ..readers import is_notebook
from ..store import load_blob, read_token
from ._memory import not_a_notebook, plan_from_memory, shown
from ._warnings import warn_failure, warn_read_error

if TYPE_CHECKING:  # loaded on first use: a build with nothing changed needs none of them
    from ..records import Record
    from ..runner import Runner
    from ..store import Store

__all__ = ["BuildState", "NotebookExecutionError", "Rendered"]

logger = logging.getLogger("sphinx_nbcache")

#: at most this many changed pages are planned without the database (each is parsed; more
#: are cheaper through the database's table of file contents already read)
_FROM_MEMORY_LIMIT = 8


class NotebookExecutionError(SphinxError):
    """A notebook failed and ``nb_execution_raise_on_error`` is set."""

    category = "Notebook execution failed"


@dataclass(frozen=True)
class Rendered:
    """What a page's doctree was built from (kept in the environment)."""

    key: str | None
    status: str
    blob: str | None
    created: float = 0.0  # of the result shown (0: not known)
    runtime: float = 0.0


@dataclass
class Stats:
    plan_seconds: float = 0.0  # finding stale pages
    waited_seconds: float = 0.0  # reading blocked on results (main process only)
    started: float = field(default_factory=time.perf_counter)


class BuildState:
    """Everything sphinx-nbcache knows during one build of one app."""

    def __init__(self, options: Options, md_config: Any = None) -> None:
        self.options = options
        self.md_config = md_config
        self.planned: dict[str, PageState] = {}
        self.order: list[str] = []  # stale pages, in the order they execute
        self.stats = Stats()
        self.unchanged = False  # nothing changed since the last build: nothing is read
        self.reading = 0  # pages Sphinx reads in this build (env-before-read-docs)
        self._token: str | None = None  # the cache's change token when planning began
        self._store: Store | None = None
        self._runner: Runner | None = None
        self._from_memory: set[str] = set()  # planned from the environment, not the database

    @property
    def store(self) -> Store:
        """The cache, opened on first use (:class:`StoreError` if it cannot be used)."""
        if self._store is None:
            from ..store import Store

            store = Store(self.options.cache_path)
            store.open()
            self._store = store
        return self._store

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            from ..runner import Runner

            self._runner = Runner(self.store, self.options.jobs, self.options.prestart)
        return self._runner

    # -- env-get-outdated ---------------------------------------------------------------------

    def plan(
        self,
        env: Any,
        memos: dict[str, Memo],
        rendered: dict[str, Rendered],
        to_read: set[str],
        removed: set[str],
    ) -> set[str]:
        """Decide every notebook page; start the stale ones; return pages to read again."""
        begin = time.perf_counter()
        for docname in removed:
            memos.pop(docname, None)
        self._token = read_token(self.options.cache_path)  # before anything is looked up
        same_token = self._token is not None and self._token == env.nbcache_token
        if same_token and len(to_read) <= _FROM_MEMORY_LIMIT:
            states = plan_from_memory(env, memos, rendered, to_read, self.options, self.md_config)
            if states is not None:  # the cache has not changed, nor the code of any page
                self.unchanged = not to_read  # every verdict of the last build still holds
                self.planned.update((state.page.name, state) for state in states)
                self._from_memory.update(state.page.name for state in states)
                self.stats.plan_seconds = time.perf_counter() - begin
                logger.debug("nbcache: planned from the environment; cache not opened")
                return set()
        env.nbcache_token = None  # until settle() finds the pages agree with the cache again
        pages = []
        for docname in sorted(env.found_docs):
            path = Path(env.doc2path(docname))
            memo = memos.get(docname)
            if memo is not None and memo.key is None and still_valid(memo, path):
                continue  # known not to be a notebook
            unknown = memo is None or memo.key is None or not still_valid(memo, path)
            if unknown and not is_notebook(path, self.options):
                memos[docname] = not_a_notebook(path)
                continue
            pages.append(Page(docname, path))
        states = plan_pages(
            pages,
            self.options,
            self.store,
            memos,
            must_read=to_read,
            md_config=self.md_config,
        )
        for notice in self.store.notices:
            logger.warning(notice, type="nbcache", subtype="cache")
        self.store.notices.clear()
        # mark what this build will read as used now (eviction by a concurrent build spares
        # it) and remember which page has which key: one transaction
        used = {s.key: s.page.name for s in states if s.key and s.verdict in ("cached", "failed")}
        self.store.touch(used, used)
        again: set[str] = set()
        for state in states:
            name = state.page.name
            self.planned[name] = state
            if not shown(state, rendered.get(name)):
                again.add(name)
        stale = [s for s in states if s.stale]
        ordered = execution_order(stale, self.store) if stale else []
        self.order = [s.page.name for s in ordered]
        if ordered:
            self.runner.submit_all(job_for(s, self.options, self.md_config) for s in ordered)
        self.stats.plan_seconds = time.perf_counter() - begin
        logger.debug(
            f"nbcache: planned {len(states)} notebook pages in {self.stats.plan_seconds:.3f} s"
        )
        return (again - to_read) & set(env.found_docs)

    def settle(self, env: Any) -> bool:
        """After reading (``env-updated``): if every notebook page's doctree shows what the
        cache holds, keep the cache's change token in the environment; the next build that
        finds it unchanged, and no page changed, then never opens the cache. True if the
        environment now keeps a token it did not have (it must be saved to count)."""
        if self.unchanged:
            return False  # the token kept in the environment still holds
        token = read_token(self.options.cache_path)
        if token is None or token == env.nbcache_token:
            return False
        if token == self._token:  # no result changed since planning: the verdicts hold
            states = list(self.planned.values())
        else:  # results were stored or removed meanwhile: look again (no file is re-read)
            memos: dict[str, Memo] = env.nbcache_memos
            found = env.found_docs
            pages = [
                Page(name, Path(env.doc2path(name)))
                for name, memo in sorted(memos.items())
                if memo.key is not None and name in found
            ]
            states = plan_pages(pages, self.options, self.store, memos, md_config=self.md_config)
        rendered: dict[str, Rendered] = env.nbcache_rendered
        if all(shown(state, rendered.get(state.page.name)) for state in states):
            env.nbcache_token = token
            return True
        return False

    def read_order(self, docnames: list[str]) -> list[str]:
        """Pages that need no execution first, then stale ones in the order they execute."""
        reading = set(docnames)
        stale = [d for d in self.order if d in reading]
        stale_set = set(stale)
        return [d for d in docnames if d not in stale_set] + stale

    def execute_all(self, verbosity: int) -> None:
        """Wait for every planned execution, with Sphinx's progress display."""
        total = sum(1 for s in self.planned.values() if s.stale)
        if not total:
            return
        records = self.runner.as_completed()
        for record in status_iterator(
            records,
            "executing notebooks... ",
            "darkgreen",
            total,
            verbosity,
            stringify_func=lambda r: r.page,
        ):
            self.log_ran(record)
        self.runner.drain(lambda _: None)

    # -- the myst-nb seam ---------------------------------------------------------------------

    def leave_to_mystnb(self, env: Any) -> None:
        """The page being read is myst-nb's to execute (inline mode): nothing cached."""
        env.nbcache_rendered[env.docname] = Rendered(None, "off", None)

    def resolve(
        self, env: Any, path: Path | None, notebook: Any, mode: str
    ) -> tuple[Any, dict[str, Any] | None]:
        """The notebook to render for the page being read and myst-nb's execution metadata."""
        docname: str = env.docname
        env_rendered: dict[str, Rendered] = env.nbcache_rendered
        own = self.options.for_notebook(notebook.get("metadata", {}))
        if mode == "off" or (path is not None and own.is_excluded(path)):
            env_rendered[docname] = Rendered(None, "off", None)
            return notebook, None
        code = [c for c in notebook.cells if c.get("cell_type") == "code"]
        if mode == "auto" and all(c.get("outputs") for c in code):
            env_rendered[docname] = Rendered(None, "as-is", None)
            return notebook, None
        planned = self.planned.get(docname)
        if planned is not None and planned.verdict == "unreadable":  # warned; never execute
            env_rendered[docname] = Rendered(None, "off", None)
            return notebook, None
        key = planned.key if planned is not None and planned.key else notebook_key(notebook, own)
        record, merged = self._result_for(docname, key, notebook, own, path)
        env_rendered[docname] = Rendered(
            key, record.status, record.blob, record.created, record.runtime
        )
        if record.failure is not None:
            cached = planned is not None and planned.verdict == "failed"  # not re-executed
            self._warn_failure(
                docname, path, notebook, record, cached and record.status == "failed"
            )
        return merged, {
            "mtime": record.created,
            "runtime": record.runtime,
            "method": "cache",
            "succeeded": record.ok,
            "error": record.failure.ename if record.failure else None,
            "traceback": None,  # reported by us, located at the cell; not in a reports file
        }

    def _result_for(
        self, docname: str, key: str, notebook: Any, own: Options, path: Path | None
    ) -> tuple[Record, Any]:
        """Wait for, or look up, or (last resort) execute the result for ``key``; returns it
        with ``notebook`` merged (in place: ``merge_outputs`` checks before it changes)."""
        if docname in self._from_memory:
            self._from_memory.discard(docname)
            planned = self.planned[docname]
            assert planned.record is not None
            from ..merge import merge_outputs

            try:
                stored = load_blob(self.options.cache_path, planned.record.blob)
                return planned.record, merge_outputs(notebook, stored)
            except CorruptCacheError:  # removed since planning, or damaged: ask the database
                planned.record = None
        for attempt in range(3):  # cached -> (damaged) submitted -> waited for
            if self._runner is not None and self._runner.pending(key):
                begin = time.perf_counter()
                outcome = self.runner.wait(key, on_record=self.log_ran)
                self.stats.waited_seconds += time.perf_counter() - begin
                assert outcome is not None
                record, outputs = outcome.record, outcome.outputs
            else:
                found = self._planned_record(docname, key) if attempt == 0 else None
                found = found or self.store.get(key)
                if found is None or found.status == "error" or attempt == 1:
                    state = PageState(
                        Page(docname, path or Path(docname)),
                        "stale",
                        key=key,
                        options=own,
                        notebook=notebook,
                    )
                    self.runner.submit(job_for(state, self.options, self.md_config))
                    continue
                record, outputs = found, None
            if outputs is None and record.blob is not None:
                try:
                    outputs = self.store.load_outputs(record)
                except CorruptCacheError as exc:
                    logger.warning(
                        f"damaged cache entry ({exc.reason}); executing the notebook again",
                        location=docname,
                        type="nbcache",
                        subtype="cache",
                    )
                    self.store.remove([key])
                    continue
            try:
                if outputs is None:
                    return record, notebook
                from ..merge import merge_outputs

                return record, merge_outputs(notebook, outputs)
            except CorruptCacheError:
                self.store.remove([key])
        raise NotebookExecutionError(f"{docname}: could not obtain a result for the notebook")

    def _planned_record(self, docname: str, key: str) -> Record | None:
        """The record looked up when planning (saves a query per page)."""
        planned = self.planned.get(docname)
        if planned is None or planned.key != key or planned.verdict not in ("cached", "failed"):
            return None
        return planned.record

    def _warn_failure(
        self, docname: str, path: Path | None, notebook: Any, record: Record, cached: bool
    ) -> None:
        warn_failure(docname, path, notebook, record, cached, self.options.show_traceback)
        if self.options.raise_on_error and record.failure is not None:
            raise NotebookExecutionError(f"{docname}: {record.failure.summary()}")

    def warn_unreadable(self, docname: str) -> bool:
        """Warn about a page that cannot be read; True if it was unreadable."""
        state = self.planned.get(docname)
        if state is None or state.verdict != "unreadable" or state.error is None:
            return False
        warn_read_error(docname, state.error)
        return True

    # -- reporting ----------------------------------------------------------------------------

    def log_ran(self, record: Record) -> None:
        status = (
            "ok" if record.ok else f"failed: {record.failure.summary() if record.failure else ''}"
        )
        logger.info(f"nbcache: ran {record.page} in {record.runtime:.2f} s ({status})")

    def finish(self, cancel: bool) -> None:
        """Stop executing, keep the cache within its limits, print the summary line."""
        if self._runner is not None:
            self._runner.drain(self.log_ran)
            self._runner.close(cancel=cancel)
        if self._store is not None and not self.unchanged:
            try:  # what was used was marked when planning; executed results when stored
                evicted = self.store.evict(self.options.max_entries, self.options.max_size)
                if evicted:
                    logger.info(f"nbcache: evicted {len(evicted)} least recently used results")
            except Exception as exc:  # never fail a finished build over bookkeeping
                logger.debug(f"nbcache: could not evict: {exc}")
        executed = self._runner.executed if self._runner is not None else []
        failed = sum(1 for r in executed if not r.ok)
        cached = sum(1 for s in self.planned.values() if s.verdict in ("cached", "failed"))
        if executed or cached:
            kernel_time = sum(r.runtime for r in executed)
            wall = time.perf_counter() - self.stats.started
            logger.info(
                f"nbcache: {len(executed)} executed ({failed} failed, {kernel_time:.1f} s of "
                f"kernel time), {cached} from cache; {wall:.1f} s since planning, of which "
                f"{self.stats.plan_seconds:.2f} s planning and {self.stats.waited_seconds:.1f} s "
                "reading waited for results"
            )
        if self._store is not None:
            self._store.close()
