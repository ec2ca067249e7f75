"""The local executor: limits on kernels, order, and one fresh kernel per notebook."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from sphinx_nbcache.config import AUTO_JOBS_FACTOR, Options
from sphinx_nbcache.engine.runner import SWITCH_INTERVAL, Runner
from sphinx_nbcache.execute import Job, LocalExecutor
from sphinx_nbcache.execute._autoscale import MEMORY_TO_GROW, Autoscale, Places
from sphinx_nbcache.execute._kernel import sweep_orphan_folders
from sphinx_nbcache.store import open_store

CODE = "import os, time\ntime.sleep(0.3)\nos.getpid()"


def job(number: int, code: str = CODE) -> Job:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    return Job(key=f"{number:064x}", notebook=nb, page=f"page{number}")


def test_kernels_stay_within_jobs_plus_prestart_and_are_never_reused() -> None:
    executor = LocalExecutor(jobs=1, prestart=1)
    try:
        outcomes = [f.result(timeout=120) for f in [executor.submit(job(n)) for n in range(4)]]
    finally:
        executor.shutdown()
    assert [o.record.status for o in outcomes] == ["ok"] * 4
    pids = [o.outputs.cells[0]["outputs"][0]["data"]["text/plain"] for o in outcomes if o.outputs]
    assert len(set(pids)) == 4  # a fresh kernel process for every notebook
    assert executor.peak_running == 1  # jobs = 1: one notebook executes at a time
    assert executor.peak_kernels == 2  # ... while the next one's kernel is already up
    # a done kernel hands its place over at once; at most `jobs` of them are still exiting
    assert 2 <= executor.peak_processes <= 3
    assert executor.kernels_alive == 0  # every kernel stopped at shutdown


def test_folders_of_dead_builds_are_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    orphan, mine, foreign = tmp_path / "nbcache-orphan", tmp_path / "nbcache-mine", tmp_path / "x"
    for folder, owner in ((orphan, dead.stdout.strip()), (mine, str(os.getpid())), (foreign, "1")):
        folder.mkdir()
        (folder / "owner").write_text(owner)
    assert sweep_orphan_folders() == 1
    assert not orphan.exists()
    assert mine.exists()
    assert foreign.exists()


# -- more notebooks at once while the CPUs sit idle ----------------------------------------

WAITS = "import json, time\nbegin = time.time()\ntime.sleep(2.0)\njson.dumps([begin, time.time()])"


def idle() -> tuple[float, int, int]:
    """An idle machine with plenty of memory, whatever the test machine is doing."""
    return 0.0, 1 << 40, 1 << 41


def test_notebooks_waiting_on_io_run_more_at_once_up_to_max_jobs() -> None:
    """Five notebooks that only sleep, one place to begin with: the idle CPUs add places
    (never more than max_jobs), so some of them sleep at the same time, seen in the kernels.
    The machine's readings are given (idle): the test holds on a busy machine too; the
    kernels' own CPU use, which the rule also asks about, is theirs (they sleep)."""
    executor = LocalExecutor(jobs=1, prestart=1, max_jobs=3, machine=idle)
    try:
        futures = [executor.submit(job(n, WAITS)) for n in range(5)]
        outcomes = [f.result(timeout=120) for f in futures]
    finally:
        executor.shutdown()
    assert [o.record.status for o in outcomes] == ["ok"] * 5
    spans = []
    for outcome in outcomes:
        assert outcome.outputs is not None
        text = outcome.outputs.cells[0]["outputs"][0]["data"]["text/plain"]
        spans.append(json.loads(json.loads(text.replace("'", '"'))))
    overlapping = max(sum(1 for b, e in spans if b <= t < e) for t, _ in spans)
    assert overlapping >= 2  # sleeping at the same time, in their own kernels
    assert 2 <= executor.peak_running <= 3  # places were added (jobs = 1), never past max_jobs
    assert 2 <= executor.places <= 3  # ... and kept: the machine stayed idle
    assert executor.kernels_alive == 0


def test_places_grow_while_idle_and_shrink_when_busy() -> None:
    scale = Autoscale(jobs=2, max_jobs=4, cpus=2)
    plenty = MEMORY_TO_GROW

    def decide(size: int, cpu: float, waiting: int, memory: int, total: int = 0) -> int:
        # the executing kernels sleep (see test_threads.py for kernels that compute)
        return scale.decide(size, cpu, waiting, memory, total, kernels_idle=size)

    assert decide(2, cpu=10, waiting=0, memory=plenty) == 0  # none waits
    assert decide(2, cpu=70, waiting=3, memory=plenty) == 0  # 0.6 idle
    assert decide(2, cpu=10, waiting=3, memory=plenty - 1) == 0  # memory
    big = 10 * plenty  # a fifth of the machine's memory stays available too
    assert decide(2, 10, waiting=3, memory=plenty, total=big) == 0
    assert decide(2, cpu=10, waiting=3, memory=plenty) == 1
    assert decide(3, cpu=10, waiting=3, memory=plenty) == 1
    assert decide(4, cpu=0, waiting=3, memory=plenty) == 0  # at max_jobs
    assert decide(4, cpu=95, waiting=3, memory=plenty) == -1  # busy
    assert decide(3, cpu=95, waiting=3, memory=plenty) == -1
    assert decide(2, cpu=100, waiting=3, memory=plenty) == 0  # at jobs
    assert decide(3, cpu=50, waiting=0, memory=plenty) == 0  # in between
    assert not Autoscale(jobs=3, max_jobs=2).enabled  # a fixed number


