"""Stale page -> :class:`~sphinx_nbcache.execute.Job`: everything an executor needs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import nbformat

from ..config import Options
from ..execute import Executor, Job, ProjectFiles
from ..notebooks.hashing import code_cells, kernel_name
from ..plan.freshness import Freshness, declared_patterns
from ..plan.parse import inspect_page
from ..plan.verdicts import PageState

if TYPE_CHECKING:
    from ..notebooks.readers import MdConfig

__all__ = ["KernelDoor", "job_for", "make_executor", "project_files"]


class KernelDoor(Protocol):
    """What a run's kernels ask the build through (``workflows.link.KernelLink``)."""

    def address(self) -> dict[str, str]: ...

    def close(self) -> None: ...


def project_files(root: Path | None, options: Options) -> ProjectFiles | None:
    """How jobs of a project ship its files (None: no project folder)."""
    if root is None:
        return None
    return ProjectFiles(str(root.resolve()), limit=options.files_limit)


def job_for(
    state: PageState,
    options: Options,
    freshness: Freshness,
    root: Path | None = None,
    md_config: MdConfig = None,
    link: Mapping[str, str] | None = None,
) -> Job:
    """The job that executes a stale page, variant or call (the page is read again if what
    runs was not kept when it was planned).

    ``root`` is the project folder: the job names the page's folder relative to it. A page
    outside the project (or with no project) is its own project: its folder is the root.
    ``link`` is where the kernel asks the build for other notebooks' results (a local
    kernel); without one, it is told where the store is, never its credentials.
    """
    if state.run is None:
        state.run, _memo = inspect_page(state.page, options, md_config)
    run = state.run
    own = run.options
    folder = state.page.path.parent.resolve()
    base = root.resolve() if root is not None else folder
    try:
        relative = folder.relative_to(base).as_posix()
    except ValueError:
        base, relative = folder, ""
    patterns = declared_patterns(state.page.name, options, run.notebook)
    bare = nbformat.from_dict(run.notebook)
    for cell in code_cells(bare):
        cell.outputs = []
        cell.execution_count = None
    return Job(
        key=run.key,
        notebook=bare,
        page=state.page.name,
        folder="" if relative == "." else relative,
        files=project_files(base, options),
        in_temp=own.in_temp,
        kernel=kernel_name(run.notebook, own),
        timeout=own.timeout,
        allow_errors=own.allow_errors,
        output_limit=own.output_limit,
        environment=own.environment,
        artifact_limit=own.artifact_limit,
        declared=freshness.declared(patterns, state.page.path.parent) if patterns else (),
        env=tuple((name, os.environ[name]) for name in own.executor_env if name in os.environ),
        store=_where_results_are(options, link, state.no_wait),
        parameters=run.parameters,
        variant=run.variant,
        expressions=tuple((e.after, e.source) for e in run.expressions),
    )


def make_executor(options: Options, prestart: int) -> Executor:
    """The executor the options name (``nbcache_executor`` and its settings); the local one
    in a process of its own unless ``nbcache_executor_process`` is off (or the platform
    cannot hand it a connection)."""
    from ..execute import ProcessExecutor, load_executor

    o = options
    settings = {
        **o.executor_options,
        "jobs": o.jobs,
        "max_jobs": o.max_jobs,
        "prestart": prestart,
        "url": o.executor_url,
        "token": o.executor_token,
        "env": o.executor_env,
        "fork_kernels": o.fork_kernels,
        "kernel_threads": o.kernel_threads,
    }
    if o.executor == "local" and o.executor_process and os.name == "posix":
        return ProcessExecutor(o.executor, **settings)
    return load_executor(o.executor, **settings)


def _where_results_are(
    options: Options, link: Mapping[str, str] | None, no_wait: bool
) -> tuple[tuple[str, str], ...]:
    """What a kernel is told of where results are: the build's link (local kernels), else the
    store's locations without credentials (a kernel elsewhere brings its own: for example
    ``NBCACHE_DATABASE`` passed through ``nbcache_executor_env``)."""
    found = {"cache_path": str(options.cache_path)}
    if link:
        found.update(link)
    else:
        if options.database:
            from ..store import describe_url

            found["database"] = describe_url(options.database)
        if options.blobs:
            found["blobs"] = _without_credentials(options.blobs)
    if no_wait:
        found["wait"] = "0"
    return tuple(found.items())


def _without_credentials(url: str) -> str:
    """``s3://key:secret@bucket/x`` -> ``s3://bucket/x`` (fsspec URLs may carry them)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.rpartition('@')[2]}{slash}{path}"
