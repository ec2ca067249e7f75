"""The one account of a run: what happened to each page, variant and call, and the totals.

Every unit planned (a page as written, a page shown with parameters: a variant, a notebook
called as a function: a call) ends in exactly one of :data:`OUTCOMES`, so the numbers always
add up to what was planned:

* ``executed``: ran to the end in this run (or in another build sharing the store, meanwhile);
* ``failed``: its result is a failure, run now or shown from the cache (``cached``);
* ``could not start``: no kernel, an unreadable page, an interrupted run (status ``error``);
* ``from cache``: its cached result is shown, nothing ran;
* ``skipped``: excluded, execution off, outputs kept as written, or (for ``nbcache report``)
  stale and not executed yet.

The build's summary line, ``nbcache execute``'s closing line, the ``nbcache-report`` directive
and the JSON and JUnit reports (:mod:`.reportfiles`) all read this account.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from ..records import Failure, Record

if TYPE_CHECKING:
    from ..plan.verdicts import PageState

__all__ = ["KINDS", "OUTCOMES", "Entry", "ExecutionReport", "build_report", "kind_of"]

OUTCOMES = ("executed", "failed", "could not start", "from cache", "skipped")
#: what a unit is, and how a count of it is named (singular, plural)
KINDS = {
    "page": ("notebook page", "notebook pages"),
    "variant": ("variant", "variants"),
    "call": ("call", "calls"),
}


def kind_of(variant: str | None) -> str:
    """``page``, ``variant`` or ``call``, from the ``pages`` row a result is kept as."""
    if not variant:
        return "page"
    return "call" if variant.startswith("call:") else "variant"


class Entry(NamedTuple):
    """One unit of the account."""

    name: str  # the page's name (a variant or a call: the notebook page it runs)
    kind: str  # one of KINDS
    outcome: str  # one of OUTCOMES
    record: Record | None  # its result (run now, or shown from the cache); None: none
    reason: str = ""  # why it ran (was stale), was skipped or could not start
    cached: bool = False  # shown from the cache: nothing ran
    elsewhere: bool = False  # executed by another build sharing the store
    parameters: dict[str, Any] | None = None  # a variant's or a call's

    @property
    def label(self) -> str:
        """The name people see: a variant or a call with its parameters."""
        if self.parameters is None:
            return self.name
        shown = json.dumps(self.parameters, ensure_ascii=False, sort_keys=True, default=str)
        return f"{self.name} {shown if len(shown) <= 60 else shown[:57] + '...'}"

    @property
    def ran(self) -> bool:
        """Executed in this run, here (its time counts as this run's kernel time)."""
        return self.outcome in ("executed", "failed") and not (self.cached or self.elsewhere)

    def explain(self) -> str:
        """What happened, in the words every message uses (``Record.explain``)."""
        if self.record is not None and self.outcome in ("failed", "could not start"):
            return self.record.explain()
        if self.outcome == "skipped":
            return f"skipped: {self.reason}" if self.reason else "skipped"
        return self.outcome


@dataclass(frozen=True)
class ExecutionReport:
    """What a run did; each failure's traceback is ``record.failure.traceback``."""

    succeeded: tuple[Record, ...]
    failed: tuple[Record, ...]  # the notebook's code failed (cached like a success)
    errored: tuple[Record, ...]  # could not start: no kernel, unreadable page (not cached)
    skipped: tuple[PageState, ...]  # cached already, excluded, or execution off
    states: tuple[PageState, ...] = ()  # every unit planned
    entries: tuple[Entry, ...] = ()  # the account: one per unit planned, in order
    wall: float | None = None  # seconds the run took (None: not measured)
    most_at_once: int | None = None  # most notebooks executing at once (None: not known)
    created: float = 0.0  # when the account was made

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
        return not any(e.outcome in ("failed", "could not start") for e in self.entries)

    def counts(self, kind: str | None = None) -> dict[str, int]:
        """Units (of ``kind``, default every kind) by outcome; they add up to those planned."""
        counts = dict.fromkeys(OUTCOMES, 0)
        for entry in self.entries:
            if kind is None or entry.kind == kind:
                counts[entry.outcome] += 1
        return counts

    @property
    def kinds(self) -> list[str]:
        """The kinds of unit this run planned, pages first."""
        present = {entry.kind for entry in self.entries}
        return [kind for kind in KINDS if kind in present] or ["page"]

    @property
    def failing(self) -> list[Entry]:
        """The units that failed or could not start, in order."""
        return [e for e in self.entries if e.outcome in ("failed", "could not start")]

    @property
    def kernel_time(self) -> float:
        """Seconds the notebooks run here took, each from its first cell to its last reply
        (never more than the most at once times the wall time)."""
        return sum(e.record.runtime for e in self.entries if e.ran and e.record is not None)

    @property
    def cpu_time(self) -> float | None:
        """CPU seconds their kernels used (None: no kernel said)."""
        known = [
            e.record.cpu_time
            for e in self.entries
            if e.ran and e.record is not None and e.record.cpu_time is not None
        ]
        return sum(known) if known else None

    def summary(self) -> str:
        """``12 notebook pages: 1 executed, 11 from cache; 1 variant: 1 executed``: every
        kind planned, its outcomes (executed, failed, could not start and from cache always;
        skipped when some were), cached failures and other builds' runs in brackets."""
        parts = []
        for kind in self.kinds:
            counts = self.counts(kind)
            entries = [e for e in self.entries if e.kind == kind]
            words = []
            for outcome, n in counts.items():
                if n or outcome != "skipped":
                    words.append(f"{n} {outcome}{_detail(outcome, entries)}")
            one, many = KINDS[kind]
            total = sum(counts.values())
            parts.append(f"{total} {one if total == 1 else many}: {', '.join(words)}")
        return "; ".join(parts)

    def timing(self) -> str:
        """``25.3 s of kernel time (12.1 s CPU), at most 2 at once, in 14.0 s``."""
        if not any(e.ran for e in self.entries):
            return ""
        text = f"{self.kernel_time:.1f} s of kernel time"
        cpu = self.cpu_time
        if cpu is not None:
            text += f" ({cpu:.1f} s CPU)"
        if self.most_at_once:
            text += f", at most {self.most_at_once} at once"
        if self.wall is not None:
            text += f", in {self.wall:.1f} s"
        return text


def _detail(outcome: str, entries: list[Entry]) -> str:
    if outcome == "executed":
        elsewhere = sum(1 for e in entries if e.outcome == outcome and e.elsewhere)
        return f" ({elsewhere} by another build)" if elsewhere else ""
    if outcome == "failed":
        cached = sum(1 for e in entries if e.outcome == outcome and e.cached)
        return f" ({cached} from cache)" if cached else ""
    return ""


def build_report(
    states: Iterable[PageState],
    done: Iterable[Record],
    elsewhere: Iterable[Record] = (),
    *,
    wall: float | None = None,
    most_at_once: int | None = None,
    executing: bool = True,
) -> ExecutionReport:
    """The account of ``states`` (every unit planned), given the results this run executed
    (``done``) and those another build sharing the store executed meanwhile (``elsewhere``).
    Not ``executing`` (an account of the cache as it is), stale units are skipped."""
    states = list(states)
    others = {r.key: r for r in elsewhere}
    by_key = {**others, **{r.key: r for r in done}}
    entries = [_entry(state, by_key, others, executing) for state in states]
    ran = [e.record for e in entries if e.record is not None and not e.cached]
    unique = list({id(r): r for r in ran}.values())
    return ExecutionReport(
        succeeded=tuple(r for r in unique if r.status == "ok"),
        failed=tuple(r for r in unique if r.status == "failed"),
        errored=tuple(r for r in unique if r.status == "error"),
        skipped=tuple(s for s in states if not s.stale and s.verdict != "unreadable"),
        states=tuple(states),
        entries=tuple(entries),
        wall=wall,
        most_at_once=most_at_once,
        created=time.time(),
    )


def _entry(
    state: PageState, by_key: dict[str, Record], others: dict[str, Record], executing: bool
) -> Entry:
    variant = state.variant
    kind = kind_of(variant)
    parameters = state.run.parameters if state.run is not None and variant else None
    name = state.page.name

    def entry(outcome: str, record: Record | None, reason: str = "", **flags: bool) -> Entry:
        return Entry(name, kind, outcome, record, reason, parameters=parameters, **flags)

    ran = by_key.get(state.key or "") if executing else None
    if ran is not None and state.verdict in ("cached", "failed"):  # planned again after it ran
        outcome = {"ok": "executed", "failed": "failed"}.get(ran.status, "could not start")
        return entry(outcome, ran, elsewhere=ran.key in others)  # (why it ran: not kept)
    if state.verdict == "stale" and not executing:
        return entry("skipped", state.record, f"stale, not executed yet: {state.reason}")
    if state.verdict == "stale":
        record = by_key.get(state.key or "")
        if record is None:
            interrupted = Record(
                state.key or "",
                "error",
                None,
                failure=Failure("internal", "NotRun", "it did not run (the run was stopped)"),
                page=name,
                created=time.time(),
            )
            return entry("could not start", interrupted, state.reason)
        outcome = {"ok": "executed", "failed": "failed"}.get(record.status, "could not start")
        return entry(outcome, record, state.reason, elsewhere=record.key in others)
    if state.verdict == "unreadable":
        reason = state.error.reason if state.error is not None else state.reason
        failure = Failure("read", "NotebookReadError", reason)
        record = Record("", "error", None, failure=failure, page=name, created=time.time())
        return entry("could not start", record, reason)
    if state.verdict == "cached":
        return entry("from cache", state.record, state.reason, cached=True)
    if state.verdict == "failed":
        return entry("failed", state.record, state.reason, cached=True)
    return entry("skipped", state.record, state.reason or state.verdict)
