"""The Python API: execute, cache, match, merge, diff, move and trim a cache."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import nbformat
import pytest

from sphinx_nbcache.api import Cache, open_cache
from sphinx_nbcache.errors import ArchiveError, ConfFileError, NotebookReadError, NotFoundError
from sphinx_nbcache.records import Outputs, Record


def write_notebook(
    path: Path, *sources: str, metadata: dict | None = None, executed: bool = False
) -> Path:  # type: ignore[type-arg]
    notebook = nbformat.v4.new_notebook(metadata=metadata or {})
    notebook.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3"})
    notebook.cells.append(nbformat.v4.new_markdown_cell("# Title"))
    for number, source in enumerate(sources, 1):
        cell = nbformat.v4.new_code_cell(source)
        if executed:
            cell.execution_count = number
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"out {number}\n")]
        notebook.cells.append(cell)
    nbformat.write(notebook, str(path))
    return path


@pytest.mark.kernel
def test_execute_collects_outcomes_and_notebook_timeout_wins(tmp_path: Path) -> None:
    write_notebook(tmp_path / "ok.ipynb", "print('fine')")
    write_notebook(tmp_path / "bad.ipynb", "x = 1", "def f():\n    return 1 / 0\nf()")
    write_notebook(
        tmp_path / "slow.ipynb",
        "import time; time.sleep(10)",
        metadata={"execution": {"timeout": 1}},
    )
    write_notebook(
        tmp_path / "nokernel.ipynb",
        "1",
        metadata={"kernelspec": {"name": "no-such-kernel", "display_name": "x"}},
    )
    (tmp_path / "broken.ipynb").write_text("{ not json")
    cache = Cache(tmp_path / ".nbcache")
    started: list[int] = []
    seen: list[str] = []
    files = sorted(tmp_path.glob("*.ipynb"))
    report = cache.execute(
        files, jobs=2, timeout=60, on_start=started.append, on_record=lambda r: seen.append(r.page)
    )
    assert started == [4]
    assert sorted(seen) == ["bad", "nokernel", "ok", "slow"]
    assert [r.page for r in report.succeeded] == ["ok"]
    failed = {r.page: r for r in report.failed}
    assert set(failed) == {"bad", "slow"}
    assert failed["bad"].failure is not None
    assert failed["bad"].failure.ename == "ZeroDivisionError"
    assert "1 / 0" in failed["bad"].failure.traceback
    slow = failed["slow"]
    assert slow.failure is not None
    assert slow.failure.kind == "timeout"
    assert slow.timeout == 1  # metadata.execution.timeout won over timeout=60
    errored = {r.page: r.failure.kind for r in report.errored if r.failure}
    assert errored == {"nokernel": "no_kernel", "broken": "read"}
    assert not report.ok

    again = cache.execute(files, timeout=60)  # cached failures are not run again
    assert not again.succeeded
    assert not again.failed
    assert {s.page.name for s in again.cached_failures} == {"bad", "slow"}
    assert {s.page.name: s.verdict for s in again.skipped}["ok"] == "cached"
    assert cache.match(tmp_path / "ok.ipynb") is not None
    assert "fine" in json.dumps(cache.merge(tmp_path / "ok.ipynb"))


def test_cache_notebook_match_merge_diff(tmp_path: Path) -> None:
    page = write_notebook(tmp_path / "page.ipynb", "a = 1", "print(a)", executed=True)
    cache = Cache(tmp_path / ".nbcache")
    assert cache.match(page) is None
    record = cache.cache_notebook(page)
    assert record.ok
    assert record.page == "page"
    assert record.kernel == "python3"
    assert cache.match(page) == cache.store.get(record.key)
    assert cache.match(nbformat.read(str(page), as_version=4)) is not None
    outputs = cache.outputs(record)
    assert outputs.sources == ("a = 1", "print(a)")

    # merge puts the cached outputs into the notebook as written now
    write_notebook(page, "a = 1", "print(a)")  # outputs stripped, same code
    merged = cache.merge(page)
    assert merged.cells[2].outputs[0]["text"] == "out 2\n"
    assert cache.diff(page).same

    # a code change: no match, diff names the cell, status says why it is stale
    write_notebook(page, "a = 2", "print(a)", "print('new')")
    assert cache.match(page) is None
    change = cache.diff(page)
    assert not change.same
    assert change.summary() == "code cell 1 changed, code cell 3 added"
    assert "-a = 1" in change.cells[0].unified()
    assert "+a = 2" in change.cells[0].unified()
    (state,) = cache.status([page])
    assert state.verdict == "stale"
    assert "code cell 1 changed" in state.reason
    with pytest.raises(NotFoundError, match="nbcache execute"):
        cache.merge(page)

    # only executed notebooks can be cached; an error output makes a failed result
    with pytest.raises(NotebookReadError, match="not executed"):
        cache.cache_notebook(page)
    failing = write_notebook(tmp_path / "failing.ipynb", "1/0", executed=True)
    notebook = nbformat.read(str(failing), as_version=4)
    notebook.cells[1].outputs = [
        nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero")
    ]
    nbformat.write(notebook, str(failing))
    failed = cache.cache_notebook(failing)
    assert failed.status == "failed"
    assert failed.failure is not None
    assert failed.failure.summary() == "ZeroDivisionError: division by zero"

    # records by unique id prefix; remove
    assert cache.get(record.key[:6]).key == record.key
    with pytest.raises(NotFoundError, match="at least 4"):
        cache.get("ab")
    with pytest.raises(NotFoundError, match="nbcache list"):
        cache.get("ffffffff" if not record.key.startswith("ffff") else "00000000")
    assert cache.remove([record.key[:10]]) == 1
    assert cache.invalidate([failing])[0].key == failed.key
    assert cache.records() == []


def _record(cache: Cache, name: str, text: str, created: float) -> Record:
    key = (name * 64)[:64]
    outputs = Outputs(
        (
            {
                "execution_count": 1,
                "outputs": [{"output_type": "stream", "name": "stdout", "text": text}],
            },
        )
    )
    return cache.store.put(
        Record(key, "ok", None, page=name, created=created, last_used=created), outputs
    )


def test_export_import_merges_newer_and_keeps_the_rest(tmp_path: Path) -> None:
    old, new = time.time() - 3600, time.time() - 60
    source = Cache(tmp_path / "a")
    _record(source, "a", "a from source", new)
    _record(source, "b", "b from source (older)", old)
    _record(source, "c", "c from source", old)
    archive = tmp_path / "cache.tar.gz"
    assert source.export(archive) == 3

    target = Cache(tmp_path / "b")
    _record(target, "a", "a in target (older)", old)
    _record(target, "b", "b in target (newer)", new)
    report = target.import_archive(archive)
    assert [k[0] for k in report.added] == ["c"]
    assert [k[0] for k in report.replaced] == ["a"]
    assert [k[0] for k in report.kept] == ["b"]
    assert not report.rejected
    texts = {r.page: target.outputs(r).cells[0]["outputs"][0]["text"] for r in target.records()}
    assert texts == {"a": "a from source", "b": "b in target (newer)", "c": "c from source"}
    again = target.import_archive(archive)
    assert len(again.kept) == 3
    assert not again.added
    assert not again.replaced


def _tar(path: Path, members: dict[str, bytes], links: tuple[str, ...] = ()) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name in links:
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
    return path


def test_import_rejects_unsafe_or_damaged_archives(tmp_path: Path) -> None:
    good = Cache(tmp_path / "good")
    record = _record(good, "a", "fine", time.time())
    exported = tmp_path / "good.tar.gz"
    good.export(exported)
    with tarfile.open(exported) as tar:
        manifest = json.loads(tar.extractfile("nbcache-archive.json").read())  # type: ignore[union-attr]
    manifest["records"].append({**manifest["records"][0], "key": "../../etc/passwd"})
    manifest["records"].append({**manifest["records"][0], "key": "e" * 64, "blob": "f" * 64})
    evil = _tar(
        tmp_path / "evil.tar.gz",
        {
            "nbcache-archive.json": json.dumps(manifest).encode(),
            f"blobs/{record.blob}.json": b'{"v": 1, "cells": [], "tampered": true}',
            "../outside.json": b"{}",
            "/tmp/absolute.json": b"{}",
        },
        links=("blobs/link.json",),
    )
    target = Cache(tmp_path / "target")
    report = target.import_archive(evil)
    assert not report.added
    assert not report.replaced
    reasons = " | ".join(f"{item}: {why}" for item, why in report.rejected)
    assert "does not match its hash" in reasons
    assert "../outside.json: unexpected archive member" in reasons
    assert "blobs/link.json: unexpected" in reasons
    assert "invalid key" in reasons
    assert not (tmp_path / "outside.json").exists()
    assert target.records() == []

    with pytest.raises(ArchiveError, match="not an `nbcache export` archive"):
        target.import_archive(_tar(tmp_path / "empty.tar.gz", {"x.txt": b"hello"}))
    (tmp_path / "junk.tar.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ArchiveError, match="not a readable"):
        target.import_archive(tmp_path / "junk.tar.gz")


def test_prune_keeps_the_most_recently_used(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    now = time.time()
    for age, name in ((3000, "a"), (2000, "b"), (1000, "c")):
        _record(cache, name, name * 100, now - age)
    assert [r.page for r in cache.prune(max_entries=5, grace=0)] == []
    assert [r.page for r in cache.prune(max_entries=2, grace=0)] == ["a"]
    size = cache.size_of(cache.records()[0])
    assert [r.page for r in cache.prune(max_size=size + 10, grace=0)] == ["b"]
    assert [r.page for r in cache.records()] == ["c"]
    assert cache.prune(max_entries=0 + 1, max_size=1, grace=3600) == []  # recently used: kept


def test_options_and_pages_come_from_conf_py(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "drafts").mkdir(parents=True)
    (docs / "conf.py").write_text(
        "import os\n"
        "assert os.path.basename(__file__) == 'conf.py'\n"
        "nbcache_path = 'my-cache'\n"
        "nb_execution_timeout = 5\n"
        "exclude_patterns = ['_build', 'drafts/*', 'conf.py']\n"
        "nb_custom_formats = {'.py': ['jupytext.reads', {'fmt': 'py:percent'}]}\n"
    )
    write_notebook(docs / "one.ipynb", "1")
    write_notebook(docs / "drafts" / "two.ipynb", "2")
    (docs / "script.py").write_text("# %%\nprint(3)\n")
    (docs / "prose.md").write_text("# Just prose\n")
    with open_cache(docs) as cache:
        assert cache.path == (docs / "my-cache").resolve()
        assert cache.options.timeout == 5
        assert sorted(p.name for p in cache.pages()) == ["one", "script"]
        assert cache.page("one").path == (docs / "one.ipynb").resolve()
    (docs / "conf.py").write_text("import os\n\nraise RuntimeError('boom')\n")
    with pytest.raises(ConfFileError, match="RuntimeError at line 3: boom"):
        open_cache(docs)
    with pytest.raises(NotFoundError):
        open_cache(tmp_path / "missing")
