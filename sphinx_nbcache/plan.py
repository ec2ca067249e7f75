"""Find stale notebooks: for each page, its key, its cached record, and what to do with it.

This is step one of the data flow (find stale -> execute -> store -> merge -> render ->
report). It reads each page once (or not at all, when a :class:`Memo` entry still matches the
file's size and modification time), computes its key, and looks every key up in one batch.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import nbformat

from .config import Options
from .errors import NotebookReadError
from .hashing import HASH_VERSION, kernel_name, notebook_key
from .readers import read_notebook

if TYPE_CHECKING:  # the store and the executor load on first use (a no-op build needs neither)
    from .execute import Job
    from .records import Record
    from .store import Store

__all__ = [
    "Memo",
    "Page",
    "PageState",
    "Verdict",
    "execution_order",
    "inspect_page",
    "job_for",
    "plan_pages",
    "still_valid",
]

Verdict = Literal["cached", "failed", "stale", "excluded", "off", "as-is", "unreadable"]

#: New files to parse before forked workers are worth starting: below this, starting them costs
#: more than parsing in parallel saves (a MyST or percent file takes ~2 ms to parse).
PARALLEL_PARSE_MIN = 64


@dataclass(frozen=True)
class Page:
    """A notebook page: what to call it and where it is."""

    name: str  # the Sphinx docname (the CLI and API use docnames too)
    path: Path


@dataclass(frozen=True)
class Memo:
    """What reading a file told us, valid while its size and mtime do not change."""

    mtime_ns: int
    size: int
    key: str | None
    mode: str
    has_outputs: bool
    excluded: bool
    timeout: float | None = None  # the notebook's effective per-cell timeout


@dataclass
class PageState:
    """The verdict on one page, with what is needed to execute it."""

    page: Page
    verdict: Verdict
    reason: str = ""
    key: str | None = None
    record: Record | None = None
    options: Options | None = None
    notebook: nbformat.NotebookNode | None = None
    error: NotebookReadError | None = None

    @property
    def stale(self) -> bool:
        return self.verdict == "stale"


def inspect_page(
    page: Page, options: Options, md_config: Any = None, raw: bytes | None = None
) -> tuple[nbformat.NotebookNode, Options, Memo]:
    """Read a page (or its ``raw`` bytes) and work out its options, key and memo entry."""
    stat = page.path.stat()
    notebook = read_notebook(page.path, options, text=raw, md_config=md_config)
    own = options.for_notebook(notebook.get("metadata", {}))
    code = [c for c in notebook.cells if c.get("cell_type") == "code"]
    memo = Memo(
        mtime_ns=stat.st_mtime_ns,
        size=stat.st_size,
        key=notebook_key(notebook, own),
        mode=own.mode,
        has_outputs=all(c.get("outputs") for c in code),
        excluded=options.is_excluded(page.path),
        timeout=own.timeout,
    )
    return notebook, own, memo


def plan_pages(
    pages: Iterable[Page],
    options: Options,
    store: Store,
    memos: MutableMapping[str, Memo] | None = None,
    must_read: set[str] | None = None,
    force: set[str] | None = None,
    md_config: Any = None,
) -> list[PageState]:
    """A verdict for every page, in the order given.

    ``memos`` (by page name) is consulted and updated; pages in ``must_read`` are read even if
    their memo matches. Pages in ``force`` are stale whatever the cache holds, and so are pages
    being read whose execution mode is ``force``.
    """
    memos = {} if memos is None else memos
    must_read = must_read or set()
    force = force or set()
    pages = list(pages)
    fresh = [p for p in pages if p.name not in memos or not still_valid(memos[p.name], p.path)]
    fresh_names = {p.name for p in fresh} | must_read
    contents = _contents([p for p in pages if p.name in fresh_names], options, md_config)
    known = store.sources(digest for _, digest in contents.values()) if contents else {}
    new = [(p, contents[p.name][0]) for p in pages if p.name in contents]
    new = [(p, raw) for p, raw in new if contents[p.name][1] not in known]
    parsed = _inspect_all(new, options, md_config)  # these exact bytes were never read before
    learned: list[dict[str, Any]] = []
    states: list[PageState] = []
    for page in pages:
        notebook = own = None
        if page.name in contents:
            digest = contents[page.name][1]
            try:
                if digest in known:  # these exact bytes were read before: no parsing
                    memos[page.name] = _memo_from_source(page, options, known[digest])
                else:
                    found = parsed[page.name]
                    if isinstance(found, Exception):
                        raise found
                    notebook, own, memos[page.name] = found
                    learned.append(_source_row(digest, memos[page.name]))
            except (NotebookReadError, OSError) as exc:
                error = (
                    exc
                    if isinstance(exc, NotebookReadError)
                    else NotebookReadError(str(page.path), str(exc))
                )
                memos.pop(page.name, None)
                states.append(PageState(page, "unreadable", error.reason, error=error))
                continue
        elif page.name not in memos:  # vanished between listing and reading
            error = NotebookReadError(str(page.path), "the file cannot be read")
            states.append(PageState(page, "unreadable", error.reason, error=error))
            continue
        memo = memos[page.name]
        states.append(PageState(page, "stale", key=memo.key, options=own, notebook=notebook))
    if learned:
        store.remember_sources(learned)
    records = store.lookup(s.key for s in states if s.key)
    for state in states:
        if state.verdict == "unreadable":
            continue
        memo = memos[state.page.name]
        state.record = records.get(state.key or "")
        name = state.page.name
        forced = name in force or (memo.mode == "force" and name in must_read)
        _decide(state, memo, options, forced=forced)
    return states


Inspected = tuple[nbformat.NotebookNode, Options, Memo]
_SHARED: tuple[Options, Any] | None = None  # what forked parsing workers read it with


def _inspect_all(
    items: list[tuple[Page, bytes]], options: Options, md_config: Any
) -> dict[str, Inspected | NotebookReadError | OSError]:
    """``inspect_page`` on each (page, bytes); many pages are parsed in forked workers."""
    global _SHARED
    workers = min(os.cpu_count() or 1, 4, len(items) // (PARALLEL_PARSE_MIN // 2))
    if workers < 2 or not _can_fork():
        return {page.name: _inspect_one(page, raw, options, md_config) for page, raw in items}
    # one page of each kind here first: the workers inherit the readers' imports
    first = {}
    for page, raw in items:
        kind = options.format_for(page.path) or page.path.suffix
        if kind not in first:
            first[kind] = (page, _inspect_one(page, raw, options, md_config))
    done = {page.name: result for page, result in first.values()}
    rest = [(page, raw) for page, raw in items if page.name not in done]
    _SHARED = (options, md_config)
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            chunk = max(1, len(rest) // (workers * 4))
            found = pool.map(_inspect_in_worker, rest, chunksize=chunk)
    finally:
        _SHARED = None
    done.update((page.name, result) for (page, _), result in zip(rest, found, strict=True))
    return done


def _inspect_one(
    page: Page, raw: bytes, options: Options, md_config: Any
) -> Inspected | NotebookReadError | OSError:
    try:
        return inspect_page(page, options, md_config, raw)
    except (NotebookReadError, OSError) as exc:  # reported by the caller, page by page
        return exc


def _inspect_in_worker(item: tuple[Page, bytes]) -> Inspected | NotebookReadError | OSError:
    assert _SHARED is not None
    return _inspect_one(item[0], item[1], *_SHARED)


def _can_fork() -> bool:
    """Forking is safe only with no other thread (one could hold a lock the child needs);
    Linux only (macOS system libraries do not survive a fork)."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


