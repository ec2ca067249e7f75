"""The executor interface: what the engine needs from anything that runs notebooks."""

from __future__ import annotations

import concurrent.futures
from typing import Any, Protocol, runtime_checkable

from ._job import Job, Outcome

__all__ = ["Executor", "ExecutorFactory"]


@runtime_checkable
class Executor(Protocol):
    """Runs jobs somewhere and hands their outcomes back.

    ``submit`` returns at once. Its future resolves with the job's :class:`Outcome` as soon as
    that is known (a kernel may still be shutting down); it resolves with an outcome whose
    record has status ``failed`` or ``error`` when the notebook or its kernel failed, and
    raises only when the executor itself broke (the engine then reports the page as an
    ``internal`` error). Jobs should start in the order they were submitted: the engine
    submits the longest-running pages first.

    ``shutdown`` waits for every submitted job (or, with ``cancel``, cancels what has not
    finished), then releases kernels, connections and threads; it is called exactly once,
    also after Ctrl-C, and must not leave kernels running anywhere.
    """

    def submit(self, job: Job) -> concurrent.futures.Future[Outcome]: ...

    def shutdown(self, cancel: bool = False) -> None: ...


class ExecutorFactory(Protocol):
    """Makes an executor from keyword settings: ``jobs`` (notebooks at once), ``prestart``
    (kernels started ahead of need), ``url``, ``token``, ``env`` (names of environment
    variables to pass on) and whatever ``nbcache_executor_options`` holds. A factory should
    accept and ignore settings it does not know (``**settings``)."""

    def __call__(self, **settings: Any) -> Executor: ...
