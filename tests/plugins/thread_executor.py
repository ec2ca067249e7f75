"""An executor written outside the package, the way a plug-in would be: a thread pool that runs
each job with ``sphinx_nbcache.execute.execute_job``. Tests choose it by
``nbcache_executor = "thread_executor:ThreadExecutor"`` (or an entry point)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from typing import Any

from sphinx_nbcache.execute import Job, Outcome, execute_job


class ThreadExecutor:
    def __init__(self, jobs: int = 1, **settings: Any) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(max(1, jobs))
        self.settings = settings
        log = os.environ.get("THREAD_EXECUTOR_LOG")
        if log:  # proves to the test that this executor was used, and with what
            with open(log, "a") as handle:
                handle.write(f"made jobs={jobs} url={settings.get('url')}\n")

    def submit(self, job: Job) -> concurrent.futures.Future[Outcome]:
        return self.pool.submit(asyncio.run, execute_job(job))

    def shutdown(self, cancel: bool = False) -> None:
        self.pool.shutdown(cancel_futures=cancel)


def broken(**settings: Any) -> ThreadExecutor:
    """A factory whose executor breaks on every job (a plug-in bug)."""
    executor = ThreadExecutor(**settings)

    def submit(job: Job) -> concurrent.futures.Future[Outcome]:
        future: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
        future.set_exception(RuntimeError("the plug-in has a bug"))
        return future

    executor.submit = submit  # type: ignore[method-assign]
    return executor
