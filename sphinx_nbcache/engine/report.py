"""Report: what a run did with each page (executed, failed, could not run, from cache...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..plan.verdicts import PageState
    from ..records import Record

__all__ = ["ExecutionReport"]


@dataclass(frozen=True)
class ExecutionReport:
    """What a run did; each failure's traceback is ``record.failure.traceback``."""

    succeeded: tuple[Record, ...]
    failed: tuple[Record, ...]  # the notebook's code failed (cached like a success)
    errored: tuple[Record, ...]  # could not run: no kernel, unreadable page (not cached)
    skipped: tuple[PageState, ...]  # cached already, excluded, or execution off
    states: tuple[PageState, ...] = ()  # every page planned

    @property
    def cached(self) -> tuple[PageState, ...]:
        """Pages shown from the cache without running."""
        return tuple(s for s in self.skipped if s.verdict == "cached")

    @property
    def cached_failures(self) -> tuple[PageState, ...]:
        """Pages not run because their cached result is a failure."""
        return tuple(s for s in self.skipped if s.verdict == "failed")

    @property
    def ok(self) -> bool:
        return not (self.failed or self.errored or self.cached_failures)

    def counts(self) -> dict[str, int]:
        """Pages by what happened to them; the numbers add up to the pages planned (two pages
        with the same code share one execution, and both count)."""
        by_key = {r.key: r.status for r in (*self.succeeded, *self.failed, *self.errored)}
        counts = dict.fromkeys(
            (
                "executed",
                "failed",
                "could not run",
                "from cache",
                "cached failures",
                "not executed",
            ),
            0,
        )
        for state in self.states:
            if state.verdict == "stale":
                status = by_key.get(state.key or "")
                name = {"ok": "executed", "failed": "failed"}.get(status or "", "could not run")
            elif state.verdict == "unreadable":
                name = "could not run"
            elif state.verdict == "cached":
                name = "from cache"
            elif state.verdict == "failed":
                name = "cached failures"
            else:  # excluded, off, as-is
                name = "not executed"
            counts[name] += 1
        return counts
