"""Reading other notebooks' results from the cache: ``read_notebook`` and ``read_notebooks``.

::

    from sphinx_nbcache import read_notebook, read_notebooks

    summary = read_notebook("analysis/summary.md")     # a page's path, or its page name
    summary.scraps["total"].data                        # a value glued in that page
    for nb in read_notebooks("analysis/sources"):       # every notebook page of a folder
        print(nb.page, nb.scraps["mean"].data)

Works in Python and inside a notebook during a build (paths are relative to the current
folder, which is the page's folder there). The result read is the one a build shows: the
page's current code with what it depended on unchanged (the engine's one lookup). Inside a
notebook, what was read is recorded as the reader's dependencies (``depend``), so a reader is
executed again exactly when what it read would be different.

A page that has no current result yet is an error saying so, unless a build that shares the
store is executing it right now (it holds the page's lease): then the read waits for that
result, up to ``wait`` seconds, lending the kernel's place to the notebooks queued behind it
meanwhile (so that the page it waits for can run). scrapbook need not be installed.
"""

from __future__ import annotations

import glob
import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..engine.results import merged
from ..engine.waiting import new_results, poll
from ..errors import NotFoundError
from ..execute.inkernel import Tracer
from ..notebooks.runnable import variant_of
from ..plan.freshness import Freshness
from ..plan.memo import memo_for
from ..plan.parse import inspect_page
from ..plan.verdicts import PageState
from ..records import Outputs, Record
from .cached import CachedNotebook
from .depend import depend_on, unrecorded

if TYPE_CHECKING:
    from ..engine.cache import ProjectCache
    from ..engine.core import Engine
    from ..notebooks.pages import Page
    from ..notebooks.project import Project
    from ..notebooks.runnable import Runnable

__all__ = [
    "CachedNotebook",
    "Found",
    "current_result",
    "expand",
    "found_from_json",
    "found_to_json",
    "names_digest",
    "open_for",
    "pages_in",
    "read_from",
    "read_notebook",
    "read_notebooks",
]

# the ``pages:`` kind (a folder or glob listed) is checked by ``kinds``


def read_notebook(
    target: str | Path, docs: str | Path | None = None, *, wait: float = 600.0
) -> CachedNotebook:
    """The cached result of one notebook page (a path, or a page name of ``docs``)."""
    cache = open_for(target, docs)
    try:
        return read_from(cache, cache.page(target), _wait_limit(wait))
    finally:
        cache.close()


def read_notebooks(
    target: str | Path,
    docs: str | Path | None = None,
    *,
    wait: float = 600.0,
    variants: bool = True,
) -> list[CachedNotebook]:
    """The cached results of every notebook page in a folder, or matching a glob, by name;
    each followed by its variants (the page shown with parameters by ``nbcache-notebook``
    directives, in the order the pages show them) unless not ``variants``."""
    found = expand(target)
    if not found:
        raise NotFoundError(f"no notebook page in {str(target)!r}", "give a folder or a glob")
    cache = open_for(found[0], docs)
    wait = _wait_limit(wait)
    tracer = Tracer.current()
    try:
        with unrecorded(tracer):  # looking at every file: the reader depends on none...
            pages = pages_in(cache.project, found)
        if not pages:
            raise NotFoundError(f"no notebook page in {str(target)!r}", "give a folder or a glob")
        if tracer is not None and (found[0].is_dir() or glob.has_magic(str(target))):
            # ...but on which pages there are: a page added or removed executes it again
            tracer.listed(target, names_digest(pages))
        found_all = []
        for name in sorted(pages):
            found_all.append(read_from(cache, pages[name], wait))
            if variants:
                found_all.extend(variants_of(cache, pages[name], wait))
        return found_all
    finally:
        cache.close()


