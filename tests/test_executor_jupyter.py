"""The Jupyter executor against a real ``jupyter server`` and ``jupyter kernelgateway``."""

from __future__ import annotations

import concurrent.futures
import json
import secrets
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import nbformat
import pytest
import services

from sphinx_nbcache.errors import ExecutorError
from sphinx_nbcache.execute import Job, Outcome, ProjectFiles, load_executor
from sphinx_nbcache.execute._jupyter import JupyterExecutor

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


def remote_kernels(server: services.JupyterService) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        f"{server.url}/api/kernels", headers={"Authorization": f"token {server.token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        kernels: list[dict[str, Any]] = json.load(response)
    return kernels


def wait_for(condition: Any, timeout: float = 60.0) -> None:
    """Poll ``condition()`` until true (no fixed sleep stands in for a wait)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A docs project whose page folder ``guide/`` holds data its notebooks read."""
    (tmp_path / "guide" / "data").mkdir(parents=True)
    (tmp_path / "guide" / "table.csv").write_text("a,b\n1,2\n")
    (tmp_path / "guide" / "data" / "note.txt").write_text("nested note")
    (tmp_path / "guide" / "__pycache__").mkdir()
    (tmp_path / "guide" / "__pycache__" / "x.pyc").write_bytes(b"ignored")
    return tmp_path


READ_FILES = (
    "import os\nprint(open('table.csv').read().splitlines()[1])\n"
    "print(open(os.path.join('data', 'note.txt')).read())\n"
    "print(os.path.exists('__pycache__'))\nprint(os.getcwd())"
)


def test_notebooks_read_files_of_their_folder_uploaded_to_a_jupyter_server(
    jupyter_server: services.JupyterService, project: Path
) -> None:
    executor = load_executor(
        "jupyter", url=jupyter_server.url, token=jupyter_server.token, jobs=2, prestart=1
    )
    try:
        futures = [
            executor.submit(make_job(n, READ_FILES, f"{n} * 10", root=project, folder="guide"))
            for n in range(3)
        ]
        outcomes = [f.result(timeout=120) for f in futures]
    finally:
        executor.shutdown()
    folders = set()
    for number, outcome in enumerate(outcomes):
        assert outcome.record.status == "ok", outcome.record.failure
        lines = text_of(outcome).splitlines()
        assert lines[:3] == ["1,2", "nested note", "False"]  # __pycache__ is never shipped
        assert lines[4] == str(number * 10)
        cwd = Path(lines[3])
        assert cwd.parent == jupyter_server.root / "nbcache-runs"
        folders.add(cwd)
    assert len(folders) == 3  # a folder of its own per run...
    assert not any(f.exists() for f in folders)  # ...deleted after it
    assert remote_kernels(jupyter_server) == []


def test_kernel_gateway_runs_kernels_in_its_own_folder(
    kernel_gateway: services.JupyterService, project: Path
) -> None:
    # no contents API: what the notebooks read must be there already (the remote side's job)
    (kernel_gateway.root / "provided.txt").write_text("provided by the remote side")
    executor = JupyterExecutor(url=kernel_gateway.url, token=kernel_gateway.token, jobs=2)
    try:
        assert not executor.has_contents
        code = "import os\nprint(os.getcwd())\nprint(open('provided.txt').read())"
        outcomes = [f.result(120) for f in [executor.submit(make_job(n, code)) for n in (1, 2)]]
    finally:
        executor.shutdown()
    for outcome in outcomes:
        assert outcome.record.status == "ok", outcome.record.failure
        assert text_of(outcome).splitlines() == [
            str(kernel_gateway.root),
            "provided by the remote side",
        ]
    assert remote_kernels(kernel_gateway) == []


@pytest.mark.parametrize("server_name", ["jupyter_server", "kernel_gateway"])
@pytest.mark.parametrize("token", ["wrong-token", None])
def test_a_wrong_or_missing_token_is_one_clear_error(
    server_name: str, token: str | None, request: pytest.FixtureRequest, monkeypatch: Any
) -> None:
    server: services.JupyterService = request.getfixturevalue(server_name)
    monkeypatch.delenv("NBCACHE_JUPYTER_TOKEN", raising=False)
    with pytest.raises(ExecutorError) as caught:
        JupyterExecutor(url=server.url, token=token)
    message = str(caught.value)
    assert server.url in message
    assert "HTTP 401" in message or "HTTP 403" in message
    assert "nbcache_executor_token" in message
    assert "NBCACHE_JUPYTER_TOKEN" in message
    assert ("no token" in message) == (token is None)


def test_the_token_can_come_from_the_environment(
    jupyter_server: services.JupyterService, monkeypatch: Any
) -> None:
    monkeypatch.setenv("NBCACHE_JUPYTER_TOKEN", jupyter_server.token)
    executor = JupyterExecutor(url=jupyter_server.url)
    try:
        outcome = executor.submit(make_job(1, "6 * 7")).result(timeout=120)
    finally:
        executor.shutdown()
    assert text_of(outcome) == "42"


def test_an_unreachable_server_is_one_clear_error() -> None:
    url = f"http://127.0.0.1:{services.free_port()}"
    with pytest.raises(ExecutorError, match="cannot reach the Jupyter server at") as caught:
        JupyterExecutor(url=url, token="t", connect_timeout=5)
    assert url in str(caught.value)


def test_only_listed_environment_variables_reach_the_kernel(
    jupyter_server: services.JupyterService, monkeypatch: Any
) -> None:
    monkeypatch.setenv("NBCACHE_TEST_PASSED", "passed value")
    monkeypatch.setenv("NBCACHE_TEST_SECRET", "not listed")
    executor = JupyterExecutor(
        url=jupyter_server.url,
        token=jupyter_server.token,
        env=["NBCACHE_TEST_PASSED", "NBCACHE_TEST_UNSET"],
    )
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
    assert len(cell["outputs"]) == 1


def test_cancel_deletes_every_remote_kernel(
    jupyter_server: services.JupyterService, tmp_path: Path
) -> None:
    executor = JupyterExecutor(
        url=jupyter_server.url, token=jupyter_server.token, jobs=2, prestart=1
    )
    started = tmp_path / "started"
    started.mkdir()
    code = (
        f"import pathlib, os, time\npathlib.Path({str(started)!r}, str(os.getpid())).touch()\n"
        "time.sleep(120)"
    )
    futures = [executor.submit(make_job(n, code)) for n in range(4)]
    wait_for(lambda: len(list(started.iterdir())) == 2)  # two run, a third kernel is starting
    assert len(remote_kernels(jupyter_server)) >= 2
    begin = time.monotonic()
    executor.shutdown(cancel=True)  # what Ctrl-C does
    assert time.monotonic() - begin < 20
    assert all(f.cancelled() for f in futures)
    assert remote_kernels(jupyter_server) == []
    assert executor.kernels_alive == 0
    runs = jupyter_server.root / "nbcache-runs"
    assert [p.name for p in runs.iterdir() if not p.name.startswith(".")] == []  # checkpoints


def test_a_server_killed_mid_run_fails_its_pages_without_hanging(
    tmp_path: Path, services_dir: Path
) -> None:
    try:
        server = services.start_jupyter_server(
            services_dir / "doomed", secrets.token_hex(8), name="doomed-server"
        )
    except services.Missing as exc:
        pytest.skip(str(exc))
    marker = tmp_path / "running"
    try:
        executor = JupyterExecutor(url=server.url, token=server.token, jobs=1, prestart=0)
        code = f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\ntime.sleep(120)"
        running = executor.submit(make_job(1, "1 + 1", code))
        waiting = executor.submit(make_job(2, "2 + 2"))
        wait_for(marker.exists)
        begin = time.monotonic()
        server.service.stop(sig=signal.SIGKILL)
        first = running.result(timeout=30)
        second = waiting.result(timeout=30)
        assert time.monotonic() - begin < 30
        begin = time.monotonic()
        executor.shutdown()
        assert time.monotonic() - begin < 30
    finally:
        server.service.stop()
    assert first.record.status == "error"  # not the notebook's fault: runs again next build
    assert first.record.failure is not None
    assert first.record.failure.ename == "ConnectionLost"
    assert server.url in first.record.failure.evalue
    assert first.record.failure.cell_index == 1
    assert second.record.status == "error"
    assert second.record.failure is not None
    assert f"cannot start a kernel on {server.url}" in second.record.failure.evalue


def test_a_kernel_that_dies_is_a_failed_page_and_a_missing_kernel_an_error(
    jupyter_server: services.JupyterService,
) -> None:
    executor = JupyterExecutor(url=jupyter_server.url, token=jupyter_server.token, jobs=2)
    try:
        dying = executor.submit(make_job(1, "import os\nos._exit(1)", "1"))
        missing = executor.submit(make_job(2, "1", kernel="no-such-kernel"))
        outcomes = concurrent.futures.wait([dying, missing], timeout=120)
        assert not outcomes.not_done
    finally:
        executor.shutdown()
    died, absent = dying.result(), missing.result()
    assert died.record.status == "failed"
    assert died.record.failure is not None
    assert died.record.failure.kind == "dead_kernel"
    assert absent.record.status == "error"
    assert absent.record.failure is not None
    assert absent.record.failure.kind == "no_kernel"
    assert jupyter_server.url in absent.record.failure.evalue
    assert executor.leaked == []
    assert remote_kernels(jupyter_server) == []
