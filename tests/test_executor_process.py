"""The local executor in a process of its own (``nbcache_executor_process``, on by default).

The build's interpreter moves no kernel message and stores no result: the executor's process
does both and sends back the stored record. Real builds and real kernels; the build's own
``Store.put`` is counted to see where results are stored.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from _reliability import Build, Fifo, assert_all_gone, kernels_of, kill_group

from sphinx_nbcache.engine.runner import Runner
from sphinx_nbcache.engine.storing import StoreApart
from sphinx_nbcache.execute import Job, ProcessExecutor
from sphinx_nbcache.store import Store, StoreLocation

pytestmark = pytest.mark.kernel

PAGES = Counter({"module": 1, "data": 1})


def job(number: int, code: str = "import os\nos.getpid()") -> Job:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    return Job(key=f"{number:064x}", notebook=nb, page=f"page{number}")


def _count_puts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The pages whose results this process stores (the build's own ``Store.put`` calls)."""
    stored: list[str] = []
    real = Store.put

    def put(self: Store, record: Any, *args: Any, **kwargs: Any) -> Any:
        stored.append(record.page)
        return real(self, record, *args, **kwargs)

    monkeypatch.setattr(Store, "put", put)
    return stored


@pytest.mark.parametrize(("apart", "stored_here"), [(True, 0), (False, 2)])
def test_the_build_stores_no_result_when_the_executor_runs_apart(
    project_factory: Callable[[str], Any],
    monkeypatch: pytest.MonkeyPatch,
    apart: bool,
    stored_here: int,
) -> None:
    stored = _count_puts(monkeypatch)
    project = project_factory("artifacts")
    first = project.build(nbcache_executor_process=apart)
    assert first.executed == PAGES
    assert len(stored) == stored_here
    # rendered from the blobs the executor's process wrote
    assert "doubled: 42" in project.html("module")
    assert "rows read: 2" in project.html("data")
    assert "2 executed" in first.status
    store = Store(project.src / ".nbcache")
    try:
        assert sorted(r.page for r in store.records() if r.ok) == ["data", "module"]
    finally:
        store.close()
    project.clear_build()
    assert project.build(nbcache_executor_process=apart).executed == Counter()


def test_outcomes_come_back_from_another_process(tmp_path: Path) -> None:
    executor = ProcessExecutor("local", jobs=2, prestart=0)
    try:
        outcomes = [f.result(timeout=120) for f in [executor.submit(job(n)) for n in range(3)]]
    finally:
        executor.shutdown()
    assert executor.pid is not None
    assert executor.pid != os.getpid()
    assert [o.record.status for o in outcomes] == ["ok"] * 3
    assert not any(o.stored for o in outcomes)  # no finisher: whole outcomes, outputs too
    assert all(o.outputs is not None for o in outcomes)
    assert 1 <= executor.peak_running <= 2
    assert not psutil.pid_exists(executor.pid)  # ended, and reaped


def test_a_runner_gets_stored_records_back(tmp_path: Path) -> None:
    location = StoreLocation(tmp_path / "cache")
    store = location.open()
    runner = Runner(store, lambda prestart: ProcessExecutor("local", jobs=1), location=location)
    try:
        runner.submit_all([job(1), job(2)])
        outcomes = [runner.wait(job(n).key) for n in (1, 2)]
    finally:
        runner.close()
    for outcome in outcomes:
        assert outcome is not None
        assert outcome.stored
        assert outcome.outputs is None
        assert outcome.record.blob is not None
        again = store.get(outcome.record.key)
        assert again is not None
        assert again.id == outcome.record.id
        assert store.load_outputs(again).cells[0]["outputs"]
    store.close()


def test_cancelled_jobs_leave_no_kernel(tmp_path: Path) -> None:
    executor = ProcessExecutor("local", jobs=1)
    futures = [executor.submit(job(n, "import time\ntime.sleep(600)")) for n in range(2)]
    child = psutil.Process(executor.pid)
    kernels = _wait_for_kernels(child)
    executor.shutdown(cancel=True)
    assert all(f.cancelled() for f in futures)
    assert_all_gone([child, *kernels], timeout=30)


def _wait_for_kernels(process: psutil.Process) -> list[psutil.Process]:
    """The kernels under ``process`` once one runs (waits on the process tree)."""
    for _ in range(600):
        found = [
            p for p in process.children(recursive=True) if "ipykernel" in " ".join(p.cmdline())
        ]
        if found:
            return found
        psutil.wait_procs([process], timeout=0.2)
    raise AssertionError("no kernel started")


def test_the_executor_process_and_its_kernels_end_with_the_build(tmp_path: Path) -> None:
    """Only the build is killed (not its process group): its executor's process sees it
    gone and ends every kernel."""
    build = Build.copy("reliability", tmp_path / "project")
    fifo = Fifo(tmp_path / "fifo")
    proc = build.start(
        "-D", "nbcache_jobs=2", NBCACHE_TEST_GATE="p1", NBCACHE_TEST_FIFO=str(fifo.path)
    )
    try:
        assert fifo.wait_line(proc=proc) == "p1"
        kernels = kernels_of(proc.pid)
        assert kernels
        ours = psutil.Process(proc.pid).children()
        assert all(k.pid not in {c.pid for c in ours} for k in kernels)  # not the build's own
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert_all_gone([*ours, *kernels], timeout=30)
    finally:
        kill_group(proc)
        fifo.close()


def test_an_executor_never_used_ends_its_process(tmp_path: Path) -> None:
    executor = ProcessExecutor("local", jobs=1)
    assert executor.pid is not None
    child = psutil.Process(executor.pid)
    executor.shutdown()
    assert_all_gone([child], timeout=30)


def test_jobs_given_to_a_dead_process_fail_instead_of_hanging(tmp_path: Path) -> None:
    executor = ProcessExecutor("local", jobs=1)
    executor.store_with(StoreApart(StoreLocation(tmp_path / "cache")))
    try:
        first = executor.submit(job(1, "import time\ntime.sleep(600)"))
        assert executor.pid is not None
        os.kill(executor.pid, signal.SIGKILL)
        with pytest.raises(Exception, match="ended unexpectedly"):
            first.result(timeout=60)
        later = executor.submit(job(2))
        with pytest.raises(Exception, match="gone"):
            later.result(timeout=60)
    finally:
        executor.shutdown(cancel=True)
