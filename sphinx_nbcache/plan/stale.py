"""Find stale: for each page, its key, its stored result, and what to do with it.

Step one of the data flow (find stale -> execute -> store -> merge -> render -> report). Pages
are read at most once (``parse``), every key is looked up in one batch, and ``verdicts``
decides; :func:`execution_order` then says which stale page runs first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

from ..config import Options
from ..errors import NotebookReadError
from ..notebooks.pages import Page
from .freshness import Freshness, declared_patterns
from .memo import Memo
from .parse import read_pages
from .verdicts import Check, PageState, decide

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["execution_order", "plan_pages", "result_check"]


def plan_pages(
    pages: Iterable[Page],
    options: Options,
    store: Store,
    memos: MutableMapping[str, Memo] | None = None,
    must_read: set[str] | None = None,
    force: set[str] | None = None,
    md_config: Any = None,
    freshness: Freshness | None = None,
) -> list[PageState]:
    """A verdict for every page, in the order given.

    ``memos`` (by page name) is consulted and updated; pages in ``must_read`` are read even if
    their memo matches. Pages in ``force`` are stale whatever the cache holds, and so are pages
    being read whose execution mode is ``force``. ``freshness`` checks what each stored result
    recorded it depended on (default: a check against this machine, now).
    """
    if freshness is None:
        freshness = Freshness(options)
    memos = {} if memos is None else memos
    must_read = must_read or set()
    force = force or set()
    pages = list(pages)
    read = read_pages(pages, options, store, memos, must_read, md_config)
    states: list[PageState] = []
    for page in pages:
        found = read.get(page.name)
        if isinstance(found, NotebookReadError):
            states.append(PageState(page, "unreadable", found.reason, error=found))
            continue
        notebook, own = found if found is not None else (None, None)
        key = memos[page.name].key
        states.append(PageState(page, "stale", key=key, options=own, notebook=notebook))
    keys = [s.key for s in states if s.key]
    siblings = [memos[s.page.name].sibling for s in states if s.key]
    candidates = store.lookup([*keys, *(k for k in siblings if k)])
    for state in states:
        if state.verdict == "unreadable":
            continue
        memo = memos[state.page.name]
        name = state.page.name
        forced = name in force or (memo.mode == "force" and name in must_read)
        check = result_check(freshness, state.page, options)
        state.seen = tuple(r.id for r in candidates.get(state.key or "", []))
        decide(
            state,
            memo,
            candidates.get(state.key or "", []),
            options,
            forced=forced,
            check=check,
            siblings=candidates.get(memo.sibling or "", []),
        )
    return states


def result_check(freshness: Freshness, page: Page, options: Options) -> Check:
    """Is a stored result still valid for ``page`` (what it read, declared, ran on)?"""
    return functools.partial(
        freshness.stale_reason,
        folder=page.path.parent,
        declared=declared_patterns(page.name, options),
    )


def execution_order(
    stale: list[PageState],
    store: Store,
    warn: Callable[[str, str, str], Any] | None = None,
) -> list[PageState]:
    """The order to execute stale pages in: longest recorded run time first (it shortens the
    whole run when there are more pages than workers); pages with no recorded run time first of
    all, in their given order, since nothing says they are short. A page that reads another
    stale page's result runs after it (:mod:`~sphinx_nbcache.plan.ordering`); pages reading each
    other are warned about (``warn(page, message, subtype)``) and do not wait for each other."""
    from .ordering import order_by_reads, reads_of

    previous = store.page_keys()
    old = store.lookup(previous[s.page.name] for s in stale if s.page.name in previous)
    runtimes: dict[str, float] = {}
    for state in stale:
        records = old.get(previous.get(state.page.name, ""), [])
        if records and records[0].runtime > 0:
            runtimes[state.page.name] = records[0].runtime
    unknown = [s for s in stale if s.page.name not in runtimes]
    known = sorted(
        (s for s in stale if s.page.name in runtimes), key=lambda s: -runtimes[s.page.name]
    )
    if len(stale) < 2:
        return unknown + known
    paths = {s.page.path.resolve(): s.page.name for s in stale}
    reads = {}
    for state in stale:
        records = old.get(previous.get(state.page.name, ""), [])
        reads[state.page.name] = reads_of(state, paths, records[0] if records else None)
    ordered, loops = order_by_reads(unknown + known, reads)
    by_name = {s.page.name: s for s in stale}
    for loop in loops:
        for name in loop:
            others = ", ".join(n for n in loop if n != name) or "itself"
            by_name[name].no_wait = True
            if warn is not None:
                warn(
                    name,
                    f"this page and {others} read each other's results, so neither can run "
                    "first: their reads do not wait (a read of a result not there yet fails); "
                    "break the cycle",
                    "cycle",
                )
    return ordered
