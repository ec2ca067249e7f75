"""What to do with a page, given what reading it found and what the cache holds.

:func:`decide` is the one place that turns (memo, stored records, options) into a verdict:
``cached`` (show the stored result), ``failed`` (show a stored failure, warn again),
``stale`` (execute; ``reason`` says why), ``excluded`` / ``off`` / ``as-is`` (render the page
as written), ``unreadable`` (warn; never execute).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import nbformat

    from .config import Options
    from .errors import NotebookReadError
    from .pages import Page
    from .parse import Memo
    from .records import Record

__all__ = ["PageState", "Verdict", "decide"]

Verdict = Literal["cached", "failed", "stale", "excluded", "off", "as-is", "unreadable"]


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
    #: parameters injected into the page's notebook (a variant); None: the page as written
    parameters: dict[str, Any] | None = None

    @property
    def stale(self) -> bool:
        return self.verdict == "stale"


def decide(
    state: PageState,
    memo: Memo,
    candidates: list[Record],
    options: Options,
    forced: bool,
) -> None:
    """Set ``state.verdict``, ``.reason`` and ``.record`` from the stored ``candidates`` for
    its key (newest first)."""
    record = candidates[0] if candidates else None
    state.record = record
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
