"""Reading other notebooks' results from the cache: ``read_notebook`` and ``read_notebooks``.

::

    from sphinx_nbcache import read_notebook, read_notebooks

    summary = read_notebook("analysis/summary.md")     # a page's path, or its page name
    summary.scraps["total"].data                        # a value glued in that page
    for nb in read_notebooks("analysis/sources"):       # every notebook page of a folder
        print(nb.page, nb.scraps["mean"].data)

Works in Python and inside a notebook during a build (paths are relative to the current
folder, which is the page's folder there). The result read is the one a build shows: the
page's current code with what it depended on unchanged. Inside a notebook, what was read is
recorded as the reader's dependencies: each page's code (its cache key, not its prose) and what
its result depended on, the pages a folder or glob listed, the directives showing variants; so
a reader is executed again exactly when what it read would be different.

A page that has no current result yet is an error saying so, unless a build that shares the
store is executing it right now (it holds the page's lease): then the read waits for that
result, up to ``wait`` seconds. scrapbook need not be installed.
"""

from __future__ import annotations

import contextlib
import glob
import importlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from ..notebooks.scraps import Scrap, scraps_of

if TYPE_CHECKING:
    import nbformat

    from ..api import Cache
    from ..config import Options
    from ..notebooks.pages import Page
    from ..notebooks.project import Project
    from ..records import Record

__all__ = ["CachedNotebook", "open_for", "read_from", "read_notebook", "read_notebooks"]

POLL = 0.1  # seconds between looks at the store while another build runs the page


class CachedNotebook:
    """An executed notebook from the cache, with scrapbook's reading API."""

    def __init__(self, page: str, path: Path, notebook: nbformat.NotebookNode, record: Record):
        self.page = page  #: the page's name in its project (``analysis/summary``)
        self.path = path  #: its source file
        self.notebook = notebook  #: the source with the cached outputs merged in
        self.record = record  #: the cached result
        self.scraps: dict[str, Scrap] = scraps_of(notebook)

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def cells(self) -> list[Any]:
        return list(self.notebook.cells)

    @property
    def metadata(self) -> Any:
        return self.notebook.metadata

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.record.parameters or {})

    @property
    def scrap_dataframe(self) -> Any:
        """The scraps as a pandas DataFrame (name, data, encoder, display, filename)."""
        pandas: Any = importlib.import_module("pandas")
        rows = [
            {"name": s.name, "data": s.data, "encoder": s.encoder, "display": s.display,
             "filename": self.filename}
            for s in self.scraps.values()
        ]  # fmt: skip
        return pandas.DataFrame(rows, columns=["name", "data", "encoder", "display", "filename"])

    def reglue(
        self, name: str, new_name: str | None = None, *, raise_on_missing: bool = True
    ) -> None:
        """Glue scrap ``name`` of this notebook into the running notebook (as ``new_name``),
        scrapbook-style: its data, and its display if it has one. Needs IPython."""
        scrap = self.scraps.get(name)
        if scrap is None:
            if raise_on_missing:
                raise NotFoundError(
                    f"{self.page} has no scrap {name!r}",
                    f"its scraps are {', '.join(sorted(self.scraps)) or 'none'}",
                )
            return
        display: Any = importlib.import_module("IPython.display").display
        glued = new_name or name
        if scrap.data is not None:
            kind = "text" if scrap.encoder == "text" else "json"
            payload = {"name": glued, "data": scrap.data, "encoder": scrap.encoder, "version": 1}
            display(
                {f"application/scrapbook.scrap.{kind}+json": payload},
                raw=True,
                metadata={"scrapbook": {"name": glued, "data": True, "display": False}},
            )
        if scrap.display is not None:
            metadata = {**scrap.display.get("metadata", {}), "scrapbook": {
                "name": glued, "data": False, "display": True}}  # fmt: skip
            display(dict(scrap.display.get("data", {})), raw=True, metadata=metadata)

    def __repr__(self) -> str:
        return (
            f"<CachedNotebook {self.page}: {len(self.scraps)} scraps, result {self.record.id[:10]}>"
        )


