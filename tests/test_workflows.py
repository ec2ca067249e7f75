"""Workflows across pages: scraps (scrapbook's and myst-nb's glue) read from the cache, in
Python, with ``nbcache scraps`` and inside a notebook during a build, never stale."""

from __future__ import annotations

import json
import re
from collections import Counter

import nbformat
import pytest
from test_freshness import fake_package

from sphinx_nbcache import read_notebook, read_notebooks
from sphinx_nbcache.cli import main
from sphinx_nbcache.errors import NotFoundError
from sphinx_nbcache.notebooks.scraps import scraps_of

SCRAP_JSON = "application/scrapbook.scrap.json+json"
SCRAP_TEXT = "application/scrapbook.scrap.text+json"


def display(data: dict, metadata: dict) -> dict:  # type: ignore[type-arg]
    return nbformat.v4.new_output("display_data", data=data, metadata=metadata)


def pasted(project, what: str = "pasted from the summary, is") -> str:  # type: ignore[no-untyped-def]
    """The value the prose page pasted from the summary (myst-nb renders it as code), or
    after ``what``."""
    found = re.search(rf"{what} .*?>(\d+)<", project.html("report"))
    assert found, project.html("report")
    return found.group(1)


SCRAP = "a scrapbook scrap pasted the same way, is"


def test_scraps_of_both_conventions() -> None:
    chart = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}
    cell = nbformat.v4.new_code_cell("glue")
    cell.outputs = [
        display(  # sb.glue("x", 1)
            {SCRAP_JSON: {"name": "x", "data": 1, "encoder": "json", "version": 1}},
            {"scrapbook": {"name": "x", "data": True, "display": False}},
        ),
        display(  # sb.glue("message", "hi", encoder="text")
            {SCRAP_TEXT: {"name": "message", "data": "hi", "encoder": "text", "version": 1}},
            {"scrapbook": {"name": "message", "data": True, "display": False}},
        ),
        display(chart, {"scrapbook": {"name": "chart", "data": False, "display": True}}),
        display(  # sb.glue("d", {...}, display=True): the data, then its display
            {SCRAP_JSON: {"name": "d", "data": {"a": 1}, "encoder": "json", "version": 1}},
            {"scrapbook": {"name": "d", "data": True, "display": False}},
        ),
        display({"text/plain": "{'a': 1}"}, {"scrapbook": {"name": "d", "display": True}}),
        display(  # myst-nb: glue("shown", 0.5) and glue("hidden", 2, display=False)
            {"text/plain": "0.5"}, {"scrapbook": {"name": "shown", "mime_prefix": ""}}
        ),
        display(
            {"application/papermill.record/text/plain": "2"},
            {"scrapbook": {"name": "hidden", "mime_prefix": "application/papermill.record/"}},
        ),
        display(  # glued again: the later one wins
            {SCRAP_JSON: {"name": "x", "data": 2, "encoder": "json", "version": 1}},
            {"scrapbook": {"name": "x", "data": True, "display": False}},
        ),
        nbformat.v4.new_output("stream", text="not a scrap"),
    ]
    scraps = scraps_of(nbformat.v4.new_notebook(cells=[cell]))
    assert list(scraps) == ["x", "message", "chart", "d", "shown", "hidden"]
    assert (scraps["x"].data, scraps["x"].encoder) == (2, "json")
    assert (scraps["message"].data, scraps["message"].encoder) == ("hi", "text")
    assert scraps["chart"].data is None
    assert scraps["chart"].display == {"data": chart, "metadata": {}}
    assert scraps["d"].data == {"a": 1}
    assert scraps["d"].display is not None
    assert scraps["d"].display["data"] == {"text/plain": "{'a': 1}"}
    assert scraps["shown"].encoder == "display"
    assert scraps["shown"].preview() == "0.5"
    assert scraps["hidden"].display is not None
    assert scraps["hidden"].display["data"] == {"text/plain": "2"}
    assert scraps["message"].preview() == "hi"
    assert scraps["d"].preview() == '{"a": 1}'


