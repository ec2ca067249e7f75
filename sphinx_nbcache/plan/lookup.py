"""The one way to ask for a current result: key -> stored results -> still valid? -> verdict.

Pages, variants and calls, reads of other notebooks' results, ``nbcache diff`` and the
builds planned from Sphinx's environment or from the last build kept in the cache folder all
come here. :meth:`Lookup.judge` looks the keys up in one batch (or takes the results given:
what the environment remembers), checks each result's recorded dependencies against the files
and the environment now (:class:`~sphinx_nbcache.plan.freshness.Freshness`), and lets
:func:`~sphinx_nbcache.plan.verdicts.decide` turn that into a verdict.

Results can also be kept outside the store: frozen results committed to git
(:mod:`sphinx_nbcache.freeze`) are such a source. Their owners register a factory
(:mod:`~sphinx_nbcache.plan.sources`); a lookup given the store asks each source for the pages
whose key the store holds no result of, and judges what it finds like any stored result.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from .freshness import declared_patterns
from .memo import memo_for
from .sources import Kept, kept_sources
from .verdicts import Check, PageState, decide

if TYPE_CHECKING:
    from ..config import Options
    from ..dependencies import Dependencies
    from ..notebooks.pages import Page
    from ..notebooks.runnable import Runnable
    from ..records import Record
    from ..store import Store
    from .freshness import Freshness
    from .memo import Memo

__all__ = ["Asked", "Lookup", "Stored"]

#: one question: the state to decide, what reading its page found, and whether it is forced
Asked = tuple[PageState, "Memo", bool]


#: keys -> every stored result of each, newest first (``Store.lookup``)
Stored = Callable[[Iterable[str]], dict[str, list["Record"]]]


class Lookup:
    """Current results for the pages of one project, from ``stored`` (None: the results to
    judge are always given)."""

    def __init__(
        self,
        options: Options,
        freshness: Freshness,
        stored: Stored | None,
        store: Callable[[], Store] | None = None,
    ) -> None:
        self.options = options
        self.freshness = freshness
        self._stored = stored
        self._store = store  # given: results kept outside it are asked for too
        self._kept: list[Kept] | None = None

    def check(self, page: Page) -> Check:
        """Is a stored result still valid for ``page``: what it read, declared, ran on?"""
        declared = declared_patterns(page.name, self.options)
        return functools.partial(
            self.freshness.stale_reason, folder=page.path.parent, declared=declared
        )

    def holds(self, page: Page, dependencies: Dependencies | None, kernel: str) -> str | None:
        """The check step alone, for a result known by its dependencies and kernel (what
        Sphinx's environment keeps of the results it shows): None if it still holds, else
        what changed."""
        declared = declared_patterns(page.name, self.options)
        return self.freshness.check(dependencies, kernel, page.path.parent, declared)

    def stored(self, keys: Iterable[str]) -> dict[str, list[Record]]:
        """Every stored result of these keys, newest first: one query."""
        assert self._stored is not None, "a lookup without a store is given its results"
        return self._stored(keys)

    def judge(
        self, asked: Sequence[Asked], given: Mapping[str, list[Record]] | None = None
    ) -> None:
        """Decide every state asked (verdict, reason, record, the results seen), from the
        results stored for their keys (one query) or ``given``."""
        if given is None:
            keys = {key for state, memo, _ in asked for key in (state.key, memo.sibling) if key}
            given = self.stored(keys) if keys else {}
            missing = [
                (state.page, state.key)
                for state, _, _ in asked
                if state.key and not state.variant and not given.get(state.key)
            ]
            if missing:
                given = {**given, **self.kept(missing)}
        for state, memo, forced in asked:
            candidates = given.get(state.key or "", [])
            state.seen = tuple(r.id for r in candidates)
            decide(
                state,
                memo,
                candidates,
                self.options,
                forced=forced,
                check=self.check(state.page),
                siblings=given.get(memo.sibling or "", []),
            )

    def kept(self, missing: Sequence[tuple[Page, str]]) -> dict[str, list[Record]]:
        """Results kept outside the store for these (page, key) pairs."""
        if self._store is None:
            return {}
        if self._kept is None:
            self._kept = kept_sources(self.options, self._store())
        results: dict[str, list[Record]] = {}
        for kept in self._kept:
            for key, records in kept(missing).items():
                results.setdefault(key, []).extend(records)
        return results

    def current(self, run: Runnable, force: bool = False) -> PageState:
        """The verdict on a variant or a call: ``cached`` or ``failed`` with its current
        result, or ``stale``."""
        state = PageState(run.page, "stale", run=run)
        self.judge([(state, memo_for(run), force)])
        return state
