"""The Dask executor on a real scheduler with two workers (and on a LocalCluster)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
import services

from sphinx_nbcache.errors import ExecutorError
from sphinx_nbcache.execute import Job, Outcome, ProjectFiles, load_executor
from sphinx_nbcache.execute._dask import DaskExecutor

pytestmark = [pytest.mark.services, pytest.mark.kernel]


def make_job(number: int, *cells: str, root: Path | None = None, **fields: Any) -> Job:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    files = ProjectFiles(str(root)) if root is not None else None
    return Job(key=f"{number:064x}", notebook=notebook, page=f"page{number}", files=files, **fields)


def text_of(outcome: Outcome) -> str:
    assert outcome.outputs is not None, outcome.record.failure
    return "".join(
        o.get("text", "") or o.get("data", {}).get("text/plain", "")
        for cell in outcome.outputs.cells
        for o in cell["outputs"]
    )


def wait_for(condition: Any, timeout: float = 60.0) -> None:
    """Poll ``condition()`` until true (no fixed sleep stands in for a wait)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def gone(pids: list[int]) -> bool:
    return not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A docs project whose page folder ``guide/`` holds data its notebooks read."""
    (tmp_path / "guide" / "data").mkdir(parents=True)
    (tmp_path / "guide" / "table.csv").write_text("a,b\n1,2\n")
    (tmp_path / "guide" / "data" / "note.txt").write_text("nested note")
    (tmp_path / "guide" / ".git").mkdir()
    return tmp_path


READ_FILES = (
    "import os\nprint(open('table.csv').read().splitlines()[1])\n"
    "print(open(os.path.join('data', 'note.txt')).read())\n"
    "print(os.path.exists('.git'))\nprint(os.getcwd())"
)


def test_notebooks_read_files_shipped_with_their_task(dask_scheduler: str, project: Path) -> None:
    executor = load_executor("dask", url=dask_scheduler, jobs=2)
    try:
        futures = [
            executor.submit(make_job(n, READ_FILES, f"{n} + 100", root=project, folder="guide"))
            for n in range(3)
        ]
        outcomes = [f.result(timeout=120) for f in futures]
    finally:
        executor.shutdown()
    folders = set()
    for number, outcome in enumerate(outcomes):
        assert outcome.record.status == "ok", outcome.record.failure
        lines = text_of(outcome).splitlines()
        assert lines[:3] == ["1,2", "nested note", "False"]  # .git is never shipped
        assert lines[4] == str(number + 100)
        folders.add(Path(lines[3]))
    assert project not in {f.parent for f in folders}  # ran in an unpacked copy...
    assert len(folders) == 3
    assert not any(f.exists() for f in folders)  # ...removed after the run


def test_a_local_cluster_serves_the_build_when_no_url_is_given(project: Path) -> None:
    executor = DaskExecutor(url=None, jobs=2)
    try:
        assert executor.address.startswith("tls://127.0.0.1:")  # its own certificate
        cluster = executor._cluster
        pids = [w.process.pid for w in cluster.workers.values()]
        assert len(pids) == 2
        futures = [
            executor.submit(make_job(n, READ_FILES, root=project, folder="guide")) for n in (1, 2)
        ]
        outcomes = [f.result(timeout=120) for f in futures]
    finally:
        executor.shutdown()
    assert [o.record.status for o in outcomes] == ["ok", "ok"]
    assert gone(pids)  # the cluster's worker processes end with the executor


def test_an_unreachable_scheduler_is_one_clear_error() -> None:
    address = f"tcp://127.0.0.1:{services.free_port()}"
    with pytest.raises(ExecutorError, match="cannot reach the Dask scheduler at") as caught:
        DaskExecutor(url=address, connect_timeout=2)
    assert address in str(caught.value)
    assert "nbcache_executor_url" in str(caught.value)


def kill_my_worker(attempts: Path, only_first: bool) -> str:
    """A cell that notes its kernel's and its worker's pids in ``attempts``, then kills that
    worker (always, or on the first attempt only); else it prints the worker's pid."""
    return (
        "import os, pathlib, signal\n"
        f"attempts = pathlib.Path({str(attempts)!r})\n"
        "first = not attempts.read_text()\n"
        "with attempts.open('a') as f:\n"
        "    print(os.getpid(), os.getppid(), file=f)\n"
        f"if {'first' if only_first else 'True'}:\n"
        "    os.kill(os.getppid(), signal.SIGKILL)\n"
        "print(os.getppid())"
    )


