"""Keeping a cache within bounds: garbage collection, LRU eviction, pruning.

Nothing used or written in the last :data:`GRACE_SECONDS` is ever deleted, so all of this is
safe while other builds run on the same store: a build marks every result it will read as
used when it plans, and a blob is written (or re-stored, which refreshes its age) before the
row that names it is committed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import delete, or_, select

from ._layout import CHUNK
from ._schema import pages, results

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["GRACE_SECONDS", "collect_garbage", "evict", "prune"]

#: Results used (or stored) more recently than this are never evicted or pruned, and blobs
#: younger than this are never garbage-collected: a concurrent build may be reading them.
GRACE_SECONDS = 600.0


def collect_garbage(store: Store, grace: float = GRACE_SECONDS) -> int:
    """Delete blobs no result refers to (outputs or artifacts) and older than ``grace`` s."""
    used: set[str] = set()
    with store.db.read() as conn:
        for blob, artifacts in conn.execute(select(results.c.blob, results.c.artifacts)):
            if blob:
                used.add(blob)
            if artifacts:
                try:
                    used.update(str(a["blob"]) for a in json.loads(artifacts))
                except (ValueError, TypeError, KeyError):
                    continue
    removed = 0
    for stored in list(store.blobs.ids()):
        if stored not in used and store.blobs.age(stored) >= grace:
            store.blobs.delete(stored)
            removed += 1
    store.blobs.sweep()
    return removed


def evict(store: Store, max_entries: int, max_size: int, grace: float = GRACE_SECONDS) -> list[str]:
    """Delete least-recently-used results beyond ``max_entries`` results or ``max_size``
    bytes (0: no limit); returns the deleted ids. Recent ones stay even over the limits."""
    if max_entries <= 0 and max_size <= 0:
        return []
    cutoff = time.time() - grace
    with store.db.read() as conn:
        rows = conn.execute(
            select(results.c.id, results.c.size, results.c.last_used, results.c.created).order_by(
                results.c.last_used.desc()
            )
        ).all()
    count = size = 0
    victims = []
    for result, row_size, last_used, created in rows:
        count, size = count + 1, size + int(row_size or 0)
        over = (0 < max_entries < count) or (0 < max_size < size)
        if over and max(last_used, created) < cutoff:
            victims.append(result)
            count, size = count - 1, size - int(row_size or 0)
    evicted = _delete_unused(store, victims, cutoff)
    if evicted:
        collect_garbage(store, grace)
    return evicted


def prune(store: Store, keep_pages: Iterable[str], grace: float = GRACE_SECONDS) -> list[str]:
    """Forget the pages not in ``keep_pages`` and delete every result no kept page shows
    now (results of deleted pages, older versions of kept ones); returns their ids.

    Meant for a store used by one project (page names are per project)."""
    keep = set(keep_pages)
    cutoff = time.time() - grace
    with store.db.read() as conn:
        page_rows = conn.execute(select(pages.c.page, pages.c.id)).all()
        ids = [row[0] for row in conn.execute(select(results.c.id))]
    store.forget_pages(page for page, _ in page_rows if page not in keep)
    wanted = {result for page, result in page_rows if page in keep}
    pruned = _delete_unused(store, [i for i in ids if i not in wanted], cutoff)
    if pruned:
        collect_garbage(store, grace)
    return pruned


def _delete_unused(store: Store, ids: list[str], cutoff: float) -> list[str]:
    """Delete these results unless used or stored since ``cutoff`` (checked in SQL, so a
    concurrent ``touch`` wins)."""

    deleted: list[str] = []
    with store.db.write() as conn:
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            fresh = or_(results.c.last_used >= cutoff, results.c.created >= cutoff)
            condition = results.c.id.in_(chunk) & ~fresh
            deleted.extend(row[0] for row in conn.execute(select(results.c.id).where(condition)))
            conn.execute(delete(results).where(condition))
    return deleted
