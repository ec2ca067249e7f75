"""Calling notebooks as functions, answered from the cache: ``run`` and ``run_notebook``.

::

    from sphinx_nbcache import run

    total = run("analysis/model.ipynb", year=2024, region="north")   # -> the `return` value

A call prepares the notebook (:mod:`sphinx_nbcache.notebooks.functions`), keys it (code, execution
options, parameters), and looks the key up: a result whose recorded dependencies still hold
answers without a kernel. Otherwise the engine executes it in a fresh kernel, exactly as a
page, and stores it (under the page's name, as a variant of its parameters). Identical calls
in flight in one process are joined; across processes the lease of the key is (as for pages).

Works inside a notebook too (one notebook calling another): paths are relative to the current
folder, and during a build the build's own cache is used. A failure raises
:class:`~sphinx_nbcache.errors.NotebookCallError` (``ename``, ``evalue``, ``traceback``) or
:class:`~sphinx_nbcache.errors.CallTimeoutError`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CallTimeoutError, NotebookCallError, NotebookExecutionError, NotFoundError
from ..notebooks.functions import SKIP_TAG, Signature, prepare, returned, signature

if TYPE_CHECKING:
    import nbformat

    from ..api import Cache
    from ..engine.core import Engine
    from ..notebooks.pages import Page
    from ..records import Record

__all__ = ["CallResult", "Caller", "call_variant", "current_result", "run", "run_notebook"]


@dataclass(frozen=True)
class CallResult:
    """One call: its value, and how it was obtained."""

    value: Any  #: what the ``return`` cell evaluated to (JSON types), or None
    cached: bool  #: answered from the cache (no kernel ran for this call)
    record: Record  #: the stored result
    notebook: nbformat.NotebookNode  #: the notebook that ran, with its outputs
    seconds: float  #: wall time of this call
    page: str  #: the notebook's page name in its project
    parameters: dict[str, Any]  #: the parameters given

    def to_json(self) -> dict[str, Any]:
        """What the REST endpoint answers."""
        return {
            "result": self.value,
            "cached": self.cached,
            "record": self.record.id,
            "seconds": round(self.seconds, 4),
        }


def call_variant(parameters: Mapping[str, Any]) -> str:
    """The ``pages`` row a call's result is kept as (distinct from a rendered variant's)."""
    from ..store._store import variant_of

    return "call:" + (variant_of(parameters) or hashlib.sha256(b"{}").hexdigest())


class Caller:
    """Calls the notebooks of one cache's project; thread-safe. Identical calls (same key)
    in flight at once run once: the later ones wait for the first."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self._lock = threading.Lock()
        self._running: dict[str, concurrent.futures.Future[CallResult]] = {}

    def page(self, target: str | Path) -> Page:
        page = self.cache.page(target)
        if not page.path.is_file():
            raise NotFoundError(f"no notebook {str(target)!r}", "give the path of a notebook")
        return page

    def signature(self, target: str | Path) -> Signature:
        """The parameters ``target`` declares and whether it returns a value."""
        from ..plan.parse import inspect_page

        page = self.page(target)
        notebook, _own, _memo = inspect_page(page, self.cache.options, self.cache.project.md_config)
        return signature(notebook, page.name)

    def call(
        self,
        target: str | Path,
        parameters: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        force: bool = False,
        executing: threading.Semaphore | None = None,
    ) -> CallResult:
        """Call ``target`` with ``parameters``; from the cache unless ``force``.

        ``timeout`` is the per-cell limit (default: the notebook's own). ``executing`` is
        acquired around an execution (not around a cache hit): it bounds how many run at once.
        """
        from ..notebooks.hashing import notebook_key
        from ..plan.parse import inspect_page
        from .reads import _depend_on, _unrecorded

        begin = time.perf_counter()
        given = dict(parameters or {})
        page = self.page(target)
        cache = self.cache
        with _unrecorded():  # inside a notebook: the caller depends on its code (below)
            notebook, own, _memo = inspect_page(page, cache.options, cache.project.md_config)
        if timeout is not None:
            own = own._replace(timeout=timeout)
        prepared = prepare(notebook, given, path=page.name, call=True)
        key = notebook_key(prepared, own, given)
        if not force:
            with _unrecorded():
                found = self._lookup(page, key, notebook, own.timeout)
            if found is not None:
                if "_nbcache_trace" in sys.modules:
                    _depend_on(page, found, cache.options)
                return self._answer(page, prepared, notebook, found, True, begin, given)
        with self._lock:
            running = self._running.get(key)
            mine = running is None
            if running is None:
                running = self._running[key] = concurrent.futures.Future()
        if not mine:
            joined = running.result()
            return dataclasses.replace(joined, seconds=time.perf_counter() - begin)
        try:
            if executing is not None:
                executing.acquire()
            try:
                with _unrecorded():
                    record = self._execute(page, key, prepared, own, given)
                if "_nbcache_trace" in sys.modules:
                    _depend_on(page, record, cache.options)
            finally:
                if executing is not None:
                    executing.release()
            result = self._answer(page, prepared, notebook, record, False, begin, given)
        except BaseException as exc:
            running.set_exception(exc)
            raise
        else:
            running.set_result(result)
            return result
        finally:
            with self._lock:
                self._running.pop(key, None)

    def _lookup(self, page: Page, key: str, notebook: Any, timeout: float | None) -> Record | None:
        engine = self.cache.engine()
        return current_result(engine, page, key, notebook, timeout)

    def _execute(
        self,
        page: Page,
        key: str,
        prepared: nbformat.NotebookNode,
        own: Any,
        given: dict[str, Any],
    ) -> Record:
        from ..plan.verdicts import PageState

        engine = self.cache.engine(self.cache.options)
        state = PageState(
            page,
            "stale",
            key=key,
            options=own,
            notebook=prepared,
            parameters=given,
            variant=call_variant(given),
        )
        state.seen = tuple(r.id for r in self.cache.store.lookup([key]).get(key, []))
        engine.planned_at = time.time()
        try:
            engine.submit(state)
            outcome = engine.wait(key)
        finally:
            engine.finish(evict=False, close=False)
        if outcome is None:
            raise NotebookExecutionError(page.name, "the call did not run")
        return outcome.record

    def _answer(
        self,
        page: Page,
        prepared: nbformat.NotebookNode,
        source: nbformat.NotebookNode,
        record: Record,
        cached: bool,
        begin: float,
        given: dict[str, Any],
    ) -> CallResult:
        from ..notebooks.merge import assume_language, merge_outputs

        failure = record.failure
        if record.status == "error" or (failure is not None and record.blob is None):
            reason = failure.summary() if failure is not None else "it could not run"
            raise NotebookExecutionError(page.name, f"the notebook could not run: {reason}")
        if record.blob is not None:
            merged = merge_outputs(
                prepared, self.cache.outputs(record), copy_nb=True, where=f"result {record.id[:10]}"
            )
        else:
            merged = prepared
            assume_language(merged, record.kernel)
        if failure is not None:
            cell = _source_cell(source, failure.code_cell, bool(given))
            error = CallTimeoutError if failure.kind == "timeout" else NotebookCallError
            raise error(page.name, failure.ename, failure.evalue, failure.traceback, cell)
        value = returned(merged)
        return CallResult(
            value, cached, record, merged, time.perf_counter() - begin, page.name, given
        )