def test_a_page_whose_worker_dies_is_retried_on_another(
    dask_scheduler: str, tmp_path: Path
) -> None:
    attempts = tmp_path / "attempts"
    attempts.write_text("")
    executor = DaskExecutor(url=dask_scheduler)
    try:
        outcome = executor.submit(make_job(1, kill_my_worker(attempts, True))).result(120)
    finally:
        executor.shutdown()
    assert outcome.record.status == "ok", outcome.record.failure
    runs = [line.split() for line in attempts.read_text().splitlines()]
    assert len(runs) == 2
    (first_kernel, killed_worker), (_, second_worker) = runs
    assert text_of(outcome).strip() == second_worker != killed_worker
    wait_for(lambda: gone([int(first_kernel)]), timeout=15)  # its orphaned kernel ended too


def test_a_page_that_kills_every_worker_is_given_up_after_one_retry(
    dask_scheduler: str, tmp_path: Path
) -> None:
    attempts = tmp_path / "attempts"
    attempts.write_text("")
    executor = DaskExecutor(url=dask_scheduler)
    try:
        doomed = executor.submit(make_job(1, kill_my_worker(attempts, False)))
        outcome = doomed.result(timeout=120)
        fine = executor.submit(make_job(2, "'still working'")).result(timeout=120)
    finally:
        executor.shutdown()
    assert outcome.record.status == "error"  # not cached: runs again on the next build
    failure = outcome.record.failure
    assert failure is not None
    assert (failure.kind, failure.ename) == ("dead_kernel", "WorkerLost")
    assert failure.evalue.count("tcp://127.0.0.1:") == 2  # the two workers lost
    runs = attempts.read_text().splitlines()
    assert len(runs) == 2  # tried, retried once, then given up
    assert text_of(fine) == "'still working'"  # the cluster still serves other pages
    wait_for(lambda: gone([int(run.split()[0]) for run in runs]), timeout=15)


def test_cancel_stops_the_kernels_on_the_workers(dask_scheduler: str, tmp_path: Path) -> None:
    started = tmp_path / "started"
    started.mkdir()
    code = (
        f"import pathlib, os, time\npathlib.Path({str(started)!r}, str(os.getpid())).touch()\n"
        "time.sleep(120)"
    )
    executor = DaskExecutor(url=dask_scheduler)
    futures = [executor.submit(make_job(n, code)) for n in range(3)]
    wait_for(lambda: len(list(started.iterdir())) == 2)  # one per worker; the third waits
    kernels = [int(p.name) for p in started.iterdir()]
    assert not gone(kernels)
    begin = time.monotonic()
    executor.shutdown(cancel=True)  # what Ctrl-C does
    assert time.monotonic() - begin < 20
    assert all(f.cancelled() for f in futures)
    wait_for(lambda: gone(kernels), timeout=5)
    assert len(list(started.iterdir())) == 2  # the third never started


def test_only_listed_environment_variables_reach_the_kernel(
    dask_scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBCACHE_TEST_PASSED", "passed value")
    monkeypatch.setenv("NBCACHE_TEST_SECRET", "not listed")
    executor = DaskExecutor(url=dask_scheduler, env=["NBCACHE_TEST_PASSED", "NBCACHE_TEST_UNSET"])
    names = ("PASSED", "SECRET", "UNSET", "JOB")
    code = f"import os\n[os.environ.get('NBCACHE_TEST_' + n) for n in {names!r}]"
    try:
        job = make_job(1, code, env=(("NBCACHE_TEST_JOB", "from the job"),))
        outcome = executor.submit(job).result(timeout=120)
    finally:
        executor.shutdown()
    assert outcome.record.status == "ok", outcome.record.failure
    assert outcome.outputs is not None
    (cell,) = outcome.outputs.cells
    assert text_of(outcome) == "['passed value', None, None, 'from the job']"
    assert cell["execution_count"] == 1  # the silent set-up left no trace


def test_a_lost_scheduler_fails_the_pages_still_out(services_dir: Path, tmp_path: Path) -> None:
    try:
        cluster = services.start_dask(services_dir / "doomed-dask", workers=1)
    except services.Missing as exc:
        pytest.skip(str(exc))
    marker = tmp_path / "running"
    try:
        executor = DaskExecutor(url=cluster.address)
        code = f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\ntime.sleep(120)"
        running = executor.submit(make_job(1, code))
        waiting = executor.submit(make_job(2, "1"))
        wait_for(marker.exists)
        cluster.scheduler.stop(sig=signal.SIGKILL)
        outcomes = [running.result(timeout=30), waiting.result(timeout=30)]
        begin = time.monotonic()
        executor.shutdown()
        assert time.monotonic() - begin < 30
    finally:
        cluster.stop()
    for outcome in outcomes:
        assert outcome.record.status == "error"  # runs again on the next build
        assert outcome.record.failure is not None
        assert cluster.address in outcome.record.failure.evalue