def execution_order(stale: list[PageState], store: Store) -> list[PageState]:
    """The order to execute stale pages in: longest recorded run time first (it shortens the
    whole run when there are more pages than workers); pages with no recorded run time first of
    all, in their given order, since nothing says they are short."""
    previous = store.page_keys()
    old = store.lookup(previous[s.page.name] for s in stale if s.page.name in previous)
    runtimes: dict[str, float] = {}
    for state in stale:
        record = old.get(previous.get(state.page.name, ""))
        if record is not None and record.runtime > 0:
            runtimes[state.page.name] = record.runtime
    unknown = [s for s in stale if s.page.name not in runtimes]
    known = sorted(
        (s for s in stale if s.page.name in runtimes), key=lambda s: -runtimes[s.page.name]
    )
    return unknown + known


def _fingerprint(options: Options, md_config: Any) -> bytes:
    """Everything besides a file's bytes that decides what reading it finds."""
    md = re.sub(r" at 0x[0-9a-f]+", "", repr(md_config))  # no addresses: stable across runs
    parts = (
        HASH_VERSION,
        options.mode,
        options.timeout,
        options.allow_errors,
        options.kernel_aliases,
        options.custom_formats,
        options.metadata_key,
        md,
    )
    return hashlib.sha256(repr(parts).encode()).digest()


