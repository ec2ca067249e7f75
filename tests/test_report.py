"""The ``nbcache-report`` directive: a table of every notebook page, refreshed every build."""

from __future__ import annotations

import re
from collections import Counter

import pytest

pytestmark = pytest.mark.kernel

REPORT = "# Execution report\n\n```{nbcache-report}\n```\n"


def rows(html: str) -> dict[str, str]:
    """Page title -> the text of its row."""
    table = html.split('class="nbcache-report', 1)[1].split("</table>", 1)[0]
    found = {}
    for row in re.findall(r"<tr class=\"nbcache-.*?</tr>", table, re.DOTALL):
        text = re.sub(r"<[^>]+>", " ", row)
        text = re.sub(r"\s+", " ", text).strip()
        title = re.search(r'href="[^"]+">([^<]+)</a>', row)
        assert title is not None, row
        found[title.group(1)] = text
    return found


def test_report_lists_pages_and_is_refreshed(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("failing")
    (project.src / "report.md").write_text(REPORT)
    project.edit("index.md", "tolerated\n", "tolerated\nreport\n")

    cold = project.build()
    assert cold.executed == Counter({"fails": 1, "tolerated": 1})
    html = project.html("report")
    table = rows(html)
    assert set(table) == {"A page that fails", "Errors that are expected"}
    failing = table["A page that fails"]
    assert failing.startswith("A page that fails failed")
    assert "ZeroDivisionError: division by zero" in failing
    # run time, CPU time, peak memory, date
    assert re.search(r"\d+\.\d\d s \d+\.\d\d s \d+\.\d MiB \d{4}-\d\d-\d\d \d\d:\d\d", failing)
    assert "table.nbcache-report" in html  # its columns sort when their heading is clicked
    assert table["Errors that are expected"].startswith("Errors that are expected ok")
    assert 'href="fails.html"' in html
    assert "2 notebook pages (1 failed, 1 ok)" in html

    # fixing one page re-executes it only; the report page (not edited) shows the new status
    project.edit("fails.md", "inner(1)", "inner(1) if False else None")
    fixed = project.build(parallel=2)
    assert fixed.executed == Counter({"fails": 1})
    table = rows(project.html("report"))
    assert table["A page that fails"].startswith("A page that fails ok")
    assert "2 notebook pages (2 ok)" in project.html("report")

    # a no-op build executes nothing and keeps the report whole
    assert project.build().total == 0
    assert len(rows(project.html("report"))) == 2
