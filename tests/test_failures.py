"""A failing cell is one located warning, cached, shown again without re-executing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest
import sphinx

from sphinx_nbcache.errors import NotebookExecutionError


def line_of(project, name: str, text: str) -> int:  # type: ignore[no-untyped-def]
    lines = (project.src / name).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.strip() == text)


def test_failure_is_a_located_cached_warning(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("failing")
    cold = project.build()
    assert cold.executed == Counter({"fails": 1, "tolerated": 1})
    expected_line = line_of(project, "fails.md", "inner(1)")
    warnings = [w for w in cold.warnings.splitlines() if "WARNING" in w]
    assert len(warnings) == 1, cold.warnings
    assert f"fails.md:{expected_line}: WARNING:" in warnings[0]
    assert "ZeroDivisionError: division by zero" in warnings[0]
    if sphinx.version_info >= (8,):  # Sphinx 8 appends [type.subtype] to warnings
        assert "[nbcache.failed]" in cold.warnings
    assert "----> " in cold.warnings  # the kernel traceback
    assert "\x1b[0;" not in cold.warnings.replace("\x1b[91m", "").replace("\x1b[39;49;00m", "")
    assert "before the failure" in project.html("fails")  # outputs up to the failure
    assert "never reached" not in project.html("fails").split("print")[0]
    tolerated = project.html("tolerated")
    assert "expected and tagged" in tolerated
    assert "after the tolerated error" in tolerated

    # a plain rebuild shows the same warning again, without executing anything
    again = project.build()
    assert again.total == 0
    assert f"fails.md:{expected_line}: WARNING:" in again.warnings
    assert "cached failure" in again.warnings

    # so does a CI-style rebuild with a fresh build folder
    project.clear_build()
    restored = project.build()
    assert restored.total == 0
    assert "ZeroDivisionError" in restored.warnings

    # asking for a retry re-executes the failed page only
    retried = project.build(nbcache_retry_failed=True)
    assert retried.executed == Counter({"fails": 1})

    # tracebacks can be turned off; the warning can be suppressed by type.subtype
    quiet = project.build(nbcache_show_traceback=False)
    assert "ZeroDivisionError" in quiet.warnings
    assert "----> " not in quiet.warnings
    silent = project.build(suppress_warnings=["nbcache.failed"])
    assert "nbcache" not in silent.warnings
    assert "ZeroDivisionError" not in silent.warnings

    # fixing the code clears the failure
    project.edit("fails.md", "inner(1)", "print('fixed')")
    fixed = project.build()
    assert fixed.executed == Counter({"fails": 1})
    assert "WARNING" not in fixed.warnings
    assert "never reached" in project.html("fails")


def test_raise_on_error_fails_the_build(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("failing")
    with pytest.raises(
        NotebookExecutionError, match="fails: failed in code cell 2: ZeroDivisionError"
    ):
        project.build(nb_execution_raise_on_error=True)


def test_sphinx_build_w_fails_and_without_w_succeeds(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("failing")
    src = project.src
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", str(src), str(src / "_build")]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    plain = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert plain.returncode == 0, plain.stderr
    assert "ZeroDivisionError" in plain.stderr
    strict = subprocess.run([*command, "-W"], capture_output=True, text=True, env=env, check=False)
    assert strict.returncode != 0
    assert "ZeroDivisionError" in strict.stderr
    assert project.log.read_text().split().count("fails") == 1  # the -W build ran nothing
