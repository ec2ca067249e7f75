"""Sources of results kept outside the store, registered by their owners.

Frozen results committed to git (:mod:`sphinx_nbcache.freeze`) are one: a build reads them
when the cache has no result for a page's key. The owner registers a factory on import (this
module imports nothing else, so registering costs a build nothing); the one lookup
(:class:`~sphinx_nbcache.plan.lookup.Lookup`) asks the sources of its project for the pages
whose key the store holds no result of, and judges what they give like any stored result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Options
    from ..notebooks.pages import Page
    from ..records import Record
    from ..store import Store

__all__ = ["Kept", "KeptSource", "kept_sources", "register_source"]

#: (page, key) pairs the store holds no result of -> the results kept for them, by key
Kept = Callable[[Sequence[tuple["Page", str]]], dict[str, list["Record"]]]
#: (options, the store) -> the project's source of kept results (None: it has none)
KeptSource = Callable[["Options", "Store"], "Kept | None"]

_SOURCES: dict[str, KeptSource] = {}


def register_source(name: str, source: KeptSource) -> None:
    """Register (or replace) the source called ``name``."""
    _SOURCES[name] = source


def kept_sources(options: Options, store: Store) -> list[Kept]:
    """The sources of a project (its options) with results to give."""
    found = (source(options, store) for source in list(_SOURCES.values()))
    return [kept for kept in found if kept is not None]
