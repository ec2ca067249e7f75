"""Notebooks as functions: tags (``parameters``, ``skip``, ``return``), ``run`` and
``run_notebook`` memoised by the cache, ``nbcache run``, and page variants (the
``nbcache-notebook`` directive) read by ``read_notebooks`` — with real kernels, executions
counted inside them."""

from __future__ import annotations

import html
import json
import pickle
import re
from collections import Counter
from pathlib import Path

import nbformat
import pytest
import sphinx

from sphinx_nbcache import read_notebooks, run, run_notebook
from sphinx_nbcache.cli import main
from sphinx_nbcache.cli.calls import parse_parameters
from sphinx_nbcache.errors import (
    CallTimeoutError,
    NotebookCallError,
    ParameterError,
    SignatureError,
)
from sphinx_nbcache.notebooks.functions import INJECTED_TAG, prepare, returned, signature
from sphinx_nbcache.workflows.variants import scan


def notebook(*cells: tuple[str, list[str]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src, metadata={"tags": tags}) for src, tags in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    return nb


def kernel_log() -> Counter[str]:
    import os

    text = Path(os.environ["NBCACHE_TEST_LOG"]).read_text()
    return Counter(line for line in text.split() if line)


def test_signature_and_the_notebook_a_call_runs() -> None:
    nb = notebook(
        ("x = 1\nlabel: str = 'a'\n%matplotlib inline", ["parameters"]),
        ("print('exploring')", ["skip"]),
        ("y = x * 2", []),
        ("{'y': y,\n 'label': label}", ["return"]),
    )
    sign = signature(nb, "model.ipynb")
    assert sign.parameters == {"x": "1", "label": "'a'"}
    assert sign.returns
    assert sign.language == "python"

    called = prepare(nb, {"x": 5}, path="model.ipynb", call=True)
    sources = [c.source for c in called.cells]
    assert len(sources) == 4  # the skip cell is gone, the injected one follows the defaults
    assert called.cells[1].metadata["tags"] == [INJECTED_TAG]
    assert "x = 5" in sources[1]
    assert "print('exploring')" not in "".join(sources)
    assert sources[3].startswith("__nbcache_value__ = ({'y': y,\n 'label': label}")
    assert nb.cells[3].source.startswith("{'y'")  # the notebook given is not changed

    page = prepare(nb, {"x": 5}, path="model.ipynb", call=False)  # a page variant
    assert [c.source for c in page.cells][2] == "print('exploring')"
    assert page.cells[4].source == nb.cells[3].source
    again = prepare(page, {"x": 6}, path="model.ipynb", call=False)  # injected once, anew
    assert sum(INJECTED_TAG in c.metadata.get("tags", []) for c in again.cells) == 1
    assert "x = 6" in again.cells[1].source
    assert returned(page) is None  # nothing ran


def test_bad_calls_are_clear_errors_naming_the_cell() -> None:
    nb = notebook(("n = 1", ["parameters"]), ("b = n\nb", ["return"]))
    with pytest.raises(ParameterError, match=r"no parameter 'm' \(declared: n\)"):
        prepare(nb, {"m": 1}, path="nb.ipynb", call=True)
    with pytest.raises(ParameterError, match="'n': nan is not a finite number"):
        prepare(nb, {"n": float("nan")}, path="nb.ipynb", call=True)
    with pytest.raises(ParameterError, match="a set is not a JSON value"):
        prepare(nb, {"n": {1, 2}}, path="nb.ipynb", call=True)
    with pytest.raises(SignatureError, match=r"nb\.ipynb, code cell 2 line 1: a `return` cell"):
        prepare(nb, {}, path="nb.ipynb", call=True)
    prepare(nb, {}, path="nb.ipynb", call=False)  # a page runs the cell as it is
    plain = notebook(("a = 1", []))
    with pytest.raises(ParameterError, match="tag the cell of default values `parameters`"):
        prepare(plain, {"a": 2}, path="plain.ipynb", call=True)
    two = notebook(("1", ["return"]), ("2", ["return"]))
    with pytest.raises(SignatureError, match="code cell 2: more than one cell is tagged"):
        signature(two, "two.ipynb")
    r = notebook(("x = 1", ["parameters"]))
    r.metadata["kernelspec"]["language"] = "R"
    with pytest.raises(SignatureError, match="need a Python kernel"):
        prepare(r, {"x": 2}, path="r.ipynb", call=False)
    error = NotebookCallError("nb", "ZeroDivisionError", "division by zero", "tb", 3)
    copy = pickle.loads(pickle.dumps(error))  # they cross process boundaries
    assert (copy.ename, copy.evalue, copy.traceback, copy.cell) == (
        "ZeroDivisionError",
        "division by zero",
        "tb",
        3,
    )
    assert str(copy) == "nb in code cell 3 raised ZeroDivisionError: division by zero"
    assert "timeout" in str(pickle.loads(pickle.dumps(CallTimeoutError("nb", "T", "", "", 2))))


def test_cli_parameters_are_yaml_literals_like_papermill() -> None:
    given = parse_parameters(
        [["x", "1"], ["s", "foo"], ["l", "[1, 2]"], ["b", "true"], ["t", "a: b"], ["e", ""]],
        ["{y: 2.5, x: 0}"],
    )
    assert given == {"y": 2.5, "x": 1, "s": "foo", "l": [1, 2], "b": True, "t": "a: b", "e": ""}
    with pytest.raises(ParameterError, match="give a mapping"):
        parse_parameters([], ["[1]"])


def test_directives_are_found_in_page_text() -> None:
    text = (
        "# Page\n\n```{nbcache-notebook} ../m/station.md\n:parameters: {site: west}\n```\n\n"
        '.. nbcache-notebook:: other.ipynb\n   :parameters: {"a": 1}\n\n'
        "~~~{nbcache-notebook} bare.md\n~~~\n"
    )
    found = [(ref.path, ref.parameters) for ref in scan(text)]
    assert found == [
        ("../m/station.md", "{site: west}"),
        ("other.ipynb", '{"a": 1}'),
        ("bare.md", ""),
    ]
    assert scan("no directive here") == []


@pytest.mark.kernel
def test_calls_are_memoised_by_the_cache_and_raise_typed_errors(  # type: ignore[no-untyped-def]
    project_factory, capsys
) -> None:
    project = project_factory("functions")
    src = project.src
    station = src / "stations" / "station.md"

    first = run_notebook(station, {"site": "west", "readings": [5, 5]})
    assert first.value == {"site": "west", "total": 10}
    assert not first.cached
    assert first.page == "stations/station"
    assert kernel_log() == Counter({"station-west": 1})
    again = run_notebook(station, {"readings": [5, 5], "site": "west"})  # any order
    assert again.cached
    assert again.value == first.value
    assert again.record.id == first.record.id
    assert kernel_log() == Counter({"station-west": 1})  # no kernel ran
    assert run(station, site="west", readings=[5, 5]) == {"site": "west", "total": 10}
    other = run_notebook(station, {"site": "west", "readings": [5, 6]})
    assert other.record.id != first.record.id
    assert other.value["total"] == 11
    assert kernel_log() == Counter({"station-west": 2})
    # the skip cell did not run; the injected cell follows the parameters cell
    ran = "".join(
        str(o.get("text", "")) for c in first.notebook.cells for o in c.get("outputs", [])
    )
    assert "only shown on pages" not in ran
    assert "station west: total 10" in ran

    fails = src / "functions" / "fails.md"
    with pytest.raises(NotebookCallError) as raised:
        run(fails)
    assert (raised.value.ename, raised.value.evalue) == ("ZeroDivisionError", "division by zero")
    assert raised.value.cell == 3  # as written: the cell that divides
    assert "ratio = 1 / divisor" in raised.value.traceback
    assert run(fails, divisor=4) == 0.25
    with pytest.raises(ParameterError, match="no parameter 'divisr'"):
        run(fails, divisr=4)
    with pytest.raises(SignatureError, match=r"code cell 2 line 1"):
        run(src / "functions" / "bad_return.md")
    with pytest.raises(CallTimeoutError) as late:
        run_notebook(fails, {"divisor": 2, "pause": 30}, timeout=1)
    assert late.value.cell == 2

    # the command line: values read as literals; --json for scripts; a raise exits 1
    capsys.readouterr()
    args = ["run", str(station), "-p", "site", "west", "-p", "readings", "[5, 5]", "--json"]
    assert main(args) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["result"] == {"site": "west", "total": 10}
    assert answer["cached"] is True
    assert answer["record"] == first.record.id
    assert main(["run", str(fails), "-p", "divisor", "0"]) == 1
    assert "ZeroDivisionError" in capsys.readouterr().err
    assert main(["run", str(fails), "-p", "nope", "1"]) == 2


def text(project, page: str) -> str:  # type: ignore[no-untyped-def]
    """A built page's text, tags dropped and entities decoded."""
    return html.unescape(re.sub("<[^>]+>", "", project.html(page)))


def variant_totals(page: str) -> list[tuple[str, str]]:
    return re.findall(r"station (\w+): total (\d+)", page)


@pytest.mark.kernel
def test_page_variants_are_planned_with_the_pages_and_read_by_a_summary(  # type: ignore[no-untyped-def]
    project_factory, capsys
) -> None:
    project = project_factory("functions")
    src = project.src

    cold = project.build()
    assert cold.executed == Counter(
        {
            "station-center": 1,  # the page as written
            "station-north": 1,  # its two variants, shown on the overview page
            "station-south": 1,
            "summary": 1,  # reads the variants with read_notebooks
            "caller": 1,  # calls the station notebook inside its kernel...
            "station-inner": 1,  # ...which runs once, in a kernel of its own
        }
    ), cold.warnings
    assert "WARNING" not in cold.warnings, cold.warnings
    assert variant_totals(project.html("stations/overview")) == [("north", "9"), ("south", "12")]
    assert "sites: north, south" in project.html("summary")
    assert "grand total: 21" in project.html("summary")
    assert "inner call: {'site': 'inner', 'total': 7}" in text(project, "caller")
    assert "pasted from the summary, is 21" in text(project, "report")
    # nbcache list shows the variants with their parameters
    assert main(["list", "--docs", str(src), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    shown = sorted(r["parameters"]["site"] for r in listed if r["parameters"])
    assert shown == ["inner", "north", "south"]
    stations = [nb for nb in read_notebooks(src / "stations") if nb.parameters]
    assert [(nb.parameters["site"], nb.scraps["total"].data) for nb in stations] == [
        ("north", 9),
        ("south", 12),
    ]

    assert project.build().total == 0  # no-op

    # a variant's parameters: that variant and the summary that read it, nothing else
    project.edit("stations/overview.md", "readings: [4, 8]", "readings: [4, 9]")
    edited = project.build()
    assert edited.executed == Counter({"station-south": 1, "summary": 1}), edited.warnings
    assert "grand total: 22" in project.html("summary")
    assert "pasted from the summary, is 22" in text(project, "report")

    # prose around the variants, in the notebook read and called, anywhere: nothing executes
    project.edit("stations/overview.md", "Prose about the stations.", "Edited prose.")
    project.edit("report.md", "# Report", "# The report")
    project.edit("stations/station.md", "# A station", "# A station, described anew")
    assert project.build().total == 0

    # the source notebook's code: the page, every variant, and every reader or caller
    project.edit("stations/station.md", "total = sum(readings)", "total = 10 * sum(readings)")
    recoded = project.build()
    assert recoded.executed == Counter(
        {
            "station-center": 1,
            "station-north": 1,
            "station-south": 1,
            "summary": 1,
            "caller": 1,
            "station-inner": 1,
        }
    ), recoded.warnings
    assert variant_totals(project.html("stations/overview")) == [("north", "90"), ("south", "130")]
    assert "grand total: 220" in project.html("summary")

    # a CI-style build (build folder deleted, cache kept): nothing runs, all is shown
    project.clear_build()
    assert project.build().total == 0
    assert variant_totals(project.html("stations/overview")) == [("north", "90"), ("south", "130")]

    # a bad directive is a located warning, and the build goes on
    project.edit("stations/overview.md", "{site: north, readings: [3, 6]}", "{place: north}")
    warned = project.build()
    assert re.search(
        r"overview.md:\d+: WARNING: nbcache-notebook: .*no parameter 'place'", warned.warnings
    )
    if sphinx.version_info >= (8,):  # Sphinx 8 appends [type.subtype] to warnings
        assert "[nbcache.variant]" in warned.warnings
