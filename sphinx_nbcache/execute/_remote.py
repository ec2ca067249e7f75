"""What the remote executors (Dask, Jupyter) share.

* :func:`passed_environment`: the environment variables a remote kernel gets: the job's own
  (:attr:`Job.env`) and the build's values of the names listed in ``nbcache_executor_env``;
  never the build's whole environment.
* :func:`prepare`: connect to a started kernel and set those variables by a *silent*
  execution before the first cell (no outputs, no history entry, no execution count), since
  neither a Jupyter server nor a kernel gateway passes a client's variables to its kernels.
* :class:`LoopThread`: one background thread running the asyncio loop that drives the
  kernels, for executors whose ``submit`` is called from plain threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from ..records import Failure
from ._job import Job, Outcome
from ._kernel import KernelHandle, connect

__all__ = ["LoopThread", "passed_environment", "prepare", "resolve"]

T = TypeVar("T")

#: Run silently in a Python kernel before the first cell; formatted with the variables.
_ENV_CODE = "import os as _nbcache_os\n_nbcache_os.environ.update({!r})\ndel _nbcache_os\n"


def check_env_names(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as a tuple of variable names; ValueError for anything else."""
    if isinstance(names, str):
        names = [names]  # a single name given as a string
    result = tuple(names)
    for name in result:
        if not isinstance(name, str) or not name or "=" in name:
            raise ValueError(f"{name!r} is not the name of an environment variable")
    return result


def passed_environment(job: Job, names: Iterable[str]) -> dict[str, str]:
    """The variables a remote kernel gets: the build's values of ``names`` (those set),
    then the job's own :attr:`Job.env` (which win)."""
    values = {name: os.environ[name] for name in names if name in os.environ}
    values.update(dict(job.env))
    return values


async def prepare(handle: KernelHandle, job: Job, env: dict[str, str]) -> Failure | None:
    """Connect to the started kernel and set ``env`` in it; a Failure if that is impossible.

    A connection error is left for :func:`~._kernel.execute_in` to report, as for a local
    kernel."""
    await connect(handle, job)
    client = handle.client
    if not env or handle.connect_error is not None or client is None or client.kc is None:
        return None
    assert handle.notebook is not None
    language = handle.notebook.metadata.get("language_info", {}).get("name", "")
    if language != "python":
        return Failure(
            "internal",
            "ExecutorError",
            f"nbcache_executor_env can only be set in Python kernels; kernel {job.kernel!r} "
            f"runs {language or 'an unknown language'!r}: set the variables on the remote "
            "side instead",
        )
    try:
        msg_id = await _maybe(
            client.kc.execute(_ENV_CODE.format(env), silent=True, store_history=False)
        )
        reply = await client.async_wait_for_reply(msg_id)
    except Exception as exc:  # a kernel that died or never answers: execute_in will say
        handle.connect_error = exc
        return None
    content = reply["content"] if reply else {}
    if content.get("status") != "ok":
        return Failure(
            "internal",
            "ExecutorError",
            "could not set the environment variables of nbcache_executor_env in the kernel: "
            f"{content.get('ename', 'no reply')}: {content.get('evalue', '')}",
        )
    return None


async def _maybe(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


def resolve(future: concurrent.futures.Future[Outcome], outcome: Outcome) -> None:
    """Hand the outcome over (once; a future cancelled meanwhile keeps its state)."""
    if not future.done():
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            future.set_result(outcome)


class LoopThread:
    """An asyncio loop in a daemon thread of its own."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coroutine`` on the loop and wait for its result (or its exception)."""
        return self.submit(coroutine).result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
