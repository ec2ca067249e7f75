"""One account of a build: counts that add up, honest figures, JSON and JUnit reports."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import junitparser  # the JUnit report read as CI systems read it
import pytest
import sphinx

from sphinx_nbcache.cli import main
from sphinx_nbcache.engine.report import OUTCOMES

pytestmark = pytest.mark.kernel

HEADER = (
    "---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n"
    "  name: {kernel}\n  display_name: K\n---\n\n# {title}\n\n"
)


def page(title: str, *cells: str, kernel: str = "python3") -> str:
    body = "".join(f"```{{code-cell}}\n{cell}\n```\n\n" for cell in cells)
    return HEADER.format(kernel=kernel, title=title) + body


LOG = 'import os\nopen(os.environ["NBCACHE_TEST_LOG"], "a").write("{name}\\n")'
#: about 0.3 s of CPU, whatever the machine's speed; 200 MB touched
BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3:\n    pass"
BIG = "big = bytearray(200 * 2**20)\nbig[::4096] = b'x' * len(big[::4096])"


def make_project(project_factory: Any) -> Any:
    project = project_factory("failing")
    src: Path = project.src
    (src / "julia.md").write_text(page("Julia", "1 + 1", kernel="julia-1.9"))
    (src / "heavy.md").write_text(page("Heavy", LOG.format(name="heavy"), BUSY, BIG))
    (src / "quick.md").write_text(page("Quick", LOG.format(name="quick")))
    project.edit("index.md", "tolerated\n", "tolerated\njulia\nheavy\nquick\n")
    return project


def summary(status: str) -> dict[str, int]:
    """The build's account line: outcome -> pages."""
    line = next(x for x in status.splitlines() if re.match(r"nbcache: \d+ notebook pages: ", x))
    total, rest = re.match(r"nbcache: (\d+) notebook pages: ([^;]*)", line).groups()  # type: ignore[union-attr]
    counts = {m[2]: int(m[1]) for m in re.finditer(r"(\d+) ([a-z ]+?)(?: \(|,|$)", rest)}
    assert set(counts) <= set(OUTCOMES), counts
    assert sum(counts.values()) == int(total), line  # the numbers add up
    return counts


def check_junit(text: str, tests: int, failures: int, errors: int, skipped: int) -> ET.Element:
    """The JUnit XML schema's shape: <testsuites> of <testsuite name tests failures errors
    skipped time> of <testcase name classname time>, each with at most one <failure
    message type>, <error message type> or <skipped>; every count matches the cases."""
    root = ET.fromstring(text)
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    for element in (root, suite):
        assert element.get("name")
        assert float(element.get("time", "x")) >= 0
    cases = suite.findall("testcase")
    found = {"failure": 0, "error": 0, "skipped": 0}
    for case in cases:
        assert case.get("name")
        assert case.get("classname", "").startswith("nbcache.")
        assert float(case.get("time", "x")) >= 0
        kinds = [child.tag for child in case if child.tag in found]
        assert len(kinds) <= 1
        for kind in kinds:
            found[kind] += 1
            if kind != "skipped":
                assert case.find(kind).get("message")  # type: ignore[union-attr]
                assert case.find(kind).get("type")  # type: ignore[union-attr]
    expected = {"tests": tests, "failures": failures, "errors": errors, "skipped": skipped}
    assert {k: int(suite.get(k, "-1")) for k in expected} == expected
    assert len(cases) == tests
    assert found == {"failure": failures, "error": errors, "skipped": skipped}
    parsed = junitparser.JUnitXml.fromstring(text)
    [parsed_suite] = list(parsed)
    assert (parsed_suite.tests, parsed_suite.failures, parsed_suite.errors) == (
        tests,
        failures,
        errors,
    )
    return root


