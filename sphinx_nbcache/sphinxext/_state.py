"""The state of one build: plan at ``env-get-outdated``, resolve each page at render time.

``BuildState.plan`` finds every notebook page, decides which are stale, starts executing them
and returns the unchanged pages Sphinx must read again. ``BuildState.resolve`` is called by the
myst-nb seam for each notebook page being read: it waits for the page's result (or takes it
from the cache), merges it, and reports failures as located warnings.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sphinx.errors import SphinxError
from sphinx.util import logging
from sphinx.util.display import status_iterator

from ..config import Options
from ..errors import CorruptCacheError, NotebookReadError
from ..hashing import notebook_key
from ..locate import cell_lines
from ..merge import merge_outputs
from ..plan import Memo, Page, PageState, execution_order, job_for, plan_pages, still_valid
from ..readers import is_notebook
from ..records import Record
from ..runner import Runner
from ..store import Store

__all__ = ["BuildState", "NotebookExecutionError", "Rendered"]

logger = logging.getLogger("sphinx_nbcache")

_TB_LINE = re.compile(r"^Cell In\[\d*\], line (\d+)", re.MULTILINE)
_SUBTYPES = {
    "cell": "failed",
    "timeout": "timeout",
    "dead_kernel": "kernel",
    "no_kernel": "kernel",
    "read": "read",
    "internal": "internal",
}


class NotebookExecutionError(SphinxError):
    """A notebook failed and ``nb_execution_raise_on_error`` is set."""

    category = "Notebook execution failed"


@dataclass(frozen=True)
class Rendered:
    """What a page's doctree was built from (kept in the environment)."""

    key: str | None
    status: str
    blob: str | None


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
        self.store = Store(options.cache_path)
        self.store.open()  # an unusable cache folder is one clear error at builder-inited
        self.runner = Runner(self.store, options.jobs, options.prestart)
        self.planned: dict[str, PageState] = {}
        self.order: list[str] = []  # stale pages, in the order they execute
        self.stats = Stats()

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
        pages = []
        for docname in sorted(env.found_docs):
            path = Path(env.doc2path(docname))
            memo = memos.get(docname)
            if memo is not None and memo.key is None and still_valid(memo, path):
                continue  # known not to be a notebook
            unknown = memo is None or memo.key is None or not still_valid(memo, path)
            if unknown and not is_notebook(path, self.options):
                memos[docname] = _not_a_notebook(path)
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
            if state.verdict in ("stale", "failed", "unreadable"):
                again.add(name)
            elif state.verdict == "cached" and state.record is not None:
                seen = rendered.get(name)
                if seen is None or seen.blob != state.record.blob:
                    again.add(name)
        ordered = execution_order([s for s in states if s.stale], self.store)
        self.order = [s.page.name for s in ordered]
        self.runner.submit_all(job_for(s, self.options, self.md_config) for s in ordered)
        self.stats.plan_seconds = time.perf_counter() - begin
        logger.debug(
            f"nbcache: planned {len(states)} notebook pages in {self.stats.plan_seconds:.3f} s"
        )
        return (again - to_read) & set(env.found_docs)

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
        env_rendered[docname] = Rendered(key, record.status, record.blob)
        if record.failure is not None:
            self._warn_failure(docname, path, notebook, record, planned)
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
        for attempt in range(3):  # cached -> (damaged) submitted -> waited for
            if self.runner.pending(key):
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
                return record, notebook if outputs is None else merge_outputs(notebook, outputs)
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
        self,
        docname: str,
        path: Path | None,
        notebook: Any,
        record: Record,
        planned: PageState | None,
    ) -> None:
        failure = record.failure
        assert failure is not None
        line = None
        if failure.cell_index is not None and path is not None:
            try:
                text = path.read_text(encoding="utf-8")
                line = cell_lines(notebook, text, is_json=path.suffix == ".ipynb")[
                    failure.cell_index
                ]
            except (OSError, UnicodeDecodeError, IndexError):
                line = None
            in_cell = _TB_LINE.search(failure.traceback)
            if line and in_cell:  # point at the failing line inside the cell
                line += int(in_cell.group(1)) - 1
        where = "the kernel"
        if failure.cell_index is not None:  # counted like the run times: code cells only
            cells = notebook.cells[: failure.cell_index + 1]
            where = f"code cell {sum(1 for c in cells if c.get('cell_type') == 'code')}"
        message = f"notebook execution failed in {where}: {failure.summary()}"
        if record.status == "failed" and planned is not None and planned.verdict == "failed":
            message += (
                " (cached failure, not re-executed: change the code or set"
                " nbcache_retry_failed = True to retry)"
            )
        if self.options.show_traceback and failure.traceback:
            message += "\n" + failure.traceback.rstrip()
        logger.warning(
            message,
            location=(docname, line) if line else docname,
            type="nbcache",
            subtype=_SUBTYPES.get(failure.kind, "failed"),
        )
        if self.options.raise_on_error:
            raise NotebookExecutionError(f"{docname}: {failure.summary()}")

    def warn_unreadable(self, docname: str) -> bool:
        """Warn about a page that cannot be read; True if it was unreadable."""
        state = self.planned.get(docname)
        if state is None or state.verdict != "unreadable" or state.error is None:
            return False
        _warn_read_error(docname, state.error)
        return True

    # -- reporting ----------------------------------------------------------------------------

    def log_ran(self, record: Record) -> None:
        status = (
            "ok" if record.ok else f"failed: {record.failure.summary() if record.failure else ''}"
        )
        logger.info(f"nbcache: ran {record.page} in {record.runtime:.2f} s ({status})")

    def finish(self, cancel: bool) -> None:
        """Stop executing, keep the cache within its limits, print the summary line."""
        self.runner.drain(self.log_ran)
        self.runner.close(cancel=cancel)
        try:  # what was used was marked when planning; executed results when stored
            evicted = self.store.evict(self.options.max_entries, self.options.max_size)
            if evicted:
                logger.info(f"nbcache: evicted {len(evicted)} least recently used results")
        except Exception as exc:  # never fail a finished build over bookkeeping
            logger.debug(f"nbcache: could not evict: {exc}")
        executed = self.runner.executed
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
        self.store.close()


def _warn_read_error(docname: str, error: NotebookReadError) -> None:
    logger.warning(
        f"cannot read this notebook: {error.reason}; it is shown without execution",
        location=docname,
        type="nbcache",
        subtype="read",
    )


def _not_a_notebook(path: Path) -> Memo:
    stat = path.stat()
    return Memo(stat.st_mtime_ns, stat.st_size, None, "", False, False)
