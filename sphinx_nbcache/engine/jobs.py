"""Stale page -> :class:`~sphinx_nbcache.execute.Job`: everything an executor needs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat

from ..config import Options
from ..execute import Job, ProjectFiles
from ..notebooks.hashing import code_cells, kernel_name
from ..plan.freshness import Freshness, declared_patterns
from ..plan.parse import inspect_page
from ..plan.verdicts import PageState

__all__ = ["job_for", "project_files"]


def project_files(root: Path | None, options: Options) -> ProjectFiles | None:
    """How jobs of a project ship its files (None: no project folder)."""
    if root is None:
        return None
    return ProjectFiles(str(root.resolve()), limit=options.files_limit)


def job_for(
    state: PageState,
    options: Options,
    root: Path | None = None,
    md_config: Any = None,
    freshness: Freshness | None = None,
) -> Job:
    """The job that executes a stale page (reads the page again if it was not kept).

    ``root`` is the project folder: the job names the page's folder relative to it. A page
    outside the project (or with no project) is its own project: its folder is the root.
    """
    notebook, own = state.notebook, state.options
    if notebook is None or own is None:
        notebook, own, _ = inspect_page(state.page, options, md_config)
        state.notebook, state.options = notebook, own
    assert state.key is not None
    folder = state.page.path.parent.resolve()
    base = root.resolve() if root is not None else folder
    try:
        relative = folder.relative_to(base).as_posix()
    except ValueError:
        base, relative = folder, ""
    patterns = declared_patterns(state.page.name, options, notebook)
    check = freshness or Freshness(options, root)
    bare = nbformat.from_dict(notebook)
    for cell in code_cells(bare):
        cell.outputs = []
        cell.execution_count = None
    return Job(
        key=state.key,
        notebook=bare,
        page=state.page.name,
        folder="" if relative == "." else relative,
        files=project_files(base, options),
        in_temp=own.in_temp,
        kernel=kernel_name(notebook, own),
        timeout=own.timeout,
        allow_errors=own.allow_errors,
        output_limit=own.output_limit,
        environment=own.environment,
        artifact_limit=own.artifact_limit,
        declared=check.declared(patterns, state.page.path.parent) if patterns else (),
        env=tuple((name, os.environ[name]) for name in own.executor_env if name in os.environ),
        store=(
            ("cache_path", str(options.cache_path)),
            ("database", options.database or ""),
            ("blobs", options.blobs or ""),
            *((("wait", "0"),) if state.no_wait else ()),
        ),
        parameters=None if state.parameters is None else dict(state.parameters),
        variant=state.variant,
    )
