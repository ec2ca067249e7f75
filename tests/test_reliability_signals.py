"""A build killed (SIGKILL) or interrupted (SIGINT) mid-way loses nothing it had finished.

Each test starts a real ``sphinx-build`` whose notebook ``NBCACHE_TEST_GATE`` writes its name to
a FIFO and then hangs: the test blocks on the FIFO (no sleeps), signals the build's process
group, then checks the process tree, the store and the next build.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import nbformat
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


def test_the_leases_of_a_killed_build_on_this_machine_are_taken_over_at_once(
    tmp_path: Path,
) -> None:
    """Three keys leased for an hour: by a process of this machine that is gone (a build
    killed with SIGKILL cannot release its leases), by a live process, and by another machine.
    A new build takes the first over at once, and waits for the other two."""
    from sphinx_nbcache.engine.leases import Leases
    from sphinx_nbcache.execute import Job
    from sphinx_nbcache.store import open_store

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid names no process
    host = socket.gethostname()
    holders = {
        "a" * 64: f"{host}:{gone.pid}:dead0000",
        "b" * 64: f"{host}:{os.getpid()}:alive000",
        "c" * 64: f"another-{host}:{gone.pid}:far00000",
    }
    store = open_store(tmp_path / "cache")
    try:
        for key, holder in holders.items():
            assert store.acquire([key], holder, 3600) == {key}
        orphaned: list[str] = []
        taken = threading.Event()

        def orphan(job: Job) -> None:
            orphaned.append(job.key)
            taken.set()

        leases = Leases(store, 3600, on_result=lambda job, record: None, on_orphan=orphan)
        notebook = nbformat.v4.new_notebook()
        jobs = [Job(key=key, notebook=notebook, page=key[0]) for key in holders]
        try:
            assert leases.take(jobs) == ([], [])  # all held: waited for
            assert taken.wait(60)
            # one check of the watcher judged all three: only the dead holder's was taken
            assert orphaned == ["a" * 64]
            held = store.leases(holders)
            assert held["a" * 64][0] == leases.holder
            assert {held[k][0] for k in ("b" * 64, "c" * 64)} == set(list(holders.values())[1:])
        finally:
            leases.close()
    finally:
        store.close()
