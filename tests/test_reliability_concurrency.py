"""Two builds at once on one cache folder, one of them ``-j 2``: both succeed with outputs, no
lock or creation races, every page executed once; a third build on that cache executes nothing.
Processes racing to create a cache folder all open it."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path
from typing import Any

from _reliability import Build, kill_group

from sphinx_nbcache.store import Store

PAGES = ("p1", "p2", "p3", "p4")


def test_two_builds_share_one_cache(tmp_path: Path) -> None:
    cache = tmp_path / "shared-cache"  # does not exist yet: both builds race to create it
    first = Build.copy("reliability", tmp_path / "checkout-1")
    second = Build.copy("reliability", tmp_path / "checkout-2")
    option = ("-D", f"nbcache_path={cache}", "-D", "nbcache_jobs=2")
    procs = [first.start(*option), second.start(*option, "-j", "2")]
    try:
        codes = [proc.wait(timeout=180) for proc in procs]
    finally:
        for proc in procs:
            kill_group(proc)
    for build, code in zip((first, second), codes, strict=True):
        output = build.output()
        assert code == 0, output
        for error in ("database is locked", "already exists", "Traceback", "WARNING"):
            assert error not in output, output
        for page in PAGES:
            assert f"output of {page}" in build.html(page)
    # every page ran once: a page the other build was running was waited for (its lease)
    together = first.executed() + second.executed()
    assert together == Counter(PAGES)

    third = Build.copy("reliability", tmp_path / "checkout-3")
    code, output = third.run(*option)
    assert code == 0, output
    assert third.executed() == Counter()
    for page in PAGES:
        assert f"output of {page}" in third.html(page)


def _open_new_cache(root: str, start: Any, results: Any) -> None:
    start.wait()
    try:
        store = Store(root)
        store.open()
        store.touch([], {"0" * 64: "page"})  # a write transaction, as every build makes
        store.close()
        results.put("ok")
    except Exception as exc:  # reported to the test, which shows it
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_racing_to_create_a_cache_all_open_it(tmp_path: Path) -> None:
    # Switching a new database to WAL is not covered by SQLite's busy timeout: without the
    # retry, about one race in fifteen ended in "database is locked".
    context = multiprocessing.get_context("fork")
    failures = []
    for trial in range(30):
        start, results = context.Barrier(4), context.Queue()
        root = str(tmp_path / f"cache-{trial}")
        procs = [
            context.Process(target=_open_new_cache, args=(root, start, results)) for _ in range(4)
        ]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        failures += [outcome for outcome in outcomes if outcome != "ok"]
    assert failures == []
