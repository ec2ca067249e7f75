"""Waiting for a result that is being executed elsewhere: the one way, for every waiter.

Three kinds of waiter share it: a run waiting for a page another build sharing the store
executes (its lease, ``leases``), a reader forked by ``sphinx-build -j`` waiting for what the
build process executes (``runner``), and a notebook reading another page's result while a build
executes that page (``workflows.reads``). In each, no event crosses the processes: the store is
looked at again, backing off from :data:`FIRST_DELAY` to :data:`LONGEST_DELAY`, until a result
the waiter had not seen is there, or the one executing it is gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from ..records import Record
    from ..store import Store

__all__ = ["FIRST_DELAY", "LONGEST_DELAY", "new_results", "poll"]

FIRST_DELAY = 0.005  # seconds before the store is looked at again
LONGEST_DELAY = 0.1  # ... doubling up to this

T = TypeVar("T")


def new_results(
    store: Store,
    keys: Iterable[str],
    known: Mapping[str, set[str]],
    since: float,
    errors: bool = False,
) -> dict[str, Record]:
    """The newest result of each key that the waiter had not seen: not among ``known`` (key ->
    ids it saw), or, for a key with none known, stored after ``since``. A result that could not
    run (``error``) counts only with ``errors``."""
    keys = list(keys)
    if not keys:
        return {}
    found: dict[str, Record] = {}
    for key, records in store.lookup(keys).items():
        seen = known.get(key)
        for record in records:  # newest first
            if record.status == "error" and not errors:  # could not run: no answer
                continue
            if record.id not in seen if seen is not None else record.created >= since:
                found[key] = record
                break
    return found


def poll(
    fetch: Callable[[], T | None],
    keep_waiting: Callable[[], bool],
    deadline: float | None = None,
) -> T | None:
    """``fetch()`` again and again until it answers (returned), or ``keep_waiting()`` says the
    one executing it is gone (None). :class:`TimeoutError` past ``deadline`` (monotonic)."""
    delay = FIRST_DELAY
    while True:
        found = fetch()
        if found is not None:
            return found
        if not keep_waiting():
            return None
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError("no result before the deadline")
        time.sleep(delay)  # another process stores it: no event crosses processes
        delay = min(delay * 2, LONGEST_DELAY)
