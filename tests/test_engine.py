"""The engine's seams: any executor (a plug-in, an entry point), no Sphinx outside Sphinx,
jobs that carry what another machine needs."""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from sphinx_nbcache.errors import ConfigError, ExecutorError
from sphinx_nbcache.execute import Job, ProjectFiles, load_executor, unpack_files

PLUGINS = Path(__file__).parent / "plugins"


@pytest.mark.kernel
def test_a_plugin_executor_gets_stored_ordered_and_warned_like_the_local_one(  # type: ignore[no-untyped-def]
    project_factory, monkeypatch, tmp_path
) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))
    made = tmp_path / "made.log"
    monkeypatch.setenv("THREAD_EXECUTOR_LOG", str(made))
    project = project_factory("failing")
    settings = {
        "nbcache_executor": "thread_executor:ThreadExecutor",
        "nbcache_executor_url": "tcp://example.invalid:1",
    }
    cold = project.build(**settings)
    assert cold.executed == Counter({"fails": 1, "tolerated": 1})
    assert made.read_text().splitlines() == ["made jobs=2 url=tcp://example.invalid:1"]
    warnings = [w for w in cold.warnings.splitlines() if "WARNING" in w]
    assert len(warnings) == 1, cold.warnings
    assert "fails.md:" in warnings[0]
    assert "notebook execution failed in code cell 2: ZeroDivisionError" in warnings[0]
    assert "before the failure" in project.html("fails")
    assert "nbcache: ran fails" in cold.status
    # stored exactly as the local executor stores: the next build (local) executes nothing
    again = project.build()
    assert again.total == 0
    assert "cached failure" in again.warnings


@pytest.mark.kernel
def test_a_broken_plugin_is_a_warning_per_page_not_a_crash(project_factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(PLUGINS))
    project = project_factory("failing")
    build = project.build(nbcache_executor="thread_executor:broken")
    assert build.total == 0
    warnings = [w for w in build.warnings.splitlines() if "WARNING" in w]
    assert len(warnings) == 2, build.warnings
    assert all("the executor failed to run this notebook" in w for w in warnings)
    assert all("the plug-in has a bug" in w for w in warnings)
    # nothing was cached: the local executor runs both next time
    assert project.build().executed == Counter({"fails": 1, "tolerated": 1})


def test_executors_by_name_entry_point_or_import_path(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(PLUGINS))
    dist = tmp_path / "nbcache_threads-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: nbcache-threads\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[sphinx_nbcache.executors]\nthreads = thread_executor:ThreadExecutor\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    by_entry_point = load_executor("threads", jobs=3, url=None)
    by_path = load_executor("thread_executor:ThreadExecutor", jobs=1, unknown_setting=True)
    local = load_executor("local", jobs=1, prestart=0, url=None, token=None, env=())
    try:
        assert type(by_entry_point).__name__ == "ThreadExecutor"
        assert by_entry_point.pool._max_workers == 3  # type: ignore[attr-defined]
        assert type(by_path).__name__ == "ThreadExecutor"
        assert type(local).__name__ == "LocalExecutor"
    finally:
        for executor in (by_entry_point, by_path, local):
            executor.shutdown()
    with pytest.raises(ConfigError, match=r"no executor named 'nope' \(known: .*local.*threads"):
        load_executor("nope")
    with pytest.raises(ConfigError, match="cannot import 'no_such_module'"):
        load_executor("no_such_module:Factory")
    with pytest.raises(ConfigError, match="has no attribute 'Missing'"):
        load_executor("thread_executor:Missing")
    with pytest.raises(ConfigError, match="lacks submit"):
        load_executor("builtins:dict")
    with pytest.raises(ExecutorError, match=r"could not be made \(TypeError"):
        load_executor("json:loads")


@pytest.mark.kernel
def test_the_api_runs_a_docs_folder_without_loading_sphinx(tmp_path: Path) -> None:
    src = tmp_path / "docs"
    root = Path(__file__).parent / "roots" / "test-failing"
    src.mkdir()
    for name in ("conf.py", "index.md", "fails.md", "tolerated.md"):
        (src / name).write_text((root / name).read_text())
    log = tmp_path / "kernel.log"
    code = (
        "import json, sys\n"
        "from sphinx_nbcache.api import open_cache\n"
        "with open_cache(sys.argv[1]) as cache:\n"
        "    report = cache.execute(jobs=2)\n"
        "loaded = sorted(m for m in sys.modules if m == 'sphinx' or m.startswith('sphinx.'))\n"
        "print(json.dumps({'counts': report.counts(), 'sphinx': loaded}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(src)],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "NBCACHE_TEST_LOG": str(log)},
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["sphinx"] == []
    assert result["counts"]["executed"] == 1
    assert result["counts"]["failed"] == 1
    assert sum(result["counts"].values()) == 2
    assert sorted(log.read_text().split()) == ["fails", "tolerated"]


def test_a_job_carries_its_folder_relative_to_the_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    folder = project / "guide" / "data"
    folder.mkdir(parents=True)
    (folder / "table.csv").write_text("a,b\n1,2\n")
    (project / "guide" / "helpers.py").write_text("X = 1\n")
    (project / "guide" / "__pycache__").mkdir()
    (project / "guide" / "__pycache__" / "helpers.cpython-311.pyc").write_bytes(b"x")
    (project / "guide" / "big.bin").write_bytes(b"0" * 5000)
    (project / "guide" / "_build").mkdir()
    (project / "guide" / "_build" / "index.html").write_text("built")
    files = ProjectFiles(str(project), limit=1000)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    job = Job(key="0" * 64, notebook=notebook, page="guide/page", folder="guide", files=files)
    travelled = pickle.loads(pickle.dumps(job))
    assert travelled == job
    assert travelled.local_folder() == project / "guide"
    packed, left_out = files.pack(job.folder)
    assert left_out == ["big.bin"]  # over the limit
    with tarfile.open(fileobj=io.BytesIO(packed)) as tar:
        assert sorted(tar.getnames()) == ["data/table.csv", "helpers.py"]
    elsewhere = tmp_path / "elsewhere"
    assert sorted(unpack_files(packed, elsewhere)) == ["data/table.csv", "helpers.py"]
    assert (elsewhere / "data" / "table.csv").read_text() == "a,b\n1,2\n"
    gone = Job(key="0" * 64, notebook=notebook, page="p", folder="nowhere", files=files)
    assert gone.local_folder() is None  # not on this machine: a fresh folder is used
    assert Job(key="0" * 64, notebook=notebook, page="p").local_folder() is None
