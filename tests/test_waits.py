"""A notebook that waits for another page's result never holds up that page: a reader page,
a variant of it shown on another page, and the page they read (its path built at run time,
so nothing in the code says what it reads)."""

from __future__ import annotations

from collections import Counter

import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


@pytest.mark.parametrize("jobs", [1, 2])
def test_waiting_readers_give_their_place_to_the_page_they_read(  # type: ignore[no-untyped-def]
    project_factory, jobs: int
) -> None:
    project = project_factory("waits")
    cold = project.build(nbcache_jobs=jobs)
    assert "WARNING" not in cold.warnings, cold.warnings  # no read timed out
    assert cold.executed == Counter({"reader": 2, "zdata": 1}), cold.status  # page + variant
    assert "scaled: 4" in project.html("reader")
    assert "scaled: 40" in project.html("shows")


def test_a_build_with_nothing_changed_reads_no_page(project_factory) -> None:  # type: ignore[no-untyped-def]
    """The variant's recorded dependencies (a ``code:`` entry among them) are not handed to
    Sphinx as files that do not exist (Sphinx reads again a page whose dependency is gone)."""
    project = project_factory("waits")
    project.build()
    again = project.build()
    assert again.total == 0
    assert "0 added, 0 changed, 0 removed" in again.status, again.status
    assert "no targets are out of date" in again.status, again.status


def test_a_reader_and_the_page_it_read_both_changed_on_one_worker(project_factory) -> None:  # type: ignore[no-untyped-def]
    """With one worker and both pages' code changed, no read times out: the page the reader
    read on its last run (a ``code:`` entry) is submitted first
    (test_ordering.test_reads_recorded_by_the_last_run_come_first), and a reader that starts
    first anyway lends its place while it waits."""
    project = project_factory("waits")
    project.build(nbcache_jobs=1)
    project.edit("reader.md", 'log.write("reader\\n")', 'log.write("reader\\n")  # edited')
    project.edit("zdata.md", '"data": 4,', '"data": 5,')
    again = project.build(nbcache_jobs=1)
    assert "WARNING" not in again.warnings, again.warnings
    assert again.executed == Counter({"reader": 2, "zdata": 1}), again.status
    assert "scaled: 5" in project.html("reader")
    assert "scaled: 50" in project.html("shows")
