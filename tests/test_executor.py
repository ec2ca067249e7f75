"""The local executor: limits on kernels, order, and one fresh kernel per notebook."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from sphinx_nbcache.execute import Job, LocalExecutor
from sphinx_nbcache.execute._kernel import sweep_orphan_folders

CODE = "import os, time\ntime.sleep(0.3)\nos.getpid()"


def job(number: int) -> Job:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CODE)])
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