def _contents(pages: list[Page], options: Options, md_config: Any) -> dict[str, tuple[bytes, str]]:
    """page name -> (its bytes, digest of options + reader + bytes); unreadable pages left out."""
    fingerprint = _fingerprint(options, md_config)
    found = {}
    for page in pages:
        try:
            raw = page.path.read_bytes()
        except OSError:
            continue
        fmt = options.format_for(page.path)
        reader = (fmt.suffix if fmt else page.path.suffix).encode()
        digest = hashlib.sha256(fingerprint + reader + b"\0" + raw).hexdigest()
        found[page.name] = (raw, digest)
    return found


def _source_row(digest: str, memo: Memo) -> dict[str, Any]:
    return {
        "digest": digest,
        "key": memo.key,
        "mode": memo.mode,
        "has_outputs": int(memo.has_outputs),
        "timeout": memo.timeout,
    }


def _memo_from_source(page: Page, options: Options, row: Mapping[str, Any]) -> Memo:
    stat = page.path.stat()
    return Memo(
        mtime_ns=stat.st_mtime_ns,
        size=stat.st_size,
        key=row["key"],
        mode=row["mode"],
        has_outputs=bool(row["has_outputs"]),
        excluded=options.is_excluded(page.path),
        timeout=row["timeout"],
    )


def job_for(state: PageState, options: Options, md_config: Any = None) -> Job:
    """The job that executes a stale page (reads the page again if it was not kept)."""
    from .execute import Job, ProjectFiles

    notebook, own = state.notebook, state.options
    if notebook is None or own is None:
        notebook, own, _ = inspect_page(state.page, options, md_config)
        state.notebook, state.options = notebook, own
    assert state.key is not None
    bare = nbformat.from_dict(notebook)
    for cell in bare.cells:
        if cell.get("cell_type") == "code":
            cell.outputs = []
            cell.execution_count = None
    return Job(
        key=state.key,
        notebook=bare,
        page=state.page.name,
        folder="",
        files=ProjectFiles(str(state.page.path.parent.resolve())),
        in_temp=own.in_temp,
        kernel=kernel_name(notebook, own),
        timeout=own.timeout,
        allow_errors=own.allow_errors,
        output_limit=own.output_limit,
    )


def still_valid(memo: Memo, path: Path) -> bool:
    """True while the file has the size and modification time the memo was made from."""
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return stat.st_mtime_ns == memo.mtime_ns and stat.st_size == memo.size


def _decide(state: PageState, memo: Memo, options: Options, forced: bool) -> None:
    record = state.record
    if memo.excluded:
        state.verdict, state.reason = "excluded", "matches nb_execution_excludepatterns"
    elif memo.mode == "off":
        state.verdict, state.reason = "off", "execution mode is off"
    elif memo.mode == "inline":
        state.verdict, state.reason = "off", "inline mode: myst-nb executes it as it renders"
    elif memo.mode == "auto" and memo.has_outputs and not forced:
        state.verdict, state.reason = "as-is", "auto mode: every code cell has outputs"
    elif forced:
        state.verdict, state.reason = "stale", "forced (execution mode force, or --force)"
    elif memo.mode == "force" and record is not None:
        state.verdict = "cached" if record.ok else "failed"  # not read: keep what it shows
    elif record is None:
        state.verdict, state.reason = "stale", "no cached result for this code"
    elif record.status == "ok":
        state.verdict = "cached"
    elif record.status == "error":
        state.verdict, state.reason = "stale", "the last attempt could not run; retrying"
    elif options.retry_failed:
        state.verdict, state.reason = "stale", "retrying a failed result (nbcache_retry_failed)"
    elif _timeout_raised(record, memo.timeout):
        state.verdict, state.reason = "stale", "the timeout was raised since it timed out"
    else:
        state.verdict = "failed"
        state.reason = record.failure.summary() if record.failure else "failed"


def _timeout_raised(record: Record, timeout: float | None) -> bool:
    if record.failure is None or record.failure.kind != "timeout":
        return False
    if timeout is None:
        return True
    return record.timeout is not None and timeout > record.timeout


def pages_under(root: Path, options: Options) -> list[Page]:
    """Every notebook page below ``root`` (for the CLI), named by relative POSIX path."""
    from .readers import is_notebook

    found = []
    skip = {"_build", ".nbcache", ".jupyter_cache", ".ipynb_checkpoints", ".git", ".nox"}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip and not d.startswith("."))
        for filename in sorted(filenames):
            path = Path(dirpath, filename)
            if is_notebook(path, options):
                found.append(Page(path.relative_to(root).as_posix(), path))
    return found
