"""The part of the Dask executor that runs on a worker: one task = one notebook.

A worker needs sphinx-nbcache (this module), nbclient and the notebooks' kernels installed;
no shared file system: the page's folder arrives with the task, packed, and is unpacked into a
temporary folder where the kernel runs (removed after). The task logs an event naming its
worker as it starts, so that the build knows which pages a lost worker was running. A task
cancelled by the build (Ctrl-C, a page given up) stops its kernel within half a second:
Dask cannot interrupt a running task's thread, so the task watches its own state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import tempfile
from typing import Any

from ..records import Failure
from ._job import Job, Outcome, ProjectFiles, error_outcome, unpack_files
from ._kernel import execute_in, start_kernel, stop_kernel, sweep_orphan_folders
from ._remote import prepare

__all__ = ["run_on_worker"]

_WATCH_INTERVAL = 0.5  # seconds between looks at the task's own state on the worker
_GONE = {"cancelled", "released", "forgotten"}


def run_on_worker(job: Job, packed: bytes | None, env: dict[str, str], topic: str) -> Outcome:
    """The task: run ``job`` in a fresh kernel on this worker; always returns an Outcome."""
    from distributed import get_worker

    worker = get_worker()
    key = worker.get_current_task()
    worker.log_event(topic, {"key": str(key), "worker": worker.address})
    return asyncio.run(_run(job, packed, env, worker, key))


async def _run(
    job: Job, packed: bytes | None, env: dict[str, str], worker: Any, key: Any
) -> Outcome:
    _sweep_once()
    folder = tempfile.mkdtemp(prefix="nbcache-dask-")
    try:
        with open(os.path.join(folder, "owner"), "w") as owner:  # for sweep_orphan_folders()
            owner.write(str(os.getpid()))
        if packed is not None and job.files is not None:
            page = os.path.join(folder, "page")
            unpack_files(packed, page)
            os.makedirs(page, exist_ok=True)  # a folder with nothing to ship
            files = ProjectFiles(page, job.files.ignore, job.files.limit)
            job = dataclasses.replace(job, files=files, folder="")
        running = asyncio.ensure_future(_execute(job, env))
        watching = asyncio.ensure_future(_watch(worker, key))
        await asyncio.wait({running, watching}, return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            watching.cancel()
            return running.result()
        running.cancel()  # the build no longer wants it: stop the kernel, give nothing back
        await asyncio.gather(running, return_exceptions=True)
        failure = Failure("internal", "CancelledError", "cancelled by the build")
        return error_outcome(job, failure)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_swept = False


def _sweep_once() -> None:
    """Remove the folders left by runs whose worker was killed (once per worker process)."""
    global _swept
    if not _swept:
        _swept = True
        sweep_orphan_folders()


async def _execute(job: Job, env: dict[str, str]) -> Outcome:
    starting = asyncio.ensure_future(start_kernel(job))
    try:
        handle = await asyncio.shield(starting)
    except asyncio.CancelledError:  # cancelled while the kernel starts: stop it once up
        started = await starting
        if not isinstance(started, Failure):
            await stop_kernel(started)
        raise
    if isinstance(handle, Failure):
        return error_outcome(job, handle)
    try:
        failure = await prepare(handle, job, env)
        if failure is not None:
            return error_outcome(job, failure)
        return await execute_in(handle, job)
    finally:
        await asyncio.shield(stop_kernel(handle))


async def _watch(worker: Any, key: Any) -> None:
    """Return once this task is no longer wanted (cancelled, released, forgotten)."""
    while True:
        await asyncio.sleep(_WATCH_INTERVAL)
        state = worker.state.tasks.get(key)
        if state is None or state.state in _GONE:
            return


def busy_keys(keys: list[str], dask_worker: Any = None) -> list[str]:
    """Which of ``keys`` still run on this worker, cancelled or not (``Client.run``)."""
    busy = []
    for key in keys:
        state = dask_worker.state.tasks.get(key) if dask_worker is not None else None
        if state is not None and state.state in {"executing", "long-running", "cancelled"}:
            busy.append(key)
    return busy
