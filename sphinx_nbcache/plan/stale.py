"""Find stale: for each page, its key, its stored result, and what to do with it.

Step one of the data flow (find stale -> execute -> store -> merge -> render -> report). Pages
are read at most once (``parse``), every key is looked up in one batch, and ``verdicts``
decides (:class:`~sphinx_nbcache.plan.lookup.Lookup`); ``ordering`` then says which stale page
runs first.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import TYPE_CHECKING

from ..errors import NotebookReadError
from ..notebooks.pages import Page
from .lookup import Asked, Lookup
from .memo import Memo
from .parse import read_pages
from .verdicts import PageState

if TYPE_CHECKING:
    from ..config import Options
    from ..notebooks.readers import MdConfig
    from ..store import Store

__all__ = ["plan_pages"]


def plan_pages(
    pages: Iterable[Page],
    options: Options,
    store: Store,
    memos: MutableMapping[str, Memo] | None = None,
    must_read: set[str] | None = None,
    force: set[str] | None = None,
    md_config: MdConfig = None,
    lookup: Lookup | None = None,
) -> list[PageState]:
    """A verdict for every page, in the order given.

    ``memos`` (by page name) is consulted and updated; pages in ``must_read`` are read even if
    their memo matches. Pages in ``force`` are stale whatever the cache holds, and so are pages
    being read whose execution mode is ``force``. ``lookup`` judges the stored results
    (default: against this machine, now).
    """
    if lookup is None:
        from .freshness import Freshness

        lookup = Lookup(options, Freshness(options, md_config=md_config), store.lookup)
    memos = {} if memos is None else memos
    must_read = must_read or set()
    force = force or set()
    pages = list(pages)
    read = read_pages(pages, options, store, memos, must_read, md_config)
    states: list[PageState] = []
    asked: list[Asked] = []
    for page in pages:
        found = read.get(page.name)
        if isinstance(found, NotebookReadError):
            states.append(PageState(page, "unreadable", found.reason, error=found))
            continue
        memo = memos[page.name]
        state = PageState(page, "stale", key=memo.key, run=found)
        forced = page.name in force or (memo.mode == "force" and page.name in must_read)
        states.append(state)
        asked.append((state, memo, forced))
    lookup.judge(asked)
    return states