def read_notebook(
    target: str | Path, docs: str | Path | None = None, *, wait: float = 600.0
) -> CachedNotebook:
    """The cached result of one notebook page (a path, or a page name of ``docs``)."""
    cache = open_for(target, docs)
    wait = _wait_limit(wait)
    try:
        return read_from(cache, cache.page(target), wait)
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
    found = _expand(target)
    if not found:
        raise NotFoundError(f"no notebook page in {str(target)!r}", "give a folder or a glob")
    cache = open_for(found[0], docs)
    wait = _wait_limit(wait)
    try:
        with _unrecorded():  # looking at every file: the reader depends on none...
            pages = _pages_in(cache.project, found)
        if not pages:
            raise NotFoundError(f"no notebook page in {str(target)!r}", "give a folder or a glob")
        tracer = sys.modules.get("_nbcache_trace")
        listings = getattr(tracer, "listings", None)
        if isinstance(listings, dict) and (found[0].is_dir() or glob.has_magic(str(target))):
            # ...but on which pages there are: a page added or removed executes it again
            listings[os.path.realpath(target)] = _names_digest(pages)
        found_all = []
        for name in sorted(pages):
            found_all.append(read_from(cache, pages[name], wait))
            if variants:
                found_all.extend(variants_of(cache, pages[name], wait))
        return found_all
    finally:
        cache.close()


def variants_of(cache: Cache, page: Page, wait: float = 0.0) -> list[CachedNotebook]:
    """The current results of ``page`` shown with parameters by the project's
    ``nbcache-notebook`` directives, one per set of parameters, in the order found. Inside a
    notebook, the directives are what it depends on (not the prose of the pages holding
    them): adding, changing or removing one executes the reader again."""
    from ..store._store import variant_of
    from .variants import declared_variants, plan_variant, variant_result

    root = cache.project.root
    if root is None:
        return []
    with _unrecorded():  # the scan reads every text page: the reader depends on none of them
        declared = declared_variants(root, page.path)
    tracer = sys.modules.get("_nbcache_trace")
    if tracer is not None and isinstance(getattr(tracer, "variants", None), set):
        tracer.variants.add(os.path.realpath(page.path))  # re-run if the directives change
    engine = cache.engine()
    results: dict[str, CachedNotebook] = {}
    for _file, parameters in declared:
        shown = variant_of(parameters)
        if not parameters or shown in results:
            continue
        with _unrecorded():
            state = plan_variant(engine, page, parameters)
        if state.record is None and state.key:
            state.record = _wait_for(cache, page.name, state.key, wait)
            state.verdict = "cached" if state.record is not None else "stale"
        if state.record is None:
            raise NotFoundError(
                f"{page.name} with parameters {parameters} has no current result",
                "build the docs that show it first",
            )
        if "_nbcache_trace" in sys.modules:
            _depend_on(page, state.record, cache.options)
        record, merged = variant_result(engine, state)
        results[shown] = CachedNotebook(page.name, page.path, merged, record)
    return list(results.values())


@contextlib.contextmanager
def _unrecorded() -> Iterator[None]:
    """Inside a notebook a build executes: files opened here are not recorded as read."""
    tracer = sys.modules.get("_nbcache_trace")
    opened: dict[str, Any] | None = getattr(tracer, "opened", None)
    before = set(opened) if opened is not None else set()
    try:
        yield
    finally:
        if opened is not None:
            for path in set(opened) - before:
                opened.pop(path, None)


def _wait_limit(wait: float) -> float:
    """No waiting inside a notebook of a cycle (pages reading each other's results)."""
    tracer = sys.modules.get("_nbcache_trace")
    return 0.0 if dict(getattr(tracer, "store", None) or {}).get("wait") == "0" else wait


def _pages_in(project: Project, found: list[Path]) -> dict[str, Page]:
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


def _names_digest(pages: dict[str, Page]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(sorted(pages)).encode()).hexdigest()


def listing_digest(target: str, root: Path | None) -> str:
    """What the notebook pages in a folder (or matching a glob) under the project ``root``
    are now: how a reader of ``read_notebooks(target)`` is found stale."""
    from ..notebooks.project import Project

    found = _expand(target)
    if not found:
        return _names_digest({})
    return _names_digest(_pages_in(Project.load(root), found))


def _expand(target: str | Path) -> list[Path]:
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
) -> Cache:
    """The cache of the project ``target`` belongs to: inside a notebook a build is
    executing, the build's own store (whatever ``-D nbcache_path=...`` or the environment
    said); else the docs folder's (``docs``, or the nearest folder with a ``conf.py`` above
    ``target``, or above the current folder); ``cache`` overrides ``nbcache_path``."""
    import dataclasses

    from ..api import Cache, open_cache
    from ..notebooks.project import Project, find_docs_dir

    root = Path(docs) if docs is not None else find_docs_dir(Path(target).resolve().parent)
    if root is None:
        root = find_docs_dir(Path.cwd())
    tracer = sys.modules.get("_nbcache_trace")
    store: dict[str, str] = dict(getattr(tracer, "store", None) or {})
    if cache is not None or not store.get("cache_path"):
        return open_cache(root, cache, read_only=read_only)
    project = Project.load(root, store["cache_path"])
    options = project.options._replace(
        database=store.get("database") or project.options.database,
        blobs=store.get("blobs") or project.options.blobs,
    )
    return Cache(project=dataclasses.replace(project, options=options), read_only=read_only)


