"""Pages that read other pages' results run after them; pages reading each other are a
located warning, never a build that hangs."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import nbformat
import pytest
import sphinx

from sphinx_nbcache.config import Options
from sphinx_nbcache.dependencies import Dependencies
from sphinx_nbcache.notebooks.pages import Page
from sphinx_nbcache.notebooks.runnable import Runnable
from sphinx_nbcache.plan.ordering import cycles, order_by_reads, reads_of
from sphinx_nbcache.plan.verdicts import PageState
from sphinx_nbcache.records import Record


def state(folder: Path, name: str, code: str = "") -> PageState:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    path = folder / f"{name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    page = Page(name, path)
    run = Runnable(page, nb, Options(cache_path=folder / ".nbcache"), "k" + name, "")
    return PageState(page, "stale", run=run)


def test_reads_named_in_code_come_first(tmp_path: Path) -> None:
    north = state(tmp_path, "sources/north")
    south = state(tmp_path, "sources/south")
    summary = state(tmp_path, "summary", 'nbs = read_notebooks("sources")\nx = run("other.md")')
    report = state(tmp_path, "report", "sb = read_notebook('summary.md')")
    pages = {s.page.path.resolve(): s.page.name for s in (north, south, summary, report)}
    assert reads_of(summary, pages, None) == {"sources/north", "sources/south"}
    assert reads_of(report, pages, None) == {"summary"}
    assert reads_of(north, pages, None) == set()
    reads = {s.page.name: reads_of(s, pages, None) for s in (report, summary, north, south)}
    ordered, loops = order_by_reads([report, summary, north, south], reads)
    assert [s.page.name for s in ordered] == ["sources/north", "sources/south", "summary", "report"]
    assert loops == []


def test_reads_recorded_by_the_last_run_come_first(tmp_path: Path) -> None:
    """A page read through ``read_notebook`` with a path built at run time is recorded as a
    ``code:`` entry (its key), a page read as a file as a plain one: both order the reader."""
    data = state(tmp_path, "zdata")
    other = state(tmp_path, "sub/other")
    reader = state(tmp_path, "reader")
    pages = {s.page.path.resolve(): s.page.name for s in (data, other, reader)}
    deps = Dependencies(files=(("code:zdata.md", "k"), ("sub/other.md", "d"), ("glob:*.md", "g")))
    last = Record("0" * 64, "ok", None, dependencies=deps)
    assert reads_of(reader, pages, last, tmp_path) == {"zdata", "sub/other"}
    escaping = Record(
        "0" * 64, "ok", None, dependencies=Dependencies(files=(("code:../x.md", "k"),))
    )
    assert reads_of(reader, pages, escaping, tmp_path) == set()  # outside the project: no read
    ordered, _ = order_by_reads([reader, data, other], {"reader": {"zdata", "sub/other"}})
    assert [s.page.name for s in ordered] == ["zdata", "sub/other", "reader"]


def test_cycles_are_found_and_keep_their_order(tmp_path: Path) -> None:
    a, b, c = (state(tmp_path, n) for n in "abc")
    ordered, loops = order_by_reads([a, b, c], {"a": {"b"}, "b": {"a"}, "c": set()})
    assert [s.page.name for s in ordered] == ["c", "a", "b"]
    assert loops == [["a", "b"]]
    assert cycles({"x": ["y"], "y": ["z"], "z": ["x"], "w": ["w"], "v": ["x"]}) == [
        ["w"],
        ["x", "y", "z"],
    ]


@pytest.mark.kernel
def test_one_worker_runs_the_sources_before_the_summary_that_reads_them(  # type: ignore[no-untyped-def]
    project_factory,
) -> None:
    """With one worker, a summary run before its sources would wait for them forever."""
    project = project_factory("workflow")
    cold = project.build(nbcache_jobs=1)
    assert cold.executed == Counter({"north": 1, "south": 1, "summary": 1}), cold.warnings
    assert "grand total: 21" in project.html("summary")
    functions = project_factory("functions")  # variants, read by a summary, on one worker
    built = functions.build(nbcache_jobs=1)
    assert built.executed["summary"] == 1, built.warnings
    assert "grand total: 21" in functions.html("summary")


@pytest.mark.kernel
@pytest.mark.timeout(300)
def test_pages_reading_each_other_are_warned_about_and_do_not_hang(  # type: ignore[no-untyped-def]
    project_factory,
) -> None:
    project = project_factory("cycle")
    begin = time.monotonic()
    built = project.build()
    assert time.monotonic() - begin < 120  # nobody waited out the 600 s a read may wait
    assert built.executed == Counter({"ping": 1, "pong": 1}), built.warnings
    for page in ("ping", "pong"):
        assert re.search(
            rf"{page}\.md: WARNING: this page and \w+ read each other's results", built.warnings
        ), built.warnings
    if sphinx.version_info >= (8,):  # Sphinx 8 appends [type.subtype] to warnings
        assert built.warnings.count("[nbcache.cycle]") == 2, built.warnings
    shown = project.html("ping") + project.html("pong")
    assert "could not read: NotFoundError" in shown  # the first of the two found nothing
    assert project.build().total == 0
