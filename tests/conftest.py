"""Real Sphinx builds of small projects with real kernels.

Every test notebook's first cell appends its name to the file named by ``NBCACHE_TEST_LOG``:
that file, written *inside the kernels*, is how tests count executions.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# fixtures_services: postgres_url, s3, dask_scheduler, jupyter_server, kernel_gateway
pytest_plugins = ["sphinx.testing.fixtures", "fixtures_services"]

ROOTS = Path(__file__).parent / "roots"


@dataclass
class Build:
    executed: Counter[str]  # notebook name -> executions counted inside the kernels
    warnings: str
    status: str
    app: Any

    @property
    def total(self) -> int:
        return sum(self.executed.values())


class Project:
    """A copy of a test root that can be built again and again, like a user's project."""

    def __init__(self, src: Path, log: Path, make_app: Callable[..., Any]) -> None:
        self.src = src
        self.log = log
        self._make_app = make_app

    def build(self, parallel: int = 0, freshenv: bool = False, **confoverrides: Any) -> Build:
        self.log.write_text("")
        app = self._make_app(
            "html",
            srcdir=self.src,
            confoverrides=confoverrides,
            parallel=parallel,
            freshenv=freshenv,
        )
        app.build()
        executed = Counter(line for line in self.log.read_text().split() if line)
        # sphinx.testing re-registers docutils nodes in every app: not the project's warnings
        warnings = "\n".join(
            line
            for line in app._warning.getvalue().splitlines()
            if "while setting up extension" not in line
        )
        return Build(executed, warnings, app._status.getvalue(), app)

    def html(self, page: str) -> str:
        return (self.src / "_build" / "html" / f"{page}.html").read_text()

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.src / name
        text = path.read_text()
        assert old in text, f"{old!r} not in {name}"
        path.write_text(text.replace(old, new, 1))

    def clear_build(self) -> None:
        shutil.rmtree(self.src / "_build")

    def clear_cache(self) -> None:
        shutil.rmtree(self.src / ".nbcache")


@pytest.fixture
def project_factory(
    tmp_path: Path, make_app: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], Project]:
    log = tmp_path / "kernel.log"
    log.write_text("")
    monkeypatch.setenv("NBCACHE_TEST_LOG", str(log))

    def factory(root: str) -> Project:
        src = tmp_path / root
        shutil.copytree(ROOTS / f"test-{root}", src)
        return Project(src, log, make_app)

    return factory
