"""myst-nb's execution options keep their meaning with sphinx-nbcache in charge."""

from __future__ import annotations

import re
from collections import Counter

import sphinx

EXECUTED_IN_CACHE_MODE = {"aliased", "auto_has_outputs", "auto_missing", "intemp", "slow"}


def test_cache_mode_honours_per_notebook_settings(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("modes")
    build = project.build()
    # off by notebook metadata and excluded by pattern: never executed
    assert build.executed == Counter(EXECUTED_IN_CACHE_MODE), build.status
    # nb_kernel_rgx_aliases maps my-python -> python3 before the kernel starts
    assert "aliased" in build.executed
    assert "nbcache.kernel" not in build.warnings
    # execution_in_temp: the kernel ran in a temporary folder, not beside the page
    cwd_line = next(line for line in project.html("intemp").splitlines() if "cwd is" in line)
    assert str(project.src) not in cwd_line
    # metadata.execution.timeout (1 s) wins over nb_execution_timeout (60 s)
    timeouts = [w for w in build.warnings.splitlines() if "slow.md" in w and "WARNING" in w]
    assert len(timeouts) == 1, build.warnings
    assert "CellTimeoutError" in timeouts[0]
    if sphinx.version_info >= (8,):
        assert "[nbcache.timeout]" in build.warnings
    # the stored output of an .ipynb is replaced by the fresh one in cache mode
    assert "fresh output" in project.html("auto_has_outputs")
    assert "stored output" not in project.html("auto_has_outputs")

    # a timed-out result is cached like any failure: shown again, not re-run ...
    again = project.build()
    assert again.total == 0
    assert "CellTimeoutError" in again.warnings
    # ... until the timeout is raised past the one it failed with
    project.edit("slow.md", "timeout: 1", "timeout: 2")
    assert project.build().executed == Counter({"slow": 1})


def test_auto_mode_runs_only_notebooks_missing_outputs(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("modes")
    build = project.build(nb_execution_mode="auto")
    assert "auto_has_outputs" not in build.executed
    assert build.executed["auto_missing"] == 1
    assert "stored output" in project.html("auto_has_outputs")
    assert "fresh output" in project.html("auto_missing")
    assert project.build(nb_execution_mode="auto").total == 0


def test_force_mode_runs_every_page_read(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("modes")
    first = project.build(nb_execution_mode="force")
    assert first.executed == Counter(EXECUTED_IN_CACHE_MODE)
    assert project.build(nb_execution_mode="force").total == 0  # nothing read, nothing run
    project.edit("aliased.md", "# aliased", "# aliased, edited prose")
    assert project.build(nb_execution_mode="force").executed == Counter({"aliased": 1})


def test_off_mode_runs_nothing(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("modes")
    build = project.build(nb_execution_mode="off")
    assert build.total == 0
    assert "stored output" in project.html("auto_has_outputs")
    assert not (project.src / ".nbcache" / "blobs").exists()


def test_inline_mode_pages_are_cached(project_factory) -> None:  # type: ignore[no-untyped-def]
    # inline pages ({eval} reads values the page computed) run through sphinx-nbcache like
    # cache-mode pages: their values are cached, and a prose edit executes nothing
    project = project_factory("inline")
    first = project.build()
    assert first.executed == Counter({"live": 1, "cached": 1}), first.status
    assert "WARNING" not in first.warnings, first.warnings
    assert re.search(r"answer is <span[^>]*>42</span>", project.html("live"))
    assert "output of cached" in project.html("cached")
    project.edit("live.md", "# live", "# live, edited prose")
    project.edit("cached.md", "# cached", "# cached, edited prose")
    second = project.build()
    assert second.total == 0, second.status
    assert re.search(r"answer is <span[^>]*>42</span>", project.html("live"))
    assert "output of cached" in project.html("cached")