def test_a_build_accounts_for_every_page_and_writes_reports(project_factory, capsys) -> None:  # type: ignore[no-untyped-def]
    project = make_project(project_factory)
    src: Path = project.src
    options = {
        "nbcache_report_json": "_build/nbcache.json",
        "nbcache_report_junit": "_build/junit/nbcache.xml",
        "nbcache_jobs": 1,  # the second notebook's kernel starts while the first runs
        "nbcache_prestart": 1,
    }
    cold = project.build(**options)
    assert summary(cold.status) == {
        "executed": 3,  # heavy, quick, tolerated
        "failed": 1,
        "could not start": 1,  # a missing kernel is not an execution
        "from cache": 0,
    }
    assert "nbcache: julia could not start: NoSuchKernel" in cold.status
    assert "ran julia" not in cold.status
    # one warning says the kernel is missing; the renderer does not add one per cell
    assert "No source code lexer" not in cold.warnings

    data = json.loads((src / "_build" / "nbcache.json").read_text())
    entries = {e["name"]: e for e in data["entries"]}
    assert data["format"] == "sphinx-nbcache-report"
    assert data["ok"] is False
    assert data["counts"] == {
        "executed": 3, "failed": 1, "could not start": 1, "from cache": 0, "skipped": 0
    }  # fmt: skip
    assert sum(data["counts"].values()) == len(entries) == 5
    assert entries["fails"]["failure"]["ename"] == "ZeroDivisionError"
    assert (
        entries["fails"]["explain"] == "failed in code cell 2: ZeroDivisionError: division by zero"
    )
    assert entries["julia"]["outcome"] == "could not start"
    assert entries["julia"]["runtime"] == 0.0

    # honest figures: a page's time runs from its first cell to its last reply, so a kernel
    # started ahead of its page does not count its wait; CPU and memory asked of the kernel
    store_json = json.loads(_cli(capsys, "list", "--docs", src, "--json"))
    records = {r["page"]: r for r in store_json}
    quick = records["quick"]
    assert quick["runtime"] == quick["cell_times"][0]  # one cell: its time, nothing else
    heavy = entries["heavy"]
    assert heavy["cpu_time"] >= 0.3
    assert heavy["peak_memory"] >= 200 * 2**20
    assert data["kernel_time"] == pytest.approx(
        sum(e["runtime"] for e in data["entries"] if e["outcome"] in ("executed", "failed")),
        abs=1e-3,
    )
    assert data["kernel_time"] <= data["most_at_once"] * data["wall"]

    junit = (src / "_build" / "junit" / "nbcache.xml").read_text()
    root = check_junit(junit, tests=5, failures=1, errors=1, skipped=0)
    failing = root.find(".//testcase[@name='fails']/failure")
    assert failing is not None
    assert "ZeroDivisionError" in (failing.text or "")

    # a prose edit and a code edit: every page is still counted, as what happened to it
    project.edit("quick.md", "# Quick", "# Quick\n\nMore prose.")
    prose = project.build(**options)
    assert summary(prose.status) == {
        "executed": 0, "failed": 1, "could not start": 1, "from cache": 3
    }  # fmt: skip
    project.edit("quick.md", "# Quick", "# Quick\n\n```{code-cell}\nx = 1\n```\n")
    code = project.build(**options)
    assert summary(code.status) == {
        "executed": 1, "failed": 1, "could not start": 1, "from cache": 2
    }  # fmt: skip
    data = json.loads((src / "_build" / "nbcache.json").read_text())
    cached = {e["name"]: e for e in data["entries"]}["heavy"]
    assert cached["outcome"] == "from cache"
    assert cached["cpu_time"] >= 0.3

    # nbcache report prints the same from the cache
    text = _cli(capsys, "report", src, "--junit")
    check_junit(text, tests=5, failures=1, errors=0, skipped=1)  # julia: stale, not run
    report = json.loads(_cli(capsys, "report", src, "--json"))
    assert report["counts"]["from cache"] == 3
    assert {e["name"]: e["outcome"] for e in report["entries"]}["julia"] == "skipped"


def _cli(capsys: Any, *argv: Any) -> str:
    main([str(a) for a in argv])
    return str(capsys.readouterr().out)


def test_a_misspelt_option_is_a_warning_naming_the_right_one(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("failing")
    conf = project.src / "conf.py"
    conf.write_text(conf.read_text() + "nbcache_job = 2\nnbcache_zzzz = 1\n")
    build = project.build()
    lines = [x for x in build.warnings.splitlines() if "is not an option" in x]
    assert len(lines) == 2, build.warnings
    assert f"{conf}:7: WARNING: sphinx-nbcache: 'nbcache_job' is not an option" in lines[0]
    assert "did you mean 'nbcache_jobs'?" in lines[0]
    assert "'nbcache_zzzz'" in lines[1]
    assert "did you mean" not in lines[1]
    if sphinx.version_info >= (8,):  # Sphinx 8 names the warning's type and subtype
        assert "[nbcache.config]" in lines[0]


def test_the_account_adds_up_for_variants_and_cached_pages() -> None:
    from sphinx_nbcache.engine.report import build_report
    from sphinx_nbcache.notebooks.pages import Page
    from sphinx_nbcache.notebooks.runnable import Runnable
    from sphinx_nbcache.plan.verdicts import PageState
    from sphinx_nbcache.records import Failure, Record

    def state(name: str, verdict: str, key: str, variant: str = "") -> PageState:
        run = Runnable(Page(name, Path(name)), {}, None, key, "", {"x": 1} if variant else None,
                       variant)  # type: ignore[arg-type]  # fmt: skip
        return PageState(Page(name, Path(name)), verdict, key=key, run=run)  # type: ignore[arg-type]

    keys = {n: c * 64 for n, c in zip(("a", "b", "c", "d", "e", "f"), "abcdef", strict=True)}
    states = [
        state("a", "stale", keys["a"]),
        state("b", "cached", keys["b"]),
        state("c", "stale", keys["c"]),
        state("a", "stale", keys["d"], variant="d" * 64),
        state("e", "off", keys["e"]),
        state("f", "stale", keys["f"]),  # planned again after it ran: cached now
    ]
    states[1].record = Record(keys["b"], "ok", None)
    states[5].verdict = "cached"
    failure = Failure("no_kernel", "NoSuchKernel", "no kernel")
    done = [
        Record(keys["a"], "ok", None, runtime=2.0, cpu_time=1.5),
        Record(keys["c"], "error", None, failure=failure),
        Record(keys["d"], "ok", None, runtime=1.0),
        Record(keys["f"], "failed", None, runtime=0.5, failure=Failure("cell", "E", "x")),
    ]
    report = build_report(states, done, wall=10.0, most_at_once=2)
    assert report.counts("page") == {
        "executed": 1, "failed": 1, "could not start": 1, "from cache": 1, "skipped": 1
    }  # fmt: skip
    assert report.counts("variant")["executed"] == 1
    assert report.summary() == (
        "5 notebook pages: 1 executed, 1 failed, 1 could not start, 1 from cache, 1 skipped; "
        "1 variant: 1 executed, 0 failed, 0 could not start, 0 from cache"
    )
    assert report.kernel_time == 3.5  # what ran, not the one that could not start
    assert report.timing() == "3.5 s of kernel time (1.5 s CPU), at most 2 at once, in 10.0 s"
    assert [e.name for e in report.failing] == ["c", "f"]
    assert not report.ok
