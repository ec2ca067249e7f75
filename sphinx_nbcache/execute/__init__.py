"""Run notebooks: one (:func:`run_notebook`) or many (:class:`LocalExecutor`).

This package never touches the store: it turns :class:`Job` s into :class:`Outcome` s. Any
executor offers ``submit(job) -> Future[Outcome]`` and ``shutdown(cancel)``; the local one runs
fresh kernels on this machine, others (a Dask cluster, a kernel gateway) can slot in behind
the same two methods.
"""

from __future__ import annotations

import concurrent.futures
from typing import Protocol

from ._job import Job, Outcome
from ._kernel import run_notebook
from ._local import LocalExecutor

__all__ = ["Executor", "Job", "LocalExecutor", "Outcome", "run_notebook"]


class Executor(Protocol):
    """What the runner needs from an execution engine."""

    def submit(self, job: Job) -> concurrent.futures.Future[Outcome]: ...

    def shutdown(self, cancel: bool = False) -> None: ...
