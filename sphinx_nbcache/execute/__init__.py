"""Run notebooks: one (:func:`execute_job`) or many (an :class:`Executor`).

This package never touches the store: it turns :class:`Job` s into :class:`Outcome` s. An
executor is two methods, ``submit(job) -> Future[Outcome]`` and ``shutdown(cancel)``; the
engine (:mod:`sphinx_nbcache.engine.core`) stores, orders, reports and warns about whatever comes
back, the same way for every executor. :func:`load_executor` picks one by name: ``local``
(fresh kernels on this machine, the default), ``dask``, ``jupyter``, a name registered in the
entry-point group ``sphinx_nbcache.executors``, or ``"package.module:factory"``. A build runs
the local one in a process of its own (:class:`ProcessExecutor`, which finishes outcomes there
with what the engine gives it: the store), unless ``nbcache_executor_process = False``.

A plug-in executor can be a few lines::

    import asyncio, concurrent.futures
    from sphinx_nbcache.execute import execute_job

    class ThreadExecutor:
        def __init__(self, jobs=1, **settings):
            self.pool = concurrent.futures.ThreadPoolExecutor(jobs)

        def submit(self, job):
            return self.pool.submit(asyncio.run, execute_job(job))

        def shutdown(self, cancel=False):
            self.pool.shutdown(cancel_futures=cancel)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._interface import Executor, ExecutorFactory
from ._job import (
    DEFAULT_IGNORE,
    EnvironmentScope,
    Job,
    Outcome,
    ProjectFiles,
    error_outcome,
    unpack_files,
)

if TYPE_CHECKING:
    from ._kernel import execute_job
    from ._local import LocalExecutor
    from ._process import ProcessExecutor
    from ._registry import BUILTIN_EXECUTORS, ENTRY_POINT_GROUP, load_executor

__all__ = [
    "BUILTIN_EXECUTORS",
    "DEFAULT_IGNORE",
    "ENTRY_POINT_GROUP",
    "EnvironmentScope",
    "Executor",
    "ExecutorFactory",
    "Job",
    "LocalExecutor",
    "Outcome",
    "ProcessExecutor",
    "ProjectFiles",
    "error_outcome",
    "execute_job",
    "load_executor",
    "unpack_files",
]

#: what is imported on first use: a build that executes nothing (a no-op, a CI restore) never
#: loads the kernels' machinery (jupyter_client, zmq, multiprocessing, the executors)
_LAZY = {
    "execute_job": "._kernel",
    "LocalExecutor": "._local",
    "ProcessExecutor": "._process",
    "BUILTIN_EXECUTORS": "._registry",
    "ENTRY_POINT_GROUP": "._registry",
    "load_executor": "._registry",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