def test_kernels_that_wait_get_as_many_places_as_the_idle_cpus_allow_at_once() -> None:
    """Two kernels sleep, the two CPUs idle: two places in one period (each new kernel
    counted as if it took three quarters of a CPU), not one a period."""
    scale = Autoscale(jobs=2, max_jobs=8, cpus=2)
    plenty = 10 * MEMORY_TO_GROW
    assert scale.change(2, 10, 6, plenty, kernels_idle=2.0) == 2
    assert scale.change(2, 10, 1, plenty, kernels_idle=2.0) == 1  # one waits
    assert scale.change(7, 10, 6, plenty, kernels_idle=2.0) == 1  # max_jobs
    assert scale.change(2, 10, 6, plenty, kernels_idle=1.0) == 1  # one sleeps
    assert scale.change(2, 10, 6, plenty, kernels_idle=0.1) == 0  # they compute
    big = MEMORY_TO_GROW // 2  # left with one more kernel this big: room for it, not two
    left = MEMORY_TO_GROW + big - 1
    assert scale.change(2, 10, 6, left, kernels_idle=2.0, kernel_memory=big) == 1
    assert scale.change(4, 95, 6, plenty, kernels_idle=4.0) == -1  # busy


def test_kernels_start_further_ahead_while_places_wait_for_them() -> None:
    """Short notebooks: places to execute sit free while the next kernels come up, the CPUs
    idle: one more kernel starts ahead (no more execute at once); fewer when busy."""
    scale = Autoscale(jobs=2, max_jobs=4, cpus=2)
    plenty = MEMORY_TO_GROW

    def ahead(added: int, cpu: float, waiting: int, free: int, memory: int = plenty) -> int:
        return scale.ahead(added, cpu, waiting, free, memory)

    assert ahead(0, cpu=10, waiting=3, free=1) == 1
    assert ahead(3, cpu=10, waiting=3, free=2) == 1
    assert ahead(4, cpu=10, waiting=3, free=2) == 0  # at most max_jobs more
    assert ahead(0, cpu=10, waiting=3, free=0) == 0  # every place executes: not start-up
    assert ahead(0, cpu=10, waiting=0, free=2) == 0  # nothing left to start
    assert ahead(0, cpu=70, waiting=3, free=1) == 0  # 0.6 CPU idle
    assert ahead(0, cpu=10, waiting=3, free=1, memory=plenty - 1) == 0
    assert ahead(2, cpu=95, waiting=3, free=1) == -1  # busy: one fewer
    assert ahead(0, cpu=95, waiting=3, free=1) == 0  # none added


def test_a_shrunk_limit_keeps_the_places_given_back() -> None:
    async def scenario() -> list[int]:
        places = Places(2)
        holders = 0
        seen = []

        async def hold(release: asyncio.Event) -> None:
            nonlocal holders
            async with places:
                holders += 1
                seen.append(holders)
                await release.wait()
                holders -= 1

        first, second = asyncio.Event(), asyncio.Event()
        tasks = [asyncio.create_task(hold(first)) for _ in range(2)]
        await asyncio.sleep(0)
        places.shrink()  # down to 1: the next place given back is kept
        tasks += [asyncio.create_task(hold(second)) for _ in range(2)]
        await asyncio.sleep(0)
        first.set()  # both first holders leave: one place kept, one handed on
        await asyncio.sleep(0.01)
        assert holders == 1
        places.grow()  # back to 2: the fourth holder enters at once
        await asyncio.sleep(0.01)
        assert holders == 2
        second.set()
        await asyncio.gather(*tasks)
        return seen

    assert max(asyncio.run(scenario())) == 2


def test_jobs_zero_grows_while_idle_and_a_fixed_number_does_not(tmp_path: Path) -> None:
    cpus = os.cpu_count() or 1
    auto = Options.from_mapping({}, tmp_path)
    assert (auto.jobs, auto.max_jobs) == (cpus, AUTO_JOBS_FACTOR * cpus)
    fixed = Options.from_mapping({"nbcache_jobs": 2}, tmp_path)
    assert (fixed.jobs, fixed.max_jobs) == (2, 2)
    both = Options.from_mapping({"nbcache_jobs": 2, "nbcache_max_jobs": 6}, tmp_path)
    assert (both.jobs, both.max_jobs) == (2, 6)


def test_the_switch_interval_is_low_while_notebooks_execute_and_restored_after(
    tmp_path: Path,
) -> None:
    """The executor's and the storing threads get the GIL soon after they have work (see
    sphinx_nbcache.engine.runner), while a runner has an executor, and not after."""
    before = sys.getswitchinterval()
    store = open_store(tmp_path / "cache")
    first, second = (Runner(store, lambda prestart: LocalExecutor(jobs=1)) for _ in range(2))
    try:
        first.submit(job(1))
        assert first.wait(job(1).key) is not None
        assert sys.getswitchinterval() == SWITCH_INTERVAL
        second.submit(job(2))
        assert second.wait(job(2).key) is not None
        first.close()
        assert sys.getswitchinterval() == SWITCH_INTERVAL  # the second still has an executor
    finally:
        first.close()
        second.close()
        store.close()
    assert sys.getswitchinterval() == before
