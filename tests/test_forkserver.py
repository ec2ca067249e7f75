"""Kernels forked from a warm process: each notebook still gets a fresh process and namespace,
nothing of the user's is pre-imported, what cannot fork starts the usual way, and the warm
process ends with the executor."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

from sphinx_nbcache.execute import Job, LocalExecutor
from sphinx_nbcache.execute._forkserver import ForkServers, fork_enabled

pytestmark = pytest.mark.kernel

#: what a notebook sees of its kernel, then what it leaves behind for the next one
LOOK = """\
import json, os, sys
seen = {
    "pid": os.getpid(),
    "leaked_name": "leaked" in globals(),
    "leaked_module": "colorsys" in sys.modules,
    "leaked_env": os.environ.get("NBCACHE_LEAKED"),
    "user_module": "nbcache_user_module" in sys.modules,
    "nbcache": "sphinx_nbcache" in sys.modules,
    "env": os.environ.get("NBCACHE_FORK_TEST"),
    "cwd": os.getcwd(),
}
leaked = 1
import colorsys
os.environ["NBCACHE_LEAKED"] = "yes"
print(json.dumps(seen))
"""


def job(number: int, folder: Path) -> Job:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LOOK)])
    from sphinx_nbcache.execute import ProjectFiles

    return Job(
        key=f"{number:064x}", notebook=nb, page=f"page{number}", files=ProjectFiles(str(folder))
    )


def seen(outcome) -> dict:  # type: ignore[no-untyped-def]
    assert outcome.record.ok, outcome.record.failure
    text = outcome.outputs.cells[0]["outputs"][0]["text"]
    return json.loads(text)


def test_forked_kernels_are_fresh_processes_with_fresh_namespaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NBCACHE_FORK_KERNELS", raising=False)
    (tmp_path / "nbcache_user_module.py").write_text("x = 1\n")  # in the notebooks' folder
    executor = LocalExecutor(jobs=1, prestart=1)
    assert executor.forks is not None
    try:
        futures = [executor.submit(job(n, tmp_path)) for n in range(8)]
        looks = [seen(f.result(timeout=120)) for f in futures]
        forked = executor.forks.forked
        servers = executor.forks.pids()
    finally:
        executor.shutdown()
    assert forked >= 3, "the warm process forked none of the later kernels"
    assert len({look["pid"] for look in looks}) == 8  # a process of its own, every notebook
    for look in looks:  # nothing one notebook did is seen by the next
        assert look["leaked_name"] is False
        assert look["leaked_module"] is False
        assert look["leaked_env"] is None
        assert look["user_module"] is False  # never pre-imported
        assert look["nbcache"] is False
        assert Path(look["cwd"]) == tmp_path  # the page's folder
    assert servers, "no warm process was started"
    for pid in servers:  # ended with the executor, not left behind
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_what_cannot_fork_starts_the_usual_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NBCACHE_FORK_KERNELS", raising=False)
    executor = LocalExecutor(jobs=1, prestart=0)
    assert executor.forks is not None
    try:
        warm = [executor.submit(job(n, tmp_path)) for n in range(5)]
        [seen(f.result(timeout=120)) for f in warm]
        before = executor.forks.forked
        assert before >= 1
        # an environment variable set now: the warm process has another environment, so the
        # kernel starts the usual way, and sees it
        monkeypatch.setenv("NBCACHE_FORK_TEST", "set-later")
        later = [executor.submit(job(n, tmp_path)) for n in range(10, 13)]
        looks = [seen(f.result(timeout=120)) for f in later]
        assert executor.forks.forked == before
        assert [look["env"] for look in looks] == ["set-later"] * 3
    finally:
        executor.shutdown()
    # a kernel spec that does not run ipykernel_launcher has no warm process
    assert ForkServers().for_spec(["/bin/sh", "-c", "exec something"]) is None
    assert ForkServers().for_spec(["/no/such/python", "-m", "ipykernel_launcher"]) is None
    # ipykernel's own spec in a venv says "python": jupyter_client runs this interpreter
    server = ForkServers().for_spec(["python", "-m", "ipykernel_launcher", "-f", "{x}"])
    assert server is not None
    assert server.prefix == (sys.executable,)


def test_forking_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBCACHE_FORK_KERNELS", "0")
    assert not fork_enabled(True)
    assert LocalExecutor(jobs=1).forks is None
    monkeypatch.delenv("NBCACHE_FORK_KERNELS")
    assert fork_enabled(True) == (os.name == "posix" and os.uname().sysname == "Linux")
    assert not fork_enabled(False)
    assert LocalExecutor(jobs=1, fork_kernels=False).forks is None
