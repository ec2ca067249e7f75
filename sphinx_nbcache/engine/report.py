"""Report: what a run did with each page (executed, failed, could not run, from cache...)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..records import Failure, Record

if TYPE_CHECKING:
    from ..plan.verdicts import PageState

__all__ = ["ExecutionReport", "build_report"]


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


def build_report(states: Iterable[PageState], done: Iterable[Record]) -> ExecutionReport:
    """What a run did with ``states``, given the results it executed or waited for."""
    states = list(states)
    by_key = {r.key: r for r in done}
    keys = dict.fromkeys(s.key for s in states if s.stale and s.key)
    ran = [by_key[k] for k in keys if k in by_key]
    unreadable = [
        Record(
            "",
            "error",
            None,
            failure=Failure(
                "read",
                "NotebookReadError",
                state.error.reason if state.error is not None else state.reason,
            ),
            page=state.page.name,
            created=time.time(),
        )
        for state in states
        if state.verdict == "unreadable"
    ]
    return ExecutionReport(
        succeeded=tuple(r for r in ran if r.status == "ok"),
        failed=tuple(r for r in ran if r.status == "failed"),
        errored=(*(r for r in ran if r.status == "error"), *unreadable),
        skipped=tuple(s for s in states if not s.stale and s.verdict != "unreadable"),
        states=tuple(states),
    )