def variants_of(cache: ProjectCache, page: Page, wait: float = 0.0) -> list[CachedNotebook]:
    """The current results of ``page`` shown with parameters by the project's
    ``nbcache-notebook`` directives, one per set of parameters, in the order found. Inside a
    notebook, the directives are what it depends on (not the prose of the pages holding
    them): adding, changing or removing one executes the reader again."""
    from .variants import declared_variants, variants_digest

    root = cache.project.root
    if root is None:
        return []
    tracer = Tracer.current()
    with unrecorded(tracer):  # the scan reads every text page: the reader depends on none
        declared = declared_variants(root, page.path)
        if tracer is not None:  # re-run if the directives change
            tracer.read_variants(page.path, variants_digest(root, page.path))
    results: dict[str, CachedNotebook] = {}
    for _file, parameters in declared:
        shown = variant_of(parameters)
        if parameters and shown not in results:
            results[shown] = read_from(cache, page, wait, parameters)
    return list(results.values())


class Found(NamedTuple):
    """A page's current result, as a build would show it."""

    record: Record
    run: Runnable  # what ran (the page as written, or with the parameters given)
    code: str  # the key of the page as written: what a reader's ``code:`` entry checks


def current_result(
    cache: ProjectCache,
    engine: Engine,
    page: Page,
    parameters: dict[str, Any] | None = None,
    wait: float = 0.0,
    on_wait: Callable[[], object] | None = None,
) -> Found:
    """The current result of ``page`` (run with ``parameters``: a variant), from the engine's
    one lookup; if it is being executed (by ``engine`` itself, or by a build sharing the store:
    its lease), waited for up to ``wait`` s, telling ``on_wait`` first. :class:`NotFoundError`
    if there is none."""
    from ..notebooks.runnable import runnable

    run, memo = inspect_page(page, cache.options, cache.project.md_config)
    code = run.key
    if parameters is not None:
        run = runnable(run.notebook, page, cache.options, parameters)
        memo = memo_for(run)
    state = PageState(page, "stale", run=run)
    engine.lookup.judge([(state, memo, False)])
    record = state.record if state.verdict in ("cached", "failed") else None
    if record is None and wait > 0 and engine.pending(run.key):  # this build runs it
        if on_wait is not None:
            on_wait()
        outcome = engine.wait(run.key)
        record = outcome.record if outcome is not None else None
        record = None if record is not None and record.status == "error" else record
    if record is None:
        record = _wait_for(cache, page.name, run.key, wait, on_wait)
    if record is None:
        given = f" with parameters {parameters}" if parameters else ""
        raise NotFoundError(
            f"{page.name}{given} has no current result ({state.reason or state.verdict})",
            "build the docs that show it, or run `nbcache execute` on it, first",
        )
    return Found(record, run, code)


def read_from(
    cache: ProjectCache, page: Page, wait: float = 0.0, parameters: dict[str, Any] | None = None
) -> CachedNotebook:
    """The current result of ``page`` (run with ``parameters``: a variant) in ``cache``, what
    :meth:`.Cache.read` answers; waits up to ``wait`` s for a build that is executing it.
    Inside a notebook a build executes, the build answers (its link): the kernel never opens
    the store."""
    tracer = Tracer.current()
    link = tracer.link if tracer is not None else None
    if tracer is not None and link is not None:
        answer = link.ask("read", path=str(page.path), parameters=parameters, wait=wait)
        with unrecorded(tracer):  # what ran, worked out again from the page: not a read
            found = found_from_json(answer, cache, page, parameters)
        outputs = Outputs.from_json(answer["outputs"]) if answer.get("outputs") else None
    else:
        with unrecorded(tracer):  # the reader depends on the page's code, not its text
            found = current_result(cache, cache.engine(), page, parameters, wait)
        outputs = None
    if tracer is not None:  # inside a notebook that a build is executing
        depend_on(tracer, page, found.code, found.record, Freshness(cache.options, tracer.root))
    blobs = cache.store.blobs if outputs is None else None
    notebook = merged(found.record, found.run.notebook, blobs, outputs, copy_nb=True)
    return CachedNotebook(page.name, page.path, notebook, found.record)


def found_to_json(found: Found, outputs: Outputs | None) -> dict[str, Any]:
    """What the build's link answers a kernel's read with."""
    return {
        "record": found.record.to_json(),
        "code": found.code,
        "outputs": outputs.to_json() if outputs is not None else None,
    }


