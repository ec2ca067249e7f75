"""Reading pages, at most once: the memo of what a file held, and parsing many in parallel.

A :class:`Memo` remembers what reading a file found (its key and execution settings) while
the file keeps its size and modification time. A fresh checkout has new modification times but
the same bytes: the store's ``sources`` table maps a digest of (options, format, bytes) to what
reading those bytes found, so such files are not parsed again. Files never read before are
parsed, in forked workers when there are many.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from ..config import Options
from ..errors import NotebookReadError
from ..notebooks.hashing import HASH_VERSION
from ..notebooks.pages import Page
from ..notebooks.readers import MdConfig, read_regular_file
from ..notebooks.runnable import Runnable, read_runnable
from .memo import Memo, memo_for, not_a_notebook, still_valid

if TYPE_CHECKING:
    from ..store import Store

__all__ = [
    "PARALLEL_PARSE_MIN",
    "Memo",
    "inspect_page",
    "not_a_notebook",
    "read_contents",
    "read_pages",
    "still_valid",
]

#: New files to parse before forked workers are worth starting: below this, starting them costs
#: more than parsing in parallel saves (a MyST or percent file takes ~2 ms to parse).
PARALLEL_PARSE_MIN = 64


#: what reading one page gave: what runs (None when the bytes were known and not parsed), or
#: why it could not be read
Read = Runnable | None | NotebookReadError


def inspect_page(
    page: Page,
    options: Options,
    md_config: MdConfig = None,
    raw: bytes | None = None,
    digest: str | None = None,
) -> tuple[Runnable, Memo]:
    """Read a page (or its ``raw`` bytes, whose ``digest`` is given): what runs, and its memo."""
    stat = page.path.stat()
    if raw is None or digest is None:
        raw = read_regular_file(page.path) if raw is None else raw
        digest = _digest(_fingerprint(options, md_config), page, options, raw)
    run = read_runnable(page, options, md_config, raw=raw)
    return run, memo_for(run, stat, options.is_excluded(page.path), digest)


def read_pages(
    pages: list[Page],
    options: Options,
    store: Store,
    memos: MutableMapping[str, Memo],
    must_read: set[str],
    md_config: MdConfig = None,
) -> dict[str, Read]:
    """Bring ``memos`` up to date for ``pages``; what reading found, for the pages read.

    Pages whose memo still holds are not read (unless in ``must_read``); pages whose exact
    bytes were read before (the store knows their digest) are read but not parsed; the rest
    are parsed, and what they held is remembered in the store.
    """
    fresh = {p.name for p in pages if p.name not in memos or not still_valid(memos[p.name], p.path)}
    wanted = [p for p in pages if p.name in fresh | must_read]
    contents = read_contents(wanted, options, md_config)
    known = store.sources(digest for _, digest in contents.values()) if contents else {}
    new = [(p, *contents[p.name]) for p in wanted if p.name in contents]
    new = [(p, raw, digest) for p, raw, digest in new if digest not in known]
    parsed = _inspect_all(new, options, md_config)  # these exact bytes were never read before
    learned: list[dict[str, Any]] = []
    found: dict[str, Read] = {}
    for page in wanted:
        if page.name not in contents:
            memos.pop(page.name, None)
            found[page.name] = NotebookReadError(str(page.path), "the file cannot be read")
            continue
        digest = contents[page.name][1]
        try:
            if digest in known:  # these exact bytes were read before: no parsing
                memos[page.name] = _memo_from_source(page, options, known[digest], digest)
                found[page.name] = None
                continue
            result = parsed[page.name]
            if isinstance(result, Exception):
                raise result
        except (NotebookReadError, OSError) as exc:
            memos.pop(page.name, None)
            found[page.name] = (
                exc
                if isinstance(exc, NotebookReadError)
                else NotebookReadError(str(page.path), str(exc))
            )
            continue
        run, memos[page.name] = result
        learned.append(_source_row(digest, memos[page.name]))
        found[page.name] = run
    if learned:
        store.remember_sources(learned)
    return found


_SHARED: tuple[Options, Any] | None = None  # what forked parsing workers read it with


def _inspect_all(
    items: list[tuple[Page, bytes, str]], options: Options, md_config: MdConfig
) -> dict[str, tuple[Runnable, Memo] | NotebookReadError | OSError]:
    """``inspect_page`` on each (page, bytes, digest); many pages are parsed in forked
    workers."""
    global _SHARED
    workers = min(os.cpu_count() or 1, 4, len(items) // (PARALLEL_PARSE_MIN // 2))
    if workers < 2 or not _can_fork():
        return {item[0].name: _inspect_one(item, options, md_config) for item in items}
    import multiprocessing

    # one page of each kind here first: the workers inherit the readers' imports
    first = {}
    for item in items:
        kind = options.format_for(item[0].path) or item[0].path.suffix
        if kind not in first:
            first[kind] = (item[0], _inspect_one(item, options, md_config))
    done = {page.name: result for page, result in first.values()}
    rest = [item for item in items if item[0].name not in done]
    _SHARED = (options, md_config)
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            chunk = max(1, len(rest) // (workers * 4))
            found = pool.map(_inspect_in_worker, rest, chunksize=chunk)
    finally:
        _SHARED = None
    done.update((item[0].name, result) for item, result in zip(rest, found, strict=True))
    return done


def _inspect_one(
    item: tuple[Page, bytes, str], options: Options, md_config: MdConfig
) -> tuple[Runnable, Memo] | NotebookReadError | OSError:
    page, raw, digest = item
    try:
        return inspect_page(page, options, md_config, raw, digest)
    except (NotebookReadError, OSError) as exc:  # reported by the caller, page by page
        return exc


Inspected = tuple[Runnable, Memo] | NotebookReadError | OSError


def _inspect_in_worker(item: tuple[Page, bytes, str]) -> Inspected:
    assert _SHARED is not None
    return _inspect_one(item, *_SHARED)


def _can_fork() -> bool:
    """Forking is safe only with no other thread (one could hold a lock the child needs);
    Linux only (macOS system libraries do not survive a fork)."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