def read_from(cache: Cache, page: Page, wait: float = 0.0) -> CachedNotebook:
    """The cached result of ``page`` in ``cache`` (what :meth:`Cache.read` answers)."""
    from ..notebooks.merge import merge_outputs
    from ..plan.parse import inspect_page

    with _unrecorded():  # the reader depends on the page's code, not its text (_depend_on)
        notebook, _own, _memo = inspect_page(page, cache.options, cache.project.md_config)
        state = cache.plan([page])[0]
    record = state.record if state.verdict in ("cached", "failed") else None
    if record is None and state.key:
        record = _wait_for(cache, page.name, state.key, wait)
    if record is None:
        raise NotFoundError(
            f"{page.name} has no current result ({state.reason or state.verdict})",
            "build the docs or run `nbcache execute` on it first",
        )
    if "_nbcache_trace" in sys.modules:  # inside a notebook that a build is executing
        _depend_on(page, record, cache.options)
    outputs = cache.outputs(record)
    merged = merge_outputs(notebook, outputs, copy_nb=True, where=f"result {record.id[:10]}")
    return CachedNotebook(page.name, page.path, merged, record)


def _depend_on(page: Page, record: Record, options: Options) -> None:
    """Inside a notebook a build executes, make what ``record`` came from a dependency of the
    reading notebook: the page's code (its key, not its prose), every file the result read,
    the files its declared globs match, the packages it imported, and the code of the pages it
    read in turn. The reader then executes again when the result it read would change, and
    only then."""
    from ..plan.freshness import CODE, DECLARED, VARIANTS, code_digest

    tracer = sys.modules.get("_nbcache_trace")
    code = getattr(tracer, "code", None)
    variants = getattr(tracer, "variants", None)
    folder = page.path.parent
    deps = record.dependencies
    files = deps.files if deps is not None else ()
    packages = getattr(tracer, "read_packages", None)
    if isinstance(packages, dict) and deps is not None:
        for name, version in deps.packages:
            packages.setdefault(name, version)
    if isinstance(code, dict):
        with _unrecorded():
            code[os.path.realpath(page.path)] = code_digest(page.path, options)
    else:  # a tracer that records files only: the page's file itself
        _open_for_tracer(page.path)
    declared: list[str] = []
    for relative, digest in files:
        if relative.startswith(CODE) and isinstance(code, dict):
            code.setdefault(os.path.realpath(folder / relative[len(CODE) :]), digest)
        elif relative.startswith(VARIANTS) and isinstance(variants, set):
            variants.add(os.path.realpath(folder / relative[len(VARIANTS) :]))
        elif relative.startswith(DECLARED):
            declared.append(relative[len(DECLARED) :])
        elif ":" not in relative:
            _open_for_tracer(folder / relative)
    globs = getattr(tracer, "read_globs", None)
    root = getattr(tracer, "root", None)
    if declared and isinstance(globs, dict) and isinstance(root, str):
        _declared_globs(globs, declared, folder, Path(root), options)


def _declared_globs(
    globs: dict[str, str], patterns: list[str], folder: Path, root: Path, options: Options
) -> None:
    """The read page's declared globs, anchored at the project root (``/...``) so that they
    match the same files from the reader's folder, with what they match now."""
    from ..plan.freshness import Freshness

    check = Freshness(options, root)
    for pattern in patterns:
        if pattern.startswith("/"):
            anchored = pattern
        else:
            where = Path(os.path.normpath(folder.resolve() / pattern))
            if not where.is_relative_to(root):
                continue  # outside the project: not followed (as files read outside are not)
            anchored = "/" + where.relative_to(root).as_posix()
        if anchored not in globs:
            with _unrecorded():
                globs[anchored] = check.declared_digest(anchored, folder)


def _open_for_tracer(path: Path) -> None:
    with contextlib.suppress(OSError):
        open(path, "rb").close()  # opened to be seen by the tracer, not read


def _wait_for(cache: Cache, name: str, key: str, wait: float) -> Record | None:
    """The result of ``key`` once the build running it (its lease's holder) stores it."""
    store = cache.store
    deadline = time.monotonic() + wait
    known = {r.id for r in store.lookup([key]).get(key, ())}  # not valid: why it is stale
    while True:
        for record in store.lookup([key]).get(key, ()):
            if record.id not in known and record.status != "error":
                return record
        held = store.leases([key]).get(key)
        if held is None or held[1] < time.time():
            return None  # nobody is running it
        if time.monotonic() > deadline:
            raise NotFoundError(
                f"{name} is being executed by {held[0]} and did not finish in {wait:g} s",
                "raise `wait`, or read it after that build",
            )
        time.sleep(POLL)  # another process stores it: no event crosses processes
