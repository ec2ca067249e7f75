"""Cache limits: least recently used results go first, never one used in the grace period;
results of pages gone from the project can be pruned."""

from __future__ import annotations

import os
import sqlite3
import time
from collections import Counter
from pathlib import Path

from _reliability import keep_pages

from sphinx_nbcache.records import Outputs, Record
from sphinx_nbcache.store import GRACE_SECONDS, Store

HOUR = 3600.0


def _key(n: int) -> str:
    return f"{n:064x}"


def _filled(root: Path, ages_h: list[float]) -> Store:
    """One record per age (hours since last use), each with its own blob, all blobs old."""
    store = Store(root)
    now = time.time()
    for n, age in enumerate(ages_h):
        then = now - age * HOUR
        record = Record(_key(n), "ok", None, page=f"page{n}", created=then, last_used=then)
        stored = store.put(record, Outputs(({"outputs": [{"n": n, "pad": "x" * 100}]},)))
        assert stored.blob is not None
        os.utime(store.blobs.path(stored.blob), (then, then))
    return store


def _keys(store: Store) -> set[str]:
    return {r.key for r in store.records()}


def test_max_entries_evicts_least_recently_used(tmp_path: Path) -> None:
    store = _filled(tmp_path, [5, 1, 3, 4, 2])
    evicted = store.evict(max_entries=2)
    assert set(evicted) == {_key(0), _key(3), _key(2)}
    assert _keys(store) == {_key(1), _key(4)}
    assert len(list(store.blobs.ids())) == 2  # their blobs went too


def test_max_size_evicts_until_under_the_limit(tmp_path: Path) -> None:
    store = _filled(tmp_path, [3, 1, 2])
    one = store.records()[0]
    size = os.path.getsize(store.blobs.path(one.blob or ""))
    assert store.evict(max_size=2 * size) == [_key(0)]
    assert _keys(store) == {_key(1), _key(2)}


def test_results_used_in_the_grace_period_are_never_evicted(tmp_path: Path) -> None:
    store = _filled(tmp_path, [5, 4, 3])
    store.touch([_key(0)])  # a concurrent build planned to read it just now
    assert set(store.evict(max_entries=1)) == {_key(1), _key(2)}
    assert _keys(store) == {_key(0)}
    fresh = _filled(tmp_path / "fresh", [0, 0, 0])
    assert fresh.evict(max_entries=1) == []  # all within GRACE_SECONDS: over the limit, kept
    assert GRACE_SECONDS >= 60


def test_prune_forgets_deleted_pages_and_old_versions(tmp_path: Path) -> None:
    store = _filled(tmp_path, [5, 5, 5, 5])
    store.touch([], {_key(0): "a", _key(1): "b", _key(2): "c"})  # key 3: an old version
    _age_rows(store, 5 * HOUR)
    pruned = store.prune(["a", "b"])
    assert set(pruned) == {_key(2), _key(3)}
    assert _keys(store) == {_key(0), _key(1)}
    assert set(store.page_keys()) == {"a", "b"}


def _age_rows(store: Store, age: float) -> None:
    then = time.time() - age
    with sqlite3.connect(store.db.path) as conn:
        conn.execute("UPDATE results SET last_used = ?, created = ?", (then, then))
    conn.close()


def test_build_evicts_at_the_end(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("reliability")
    keep_pages(project.src, "p1", "p2")
    assert project.build().total == 2
    store = Store(project.src / ".nbcache")
    _age_rows(store, 2 * HOUR)
    project.edit("p2.md", 'print("output of p2")', 'print("output of p2", "edited")')
    edited = project.build(nbcache_max_entries=2)
    assert edited.executed == Counter({"p2": 1})
    assert "evicted 1 least recently used" in edited.status
    assert len(store.records()) == 2  # p1 (used by this build) and the new p2
    store.close()
    assert project.build(nbcache_max_entries=2).total == 0
