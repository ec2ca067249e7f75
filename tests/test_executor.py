"""The local executor: limits on kernels, order, and one fresh kernel per notebook."""

from __future__ import annotations

import nbformat

from sphinx_nbcache.execute import Job, LocalExecutor

CODE = "import os, time\ntime.sleep(0.3)\nos.getpid()"


def job(number: int) -> Job:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CODE)])
    return Job(key=f"{number:064x}", notebook=nb, page=f"page{number}", cwd=None)


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
    assert executor.kernels_alive == 0  # every kernel stopped at shutdown