@pytest.mark.kernel
def test_a_summary_reads_its_sources_from_the_cache_and_is_never_stale(  # type: ignore[no-untyped-def]
    project_factory, capsys, tmp_path, monkeypatch
) -> None:
    project = project_factory("workflow")
    src = project.src
    everything = Counter({"north": 1, "south": 1, "summary": 1})
    site = tmp_path / "site"
    fake_package(site, "1.0")
    monkeypatch.setenv("PYTHONPATH", str(site))  # the kernels import it from there
    monkeypatch.syspath_prepend(str(site))  # and the build checks its version here

    cold = project.build()
    assert cold.executed == everything, cold.warnings
    assert "WARNING" not in cold.warnings, cold.warnings
    assert "grand total: 21" in project.html("summary")  # 3+6 and 4+8
    assert "sites: north, south" in project.html("summary")
    assert pasted(project) == "21"
    assert pasted(project, SCRAP) == "9"  # sb.glue("total", 9) in sources/north.md

    # in Python: the results a build shows, with their scraps
    north = read_notebook(src / "sources" / "north.md")
    assert north.page == "sources/north"
    assert north.scraps["total"].data == 9
    assert north.scraps["site"].data == "north"
    assert north.scraps["mean"].encoder == "display"
    assert north.scraps["mean"].preview() == "4.5"
    both = read_notebooks(src / "sources")
    assert [nb.page for nb in both] == ["sources/north", "sources/south"]
    assert [nb.scraps["total"].data for nb in read_notebooks(f"{src}/sources/*.md")] == [9, 12]
    assert read_notebook("summary", docs=src).scraps["grand"].preview() == "21"
    assert main(["scraps", "sources/south", "--docs", str(src), "--json"]) == 0
    listed = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
    assert listed["total"]["data"] == 12
    assert listed["site"]["encoder"] == "text"
    assert listed["mean"]["preview"] == "6.0"

    assert project.build().total == 0  # no-op

    # a source's prose: nothing runs (the summary read the source's result, not its text)
    project.edit("sources/north.md", "Prose of north.", "Prose of north, rewritten.")
    assert project.build().total == 0

    # a source's code: that source and the summary, and the summary shows the new value
    project.edit("sources/north.md", "readings = [3, 3 * 2]", "readings = [30, 3 * 2]")
    edited = project.build()
    assert edited.executed == Counter({"north": 1, "summary": 1}), edited.warnings
    assert "grand total: 48" in project.html("summary")
    assert pasted(project) == "48"  # re-rendered
    assert pasted(project, SCRAP) == "36"
    assert read_notebook(src / "sources" / "north.md").scraps["total"].data == 36

    # a file a source read changed (its code did not): never stale, the summary runs too
    project.edit(
        "sources/south.md",
        "readings = [4, 4 * 2]",
        'readings = [int(open("base.txt").read()), 4 * 2]',
    )
    (src / "sources" / "base.txt").write_text("4")
    assert project.build().executed == Counter({"south": 1, "summary": 1})
    (src / "sources" / "base.txt").write_text("5")
    changed = project.build()
    assert changed.executed == Counter({"south": 1, "summary": 1}), changed.warnings
    assert "grand total: 49" in project.html("summary")
    assert pasted(project) == "49"

    # a CI-style build (build folder deleted, cache kept): nothing runs, every value is there
    project.clear_build()
    assert project.build().total == 0
    assert "grand total: 49" in project.html("summary")
    assert pasted(project) == "49"

    # a page added to the folder the summary lists: it runs, and so does the summary; a file
    # that is not a notebook page changes nothing; once the page is removed the summary shows
    # its earlier result again (still in the cache and valid again: nothing runs)
    east = (src / "sources" / "south.md").read_text()
    east = east.replace("south", "east").replace("readings = [int(", "readings = [1 + int(")
    (src / "sources" / "east.md").write_text(east)
    added = project.build()
    assert added.executed == Counter({"east": 1, "summary": 1}), added.warnings
    assert "grand total: 63" in project.html("summary")  # 36 + 13 + 14
    assert "sites: east, north, south" in project.html("summary")
    (src / "sources" / "notes.txt").write_text("not a page")
    assert project.build().total == 0
    (src / "sources" / "east.md").unlink()
    removed = project.build()
    assert removed.total == 0, removed.warnings
    assert "grand total: 49" in project.html("summary")
    assert "sites: north, south" in project.html("summary")

    # a file matched by a glob a source declares (nbcache.depends) changes: the source runs,
    # and so does the summary, which read that source's result (anchored at the project)
    project.edit(
        "sources/south.md", "kernelspec:", "nbcache:\n  depends: [data/*.csv]\nkernelspec:"
    )
    (src / "sources" / "data").mkdir()
    (src / "sources" / "data" / "a.csv").write_text("1")
    assert project.build().executed == Counter({"south": 1, "summary": 1})
    (src / "sources" / "data" / "a.csv").write_text("2")
    globbed = project.build()
    assert globbed.executed == Counter({"south": 1, "summary": 1}), globbed.warnings
    assert project.build().total == 0

    # a package a source imports is upgraded (the summary does not import it): both run
    project.edit("sources/south.md", "readings = [int(", "import fakepkg\nreadings = [int(")
    assert project.build().executed == Counter({"south": 1, "summary": 1})
    fake_package(site, "2.0")
    upgraded = project.build()
    assert upgraded.executed == Counter({"south": 1, "summary": 1}), upgraded.warnings

    # a page with no current result says so
    project.edit("sources/north.md", "readings = [30, 3 * 2]", "readings = [31, 3 * 2]")
    with pytest.raises(NotFoundError, match="sources/north has no current result"):
        read_notebook(src / "sources" / "north.md")
