"""A build killed (SIGKILL) or interrupted (SIGINT) mid-way loses nothing it had finished.

Each test starts a real ``sphinx-build`` whose notebook ``NBCACHE_TEST_GATE`` writes its name to
a FIFO and then hangs: the test blocks on the FIFO (no sleeps), signals the build's process
group, then checks the process tree, the store and the next build.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from _reliability import Build, Fifo, assert_all_gone, kernels_of, kill_group

from sphinx_nbcache.store import Store

PAGES = ("p1", "p2", "p3", "p4")


def _assert_all_outputs(build: Build) -> None:
    for page in PAGES:
        html = build.html(page)
        assert f"first cell of {page}" in html, page
        assert f"output of {page}" in html, page


def _stored_pages(build: Build) -> set[str]:
    store = Store(build.src / ".nbcache")
    try:
        return {r.page for r in store.records() if r.ok}
    finally:
        store.close()


@pytest.mark.parametrize(
    ("gate", "jobs", "finished"),
    [
        pytest.param("p1", "2", set(), id="while-the-first-notebooks-execute"),
        pytest.param("p3", "1", {"p1", "p2"}, id="after-two-results-are-stored"),
    ],
)
def test_sigkill_mid_build(tmp_path: Path, gate: str, jobs: str, finished: set[str]) -> None:
    build = Build.copy("reliability", tmp_path / "project")
    fifo = Fifo(tmp_path / "fifo")
    proc = build.start(
        "-D", f"nbcache_jobs={jobs}", NBCACHE_TEST_GATE=gate, NBCACHE_TEST_FIFO=str(fifo.path)
    )
    try:
        assert fifo.wait_line(proc=proc) == gate
        kernels = kernels_of(proc.pid)
        assert kernels
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        # the kernels live in their own sessions; ipykernel sees its parent die and exits
        assert_all_gone(kernels, timeout=15)
    finally:
        kill_group(proc)
        fifo.close()
    # jobs=1 holds the slot until a result is stored: p1 and p2 are in; the gate page is not
    stored = _stored_pages(build)
    assert finished <= stored
    assert gate not in stored

    code, output = build.run("-W", "--keep-going")
    assert code == 0, output
    assert build.executed() == Counter(p for p in PAGES if p not in stored)
    _assert_all_outputs(build)
    code, output = build.run()
    assert code == 0, output
    assert build.executed() == Counter()


def test_sigint_stops_promptly_and_leaves_no_kernel(tmp_path: Path) -> None:
    build = Build.copy("reliability", tmp_path / "project")
    fifo = Fifo(tmp_path / "fifo")
    proc = build.start(
        "-D", "nbcache_jobs=2", NBCACHE_TEST_GATE="p1", NBCACHE_TEST_FIFO=str(fifo.path)
    )
    try:
        assert fifo.wait_line(proc=proc) == "p1"
        kernels = kernels_of(proc.pid)
        assert kernels
        begin = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        code = proc.wait(timeout=30)
        took = time.monotonic() - begin
        assert code != 0
        assert took < 15, f"took {took:.1f} s to stop"
        assert not kernels_of(proc.pid)
        assert_all_gone(kernels, timeout=5)
    finally:
        kill_group(proc)
        fifo.close()
    assert "Interrupted" in build.output() or "KeyboardInterrupt" in build.output()
    stored = Store(build.src / ".nbcache")
    try:
        records = stored.records()
    finally:
        stored.close()
    # the interrupted page is not cached as a failure; whatever finished is whole
    assert all(r.ok for r in records), [(r.page, r.failure) for r in records]
    assert "p1" not in {r.page for r in records}

    code, output = build.run("-W", "--keep-going")
    assert code == 0, output
    assert "p1" in build.executed()
    _assert_all_outputs(build)