def found_from_json(
    answer: dict[str, Any],
    cache: ProjectCache,
    page: Page,
    parameters: dict[str, Any] | None,
) -> Found:
    """A link's answer, with what ran worked out here again from the page (its notebook)."""
    from ..notebooks.runnable import read_runnable

    run = read_runnable(page, cache.options, cache.project.md_config, parameters)
    return Found(Record.from_json(answer["record"]), run, str(answer["code"]))


def _wait_for(
    cache: ProjectCache, name: str, key: str, wait: float, on_wait: Callable[[], object] | None
) -> Record | None:
    """The result of ``key`` once the build running it (its lease's holder) stores it; None
    at once if nobody runs it."""
    store = cache.store
    held = store.leases([key]).get(key)
    if held is None or held[1] < time.time() or wait <= 0:
        return None
    known = {key: {r.id for r in store.lookup([key]).get(key, ())}}  # not valid: stale

    def fresh() -> Record | None:
        return new_results(store, [key], known, 0.0).get(key)

    def running() -> bool:
        now = store.leases([key]).get(key)
        return now is not None and now[1] >= time.time()

    if on_wait is not None:
        on_wait()
    try:
        return poll(fresh, running, time.monotonic() + wait)
    except TimeoutError:
        raise NotFoundError(
            f"{name} is being executed by {held[0]} and did not finish in {wait:g} s",
            "raise `wait`, or read it after that build",
        ) from None


def _wait_limit(wait: float) -> float:
    """No waiting inside a notebook of a cycle (pages reading each other's results)."""
    tracer = Tracer.current()
    return 0.0 if tracer is not None and not tracer.waits else wait


# -- listings: ``read_notebooks(folder or glob)`` and the ``pages:`` kind ---------------------


def pages_in(project: Project, found: list[Path]) -> dict[str, Page]:
    """The notebook pages among ``found`` (files and folders), by name as a build has them."""
    pages: dict[str, Page] = {}
    listed: list[Page] | None = None
    for path in found:
        if path.is_dir():  # the project's pages under it
            under = path.resolve()
            listed = project.pages() if listed is None else listed
            for page in listed:
                if page.path.resolve().is_relative_to(under):
                    pages.setdefault(page.name, page)
        else:
            page = project.page(path)
            pages.setdefault(page.name, page)
    return pages


def names_digest(pages: dict[str, Page]) -> str:
    return hashlib.sha256("\n".join(sorted(pages)).encode()).hexdigest()


def expand(target: str | Path) -> list[Path]:
    path = Path(target)
    if path.is_dir():
        return [path]
    if glob.has_magic(str(target)):
        return sorted(Path(p) for p in glob.glob(str(target), recursive=True) if Path(p).is_file())
    return [path] if path.is_file() else []


def open_for(
    target: str | Path,
    docs: str | Path | None,
    *,
    cache: str | Path | None = None,
    read_only: bool = True,
) -> ProjectCache:
    """The cache of the project ``target`` belongs to: inside a notebook a build is
    executing, the build's own store (whatever ``-D nbcache_path=...`` or the environment
    said); else the docs folder's (``docs``, or the nearest folder with a ``conf.py`` above
    ``target``, or above the current folder); ``cache`` overrides ``nbcache_path``."""
    import dataclasses

    from ..engine.cache import ProjectCache, open_project
    from ..notebooks.project import Project, find_docs_dir

    root = Path(docs) if docs is not None else find_docs_dir(Path(target).resolve().parent)
    if root is None:
        root = find_docs_dir(Path.cwd())
    tracer = Tracer.current()
    store = tracer.store if tracer is not None else {}
    if cache is not None or not store.get("cache_path"):
        with unrecorded(tracer):
            return open_project(root, cache, read_only=read_only)
    with unrecorded(tracer):  # its conf.py and what it imports are the build's, not ours
        project = Project.load(root, store["cache_path"])
    options = project.options._replace(
        database=store.get("database") or project.options.database,
        blobs=store.get("blobs") or project.options.blobs,
    )
    project = dataclasses.replace(project, options=options)
    return ProjectCache(project=project, read_only=read_only)
