"""What to do with a page, given what reading it found and what the cache holds.

:func:`decide` is the one place that turns (memo, stored records, options) into a verdict:
``cached`` (show the stored result), ``failed`` (show a stored failure, warn again),
``stale`` (execute; ``reason`` says why), ``excluded`` / ``off`` / ``as-is`` (render the page
as written), ``unreadable`` (warn; never execute).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ..config import Options
    from ..errors import NotebookReadError
    from ..notebooks.pages import Page
    from ..notebooks.runnable import Runnable
    from ..records import Record
    from .memo import Memo

__all__ = ["PageState", "Verdict", "decide"]

Verdict = Literal["cached", "failed", "stale", "excluded", "off", "as-is", "unreadable"]


class PageState:
    """The verdict on one page (or a variant of it, or a call), with what running it needs
    (mutable: planning fills it in). A plain class, not a dataclass: see
    :class:`~sphinx_nbcache.config.Options` for why a build's classes avoid generated code."""

    __slots__ = ("error", "key", "no_wait", "page", "reason", "record", "run", "seen", "verdict")

    def __init__(
        self,
        page: Page,
        verdict: Verdict,
        reason: str = "",
        *,
        key: str | None = None,
        record: Record | None = None,
        run: Runnable | None = None,
        error: NotebookReadError | None = None,
        no_wait: bool = False,
        seen: tuple[str, ...] | None = None,
    ) -> None:
        self.page = page
        self.verdict = verdict
        self.reason = reason
        self.key = key if key is not None or run is None else run.key
        self.record = record
        #: what runs, once the page was read (None: known from its memo alone)
        self.run = run
        self.error = error
        #: in a cycle of pages reading each other: its reads of other pages do not wait
        self.no_wait = no_wait
        #: ids of the results of ``key`` the store held when it was decided (None: unknown)
        self.seen = seen

    def __repr__(self) -> str:
        return f"PageState({self.page.name!r}, {self.verdict!r}, reason={self.reason!r})"

    @property
    def stale(self) -> bool:
        return self.verdict == "stale"

    @property
    def id(self) -> str:
        """Unique among a run's states: the page's name, with its variant's row if any."""
        variant = self.variant
        return self.page.name if not variant else f"{self.page.name}?{variant[:16]}"

    @property
    def variant(self) -> str:
        """The ``pages`` row its result is kept as ("" for the page as written)."""
        return self.run.variant if self.run is not None else ""


Check = Callable[["Record"], "str | None"]  # None: still valid; else what changed


def decide(
    state: PageState,
    memo: Memo,
    candidates: list[Record],
    options: Options,
    forced: bool,
    check: Check | None = None,
    siblings: list[Record] | None = None,
) -> None:
    """Set ``state.verdict``, ``.reason`` and ``.record``.

    ``candidates`` are the stored results of the page's key, newest first; ``check`` says
    whether a result's recorded dependencies still hold (the first that holds is used).
    ``siblings`` are results of the same code run with the other ``allow_errors``: one that
    raised nothing is as good as a result of this key.
    """
    record, stale_reason = _valid(candidates, siblings or [], options, check)
    state.record = record
    if memo.excluded:
        state.verdict, state.reason = "excluded", "matches nb_execution_excludepatterns"
    elif memo.mode == "off":
        state.verdict, state.reason = "off", "execution mode is off"
    elif memo.mode == "auto" and memo.has_outputs and not forced:
        state.verdict, state.reason = "as-is", "auto mode: every code cell has outputs"
    elif forced:
        state.verdict, state.reason = "stale", "forced (execution mode force, or --force)"
    elif memo.mode == "force" and record is not None:
        state.verdict = "cached" if record.ok else "failed"  # not read: keep what it shows
    elif record is None:
        state.verdict, state.reason = "stale", "no cached result for this code"
    elif stale_reason is not None:
        state.verdict, state.reason = "stale", stale_reason
    elif record.status == "ok":
        from .freshness import describe_fresh

        state.verdict, state.reason = "cached", describe_fresh(record)
    elif record.status == "error":
        state.verdict, state.reason = "stale", "the last attempt could not run; retrying"
    elif options.retry_failed:
        state.verdict, state.reason = "stale", "retrying a failed result (nbcache_retry_failed)"
    elif _timeout_raised(record, memo.timeout):
        state.verdict, state.reason = "stale", "the timeout was raised since it timed out"
    else:
        state.verdict = "failed"
        state.reason = record.failure.summary() if record.failure else "failed"


def _valid(
    candidates: list[Record], siblings: list[Record], options: Options, check: Check | None
) -> tuple[Record | None, str | None]:
    """The result to show, and (when none is valid) why the newest is not. A result that could
    not run (``error``) is shown only when there is no other: it is there to be retried."""
    for record in sorted(candidates, key=lambda r: r.status == "error"):  # stable: newest first
        if check is None or check(record) is None:
            return record, None
    for record in siblings:  # the same code, run with the other allow_errors
        raised_nothing = record.raised is False or (
            record.raised is None and record.ok and record.allow_errors is False
        )
        if raised_nothing and (check is None or check(record) is None):
            return record, None
    if not candidates:
        return None, None
    newest = candidates[0]
    return newest, check(newest) if check is not None else None


def _timeout_raised(record: Record, timeout: float | None) -> bool:
    if record.failure is None or record.failure.kind != "timeout":
        return False
    if timeout is None:
        return True
    return record.timeout is not None and timeout > record.timeout
