"""Files a notebook wrote before it read or imported them are its outputs, not its inputs.

A fresh checkout (the written files and ``_build`` gone, the cache folder kept) executes
nothing: the written data file is put back from the cache, and the written module is put back
only where ``nbcache_artifact_patterns`` allows it (code changes what runs); the result stays
valid without it either way.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sphinx_nbcache.execute._trace import dependencies

Project = Any  # tests/conftest.py's Project: a copy of a test root, built again and again
PAGES = Counter({"module": 1, "data": 1})


def _fresh_checkout(project: Project) -> None:
    """What a CI job has: the sources, the cache folder; not what the notebooks wrote."""
    for name in ("mathfoo.py", "table.csv"):
        (project.src / name).unlink()
    project.clear_build()


@pytest.mark.kernel
def test_written_files_are_outputs_not_dependencies(
    project_factory: Callable[[str], Project],
) -> None:
    project = project_factory("artifacts")
    first = project.build()
    assert first.executed == PAGES
    assert "doubled: 42" in project.html("module")
    assert "rows read: 2" in project.html("data")

    _fresh_checkout(project)
    again = project.build()
    assert again.executed == Counter(), again.status
    # the data file is back; the module is not (code is put back only where allowed) and
    # nothing needs it: the result was made with the file the notebook wrote itself
    assert (project.src / "table.csv").read_text() == "x,y\n1,2\n3,4\n"
    assert not (project.src / "mathfoo.py").exists()
    assert "mathfoo.py would change what runs" in again.warnings
    assert "doubled: 42" in project.html("module")
    assert "rows read: 2" in project.html("data")

    assert project.build().executed == Counter()


@pytest.mark.kernel
def test_written_module_put_back_where_allowed(project_factory: Callable[[str], Project]) -> None:
    project = project_factory("artifacts")
    assert project.build(nbcache_artifact_patterns=["*.py"]).executed == PAGES

    _fresh_checkout(project)
    again = project.build(nbcache_artifact_patterns=["*.py"])
    assert again.executed == Counter(), again.status
    assert "def double(x)" in (project.src / "mathfoo.py").read_text()
    assert (project.src / "table.csv").read_text() == "x,y\n1,2\n3,4\n"
    assert "would change what runs" not in again.warnings


def _report(
    tmp_path: Path, files: dict[str, list[object]], modules: dict[str, list[object]]
) -> dict[str, Any]:
    root = str(tmp_path)
    return {
        "root": root,
        "cwd": root,
        "files": {os.path.join(root, k): v for k, v in files.items()},
        "modules": {k: [os.path.join(root, str(v[0])), v[1]] for k, v in modules.items()},
        "path": [root],
    }


def test_module_written_then_imported_is_no_dependency(tmp_path: Path) -> None:
    (tmp_path / "mathfoo.py").write_text("x = 1\n")
    (tmp_path / "helpers.py").write_text("y = 1\n")
    report = _report(
        tmp_path,
        files={"mathfoo.py": ["w", 2], "helpers.py": ["r", 1]},
        modules={"mathfoo": ["mathfoo.py", 3], "helpers": ["helpers.py", 1]},
    )
    found = dependencies(report, (), {}, {1: 1, 2: 2, 3: 3})
    assert [name for name, _ in found.files] == ["helpers.py"]
    assert found.imports == ("helpers.py",)


def test_module_imported_then_rewritten_stays_a_dependency(tmp_path: Path) -> None:
    """Imported (from its bytecode: the source never opened) before the notebook wrote it:
    the first run used the file as it was, so it is an input."""
    (tmp_path / "mathfoo.py").write_text("x = 1\n")
    report = _report(
        tmp_path, files={"mathfoo.py": ["w", 3]}, modules={"mathfoo": ["mathfoo.py", 2]}
    )
    found = dependencies(report, (), {}, {1: 1, 2: 2, 3: 3})
    assert [name for name, _ in found.files] == ["mathfoo.py"]
