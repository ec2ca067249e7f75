"""Verdicts on pages from the store's records, without running anything."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import nbformat
import pytest

from sphinx_nbcache.config import Options
from sphinx_nbcache.notebooks.pages import Page
from sphinx_nbcache.plan import parse as parsing
from sphinx_nbcache.plan.memo import Memo
from sphinx_nbcache.plan.ordering import execution_order
from sphinx_nbcache.plan.stale import plan_pages
from sphinx_nbcache.plan.verdicts import PageState
from sphinx_nbcache.records import Failure, Outputs, Record
from sphinx_nbcache.store import Store


def write(folder: Path, name: str, code: str, **metadata: object) -> Page:
    nb = nbformat.v4.new_notebook()
    nb.metadata.update({"kernelspec": {"name": "python3", "display_name": "P"}, **metadata})
    nb.cells = [nbformat.v4.new_code_cell(code)]
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return Page(name, path)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Options, Store, Path]:
    options = Options(cache_path=tmp_path / "cache", timeout=10)
    return options, Store(tmp_path / "cache"), tmp_path


def store_result(store: Store, state: PageState, record: Record) -> None:
    cells = ({"execution_count": 1, "outputs": []},)
    assert state.key is not None
    store.put(record._replace(key=state.key, page=state.page.name), Outputs(cells))


def test_verdicts_follow_the_records(setup) -> None:  # type: ignore[no-untyped-def]
    options, store, folder = setup
    pages = [
        write(folder, "ok", "1"),
        write(folder, "failed", "1/0"),
        write(folder, "timed_out", "import time; time.sleep(99)"),
        write(folder, "errored", "2"),
        write(folder, "new", "3"),
    ]
    memos: dict[str, Memo] = {}
    first = {s.page.name: s for s in plan_pages(pages, options, store, memos)}
    assert {s.verdict for s in first.values()} == {"stale"}
    store_result(store, first["ok"], Record("", "ok", None))
    store_result(
        store, first["failed"], Record("", "failed", None, failure=Failure("cell", "E", "v"))
    )
    store_result(
        store,
        first["timed_out"],
        Record("", "failed", None, timeout=10, failure=Failure("timeout", "T", "t")),
    )
    store_result(store, first["errored"], Record("", "error", None))

    verdicts = {s.page.name: s.verdict for s in plan_pages(pages, options, store, memos)}
    assert verdicts == {
        "ok": "cached",
        "failed": "failed",
        "timed_out": "failed",
        "errored": "stale",
        "new": "stale",
    }
    retry = Options(cache_path=options.cache_path, timeout=10, retry_failed=True)
    assert {s.page.name: s.verdict for s in plan_pages(pages, retry, store, {})}[
        "failed"
    ] == "stale"
    longer = Options(cache_path=options.cache_path, timeout=20)
    states = {s.page.name: s for s in plan_pages(pages, longer, store, {})}
    assert states["timed_out"].verdict == "stale"
    assert "timeout" in states["timed_out"].reason
    assert states["failed"].verdict == "failed"


def test_memo_skips_reading_unchanged_files(setup) -> None:  # type: ignore[no-untyped-def]
    options, store, folder = setup
    page = write(folder, "a", "1")
    memos: dict[str, Memo] = {}
    plan_pages([page], options, store, memos)
    page.path.write_text("this is no longer JSON, but the memo still matches size and mtime")
    memo = memos["a"]
    os.utime(page.path, ns=(memo.mtime_ns, memo.mtime_ns))
    if page.path.stat().st_size != memo.size:  # different size: the memo no longer matches
        assert plan_pages([page], options, store, memos)[0].verdict == "unreadable"
    else:
        assert plan_pages([page], options, store, memos)[0].verdict == "stale"


def test_longest_recorded_runtime_runs_first(setup) -> None:  # type: ignore[no-untyped-def]
    options, store, folder = setup
    pages = [write(folder, name, f"'{name}'") for name in ("short", "long", "new", "middle")]
    states = {s.page.name: s for s in plan_pages(pages, options, store, {})}
    for name, seconds in (("short", 1.0), ("long", 9.0), ("middle", 4.0)):
        store_result(store, states[name], Record("", "ok", None, runtime=seconds))
    for page in pages:  # edit every page: all stale again, old run times recorded per page
        write(folder, page.name, f"'{page.name}' * 2")
    stale = plan_pages(pages, options, store, {})
    assert all(s.stale for s in stale)
    assert [s.page.name for s in execution_order(stale, store)] == [
        "new",
        "long",
        "middle",
        "short",
    ]


def test_a_fresh_checkout_is_planned_without_parsing(setup, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    options, store, folder = setup
    pages = [write(folder, name, f"'{name}'") for name in ("a", "b")]
    first = plan_pages(pages, options, store, {})
    for state in first:
        store_result(store, state, Record("", "ok", None))
    for page in pages:  # a new clone: same bytes, new modification times, no memo
        os.utime(page.path, ns=(1, 1))

    def parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed a file whose exact bytes were read before")

    monkeypatch.setattr("sphinx_nbcache.plan.parse.read_runnable", parse)
    again = plan_pages(pages, options, store, {})
    assert [s.verdict for s in again] == ["cached", "cached"]
    assert [s.key for s in again] == [s.key for s in first]
    # the same bytes under other options are parsed again (the digest covers the options)
    other = Options(cache_path=options.cache_path, timeout=10, allow_errors=True)
    with pytest.raises(AssertionError, match="parsed a file"):
        plan_pages(pages, other, store, {})


def test_many_new_files_are_parsed_in_workers_with_the_same_verdicts(  # type: ignore[no-untyped-def]
    setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    options, store, folder = setup
    options = Options(
        cache_path=options.cache_path,
        custom_formats=Options.from_mapping(
            {"nb_custom_formats": {".py": ["jupytext.reads", {"fmt": "py:percent"}]}}, folder
        ).custom_formats,
    )
    pages = [write(folder, f"nb{i}", f"x = {i}") for i in range(12)]
    for i in range(12):
        path = folder / f"py{i}.py"
        path.write_text(f"# %%\ny = {i}\n\n# %% [markdown]\n# prose {i}\n")
        pages.append(Page(path.stem, path))
    broken = folder / "broken.ipynb"
    broken.write_text("{not json")
    pages.append(Page("broken", broken))

    serial = plan_pages(pages, options, Store(folder / "serial-cache"))
    monkeypatch.setattr(parsing, "PARALLEL_PARSE_MIN", 4)  # 25 new files: two workers
    readers = folder / "readers.log"  # the process of every parse, from any process
    inspect = parsing.inspect_page

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        with readers.open("a") as log:
            log.write(f"{os.getpid()}\n")
        return inspect(*args, **kwargs)

    monkeypatch.setattr(parsing, "inspect_page", spy)
    for thread in threading.enumerate():  # an earlier test's kernel client may be stopping:
        if thread is not threading.current_thread():  # workers fork only with no other thread
            thread.join(timeout=60)
    assert threading.active_count() == 1, threading.enumerate()  # else no worker is forked
    parallel = plan_pages(pages, options, store)
    pids = readers.read_text().split()
    assert len(pids) == 25
    assert pids.count(str(os.getpid())) == 2  # one of each kind here, for the imports
    assert len(set(pids) - {str(os.getpid())}) == 2  # the rest in two forked workers
    assert [(s.page, s.verdict, s.key, s.reason) for s in parallel] == [
        (s.page, s.verdict, s.key, s.reason) for s in serial
    ]
    by_name = {s.page.name: s for s in parallel}
    assert by_name["broken"].verdict == "unreadable"
    assert "invalid JSON" in str(by_name["broken"].error)
    assert by_name["py3"].run is not None  # kept for executing, as a serial read keeps it
    assert by_name["py3"].run.notebook.cells[0].source == "y = 3"