def current_result(
    engine: Engine,
    page: Page,
    key: str,
    notebook: Any,
    timeout: float | None,
    candidates: list[Record] | None = None,
) -> Record | None:
    """A stored result of ``key`` that still holds (what it read and ran on is unchanged);
    a timeout is retried when the limit is now longer. ``candidates``: already looked up."""
    from ..plan.freshness import declared_patterns

    declared = declared_patterns(page.name, engine.options, notebook)
    if candidates is None:
        candidates = engine.store.lookup([key]).get(key, [])
    for record in candidates:
        if record.status == "error":
            continue
        failure = record.failure
        longer = timeout is None or (record.timeout is not None and timeout > record.timeout)
        if failure is not None and failure.kind == "timeout" and longer:
            continue  # a longer limit may let it finish
        if engine.freshness.stale_reason(record, page.path.parent, declared) is None:
            return record
    return None


def _source_cell(source: nbformat.NotebookNode, ran: int | None, given: bool) -> int | None:
    """Code cell ``ran`` of the called notebook (no ``skip`` cells, parameters injected) as
    the code cell number of the notebook as written."""
    if ran is None:
        return None
    numbers: list[int | None] = []
    number = 0
    for cell in source.cells:
        if cell.get("cell_type") != "code":
            continue
        number += 1
        tags = cell.get("metadata", {}).get("tags") or []
        if "injected-parameters" in tags:
            continue
        if SKIP_TAG not in tags:
            numbers.append(number)
        if "parameters" in tags and given:
            numbers.append(None)  # the injected cell follows it
    return numbers[ran - 1] if 0 < ran <= len(numbers) else None


def _cache_for(target: str | Path, docs: str | Path | None, cache: str | Path | None) -> Cache:
    from .reads import open_for

    return open_for(target, docs, cache=cache, read_only=False)


def run_notebook(
    path: str | Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    docs: str | Path | None = None,
    cache: str | Path | None = None,
    timeout: float | None = None,
    force: bool = False,
) -> CallResult:
    """Call the notebook at ``path`` with ``parameters``: its value, the executed notebook
    and its record (:class:`CallResult`). The cache is the docs folder's (``docs``: default,
    the folder holding a ``conf.py`` at or above the notebook), or ``cache``."""
    with _cache_for(path, docs, cache) as opened:
        return Caller(opened).call(path, parameters, timeout=timeout, force=force)


def run(path: str | Path, /, **parameters: Any) -> Any:
    """Call the notebook at ``path`` with keyword parameters; returns its ``return`` value.

    Memoised by the cache: the same code with the same parameters runs once."""
    return run_notebook(path, parameters).value
