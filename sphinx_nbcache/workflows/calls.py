"""Calling notebooks as functions, answered from the cache: ``run`` and ``run_notebook``.

::

    from sphinx_nbcache import run

    total = run("analysis/model.ipynb", year=2024, region="north")   # -> the `return` value

A call prepares the notebook (:mod:`sphinx_nbcache.notebooks.functions`), keys it (code, execution
options, parameters), and looks the key up: a result whose recorded dependencies still hold
answers without a kernel. Otherwise the engine executes it in a fresh kernel, exactly as a
page, and stores it (under the page's name, as a variant of its parameters). Identical calls
in flight are joined by the engine; across processes the lease of the key is (as for pages).
A :class:`Caller` keeps one engine (and its executor, its warm kernels) for all its calls:
the REST endpoint's calls share one.

Works inside a notebook too (one notebook calling another): paths are relative to the current
folder, and during a build the build's own cache is used. A failure raises
:class:`~sphinx_nbcache.errors.NotebookCallError` (``ename``, ``evalue``, ``traceback``) or
:class:`~sphinx_nbcache.errors.CallTimeoutError`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine import results
from ..errors import CallTimeoutError, NotebookCallError, NotebookExecutionError, NotFoundError
from ..execute.inkernel import Tracer
from ..notebooks.functions import SKIP_TAG, Signature, returned, signature
from ..notebooks.runnable import runnable
from ..plan.freshness import Freshness
from ..plan.parse import inspect_page
from ..records import Outputs, Record
from .depend import depend_on, unrecorded

if TYPE_CHECKING:
    import nbformat

    from ..engine.cache import ProjectCache
    from ..engine.core import Engine
    from ..notebooks.pages import Page

__all__ = ["CallResult", "Caller", "run", "run_notebook"]


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


class Caller:
    """Calls the notebooks of one cache's project, on one engine kept for all the calls (its
    executor and warm kernels too); thread-safe. Identical calls (same key) in flight at once
    run once: the engine joins them. :meth:`close` stops its kernels."""

    def __init__(self, cache: ProjectCache, jobs: int = 0, engine: Engine | None = None) -> None:
        self.cache = cache
        options = cache.options
        if jobs:
            options = options._replace(jobs=jobs, max_jobs=jobs, prestart=min(jobs, 2))
        #: the engine calls run on: its own, or one given (a build's: not closed here)
        self.engine: Engine = engine or cache.engine(options)
        self._own = engine is None
        if self.engine.planned_at is None:
            self.engine.planned_at = time.time()
        self._closing = threading.Lock()

    def page(self, target: str | Path) -> Page:
        page = self.cache.page(target)
        if not page.path.is_file():
            raise NotFoundError(f"no notebook {str(target)!r}", "give the path of a notebook")
        return page

    def signature(self, target: str | Path) -> Signature:
        """The parameters ``target`` declares and whether it returns a value."""
        page = self.page(target)
        run, _memo = inspect_page(page, self.cache.options, self.cache.project.md_config)
        return signature(run.notebook, page.name)

    def call(
        self,
        target: str | Path,
        parameters: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        force: bool = False,
        on_wait: Callable[[], object] | None = None,
    ) -> CallResult:
        """Call ``target`` with ``parameters``; from the cache unless ``force``. ``timeout``
        is the per-cell limit (default: the notebook's own); ``on_wait`` is told before the
        call waits for an execution. Inside a notebook a build executes, the build runs the
        call (its link): the kernel never opens the store."""
        begin = time.perf_counter()
        given = dict(parameters or {})
        page = self.page(target)
        tracer = Tracer.current()
        link = tracer.link if tracer is not None else None
        with unrecorded(tracer):  # inside a notebook: the caller depends on its code (below)
            source, _memo = inspect_page(page, self.cache.options, self.cache.project.md_config)
            run = runnable(source.notebook, page, self.cache.options, given, call=True)
            if timeout is not None:
                run = run._replace(options=run.options._replace(timeout=timeout))
            if link is not None:  # the build runs it, on its own executor, and stores it
                answer = link.ask(
                    "call", path=str(page.path), parameters=given, timeout=timeout, force=force
                )
                record = Record.from_json(answer["record"])
                outputs = Outputs.from_json(answer["outputs"]) if answer["outputs"] else None
                merged = results.merged(record, run.notebook, None, outputs, copy_nb=True)
                cached = bool(answer["cached"])
            else:
                state = self.engine.current(run, force=force)
                cached = state.verdict in ("cached", "failed")
                if on_wait is not None and not cached:
                    on_wait()  # it runs now, or is running: the caller waits
                record, merged = self.engine.result(run, copy_nb=True)
        if tracer is not None:
            depend_on(tracer, page, source.key, record, Freshness(self.cache.options, tracer.root))
        return self._answer(page, source.notebook, record, merged, cached, begin, given)

    def close(self) -> None:
        """Stop the engine's kernels (the cache stays open; an engine given is left alone)."""
        with self._closing:
            if self._own:
                self.engine.finish(evict=False, close=False)

    def _answer(
        self,
        page: Page,
        source: nbformat.NotebookNode,
        record: Record,
        merged: nbformat.NotebookNode,
        cached: bool,
        begin: float,
        given: dict[str, Any],
    ) -> CallResult:
        failure = record.failure
        if record.status == "error" or (failure is not None and record.blob is None):
            raise NotebookExecutionError(page.name, f"the notebook {record.explain()}")
        if failure is not None:
            cell = _source_cell(source, failure.code_cell, bool(given))
            error = CallTimeoutError if failure.kind == "timeout" else NotebookCallError
            raise error(page.name, failure.ename, failure.evalue, failure.traceback, cell)
        value = returned(merged)
        return CallResult(
            value, cached, record, merged, time.perf_counter() - begin, page.name, given
        )


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


def _cache_for(
    target: str | Path, docs: str | Path | None, cache: str | Path | None
) -> ProjectCache:
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
        caller = Caller(opened)
        try:
            return caller.call(path, parameters, timeout=timeout, force=force)
        finally:
            caller.close()


def run(path: str | Path, /, **parameters: Any) -> Any:
    """Call the notebook at ``path`` with keyword parameters; returns its ``return`` value.

    Memoised by the cache: the same code with the same parameters runs once."""
    return run_notebook(path, parameters).value