def _fingerprint(options: Options, md_config: MdConfig) -> bytes:
    """Everything besides a file's bytes that decides what reading it finds."""
    md = re.sub(r" at 0x[0-9a-f]+", "", repr(md_config))  # no addresses: stable across runs
    parts = (
        HASH_VERSION,
        "expressions",  # keys hold {eval} expressions: what was read before holds none
        options.mode,
        options.timeout,
        options.allow_errors,
        options.kernel_aliases,
        options.custom_formats,
        options.metadata_key,
        md,
    )
    return hashlib.sha256(repr(parts).encode()).digest()


def read_contents(
    pages: list[Page], options: Options, md_config: MdConfig = None
) -> dict[str, tuple[bytes, str]]:
    """page name -> (its bytes, digest of options + reader + bytes: what a memo of it holds);
    unreadable pages left out."""
    fingerprint = _fingerprint(options, md_config)
    found = {}
    for page in pages:
        try:
            raw = read_regular_file(page.path)
        except OSError:
            continue
        found[page.name] = (raw, _digest(fingerprint, page, options, raw))
    return found


def _digest(fingerprint: bytes, page: Page, options: Options, raw: bytes) -> str:
    fmt = options.format_for(page.path)
    reader = (fmt.suffix if fmt else page.path.suffix).encode()
    return hashlib.sha256(fingerprint + reader + b"\0" + raw).hexdigest()


def _source_row(digest: str, memo: Memo) -> dict[str, Any]:
    return {
        "digest": digest,
        "key": memo.key,
        "sibling": memo.sibling,
        "mode": memo.mode,
        "has_outputs": int(memo.has_outputs),
        "timeout": memo.timeout,
    }


def _memo_from_source(page: Page, options: Options, row: Mapping[str, Any], digest: str) -> Memo:
    stat = page.path.stat()
    return Memo(
        mtime_ns=stat.st_mtime_ns,
        size=stat.st_size,
        key=row["key"],
        mode=row["mode"],
        has_outputs=bool(row["has_outputs"]),
        excluded=options.is_excluded(page.path),
        timeout=row["timeout"],
        sibling=row.get("sibling"),
        digest=digest,
    )
