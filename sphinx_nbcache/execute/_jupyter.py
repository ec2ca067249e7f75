"""Run notebooks in kernels of a Jupyter server or a kernel gateway (``nbcache_executor =
"jupyter"``).

For each job: (``jupyter server`` only) its page's folder is uploaded through the contents API
into ``nbcache-runs/<run id>/``; a kernel is started there (``POST /api/kernels``); nbclient
runs the notebook over the kernel's WebSocket; the kernel and the folder are deleted. A kernel
gateway has no contents API: its kernels run in the gateway's own working folder, where the
remote side must provide what the notebooks read.

The token (``token=``, else the environment variable ``NBCACHE_JUPYTER_TOKEN``) goes with every
request and the WebSocket. The server and the token are checked once, when the executor is
made: a refused token or an unreachable server is one :class:`ExecutorError`. A server that
goes away later fails the jobs it was running (status ``error``: run again next build) and
those after it, each quickly: every connect and request has a timeout.

Every kernel this executor started is deleted: after its notebook, after a failure, and at
:meth:`JupyterExecutor.shutdown` (also with ``cancel``, i.e. Ctrl-C), including kernels whose
start was still under way.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, ExecutorError
from ..records import Failure
from ._job import Job, Outcome, error_outcome
from ._jupyter_client import JupyterAPI, RemoteKernelManager, ServerError, WebSocketKernelClient
from ._jupyter_contents import delete_folder, shipped_files, upload
from ._kernel import KernelHandle, execute_in
from ._remote import LoopThread, check_env_names, passed_environment, prepare, resolve

__all__ = ["TOKEN_VARIABLE", "JupyterExecutor"]

TOKEN_VARIABLE = "NBCACHE_JUPYTER_TOKEN"
log = logging.getLogger(__name__)


@dataclass
class _Run:
    """One job's remote resources, so that whatever was made is deleted."""

    job: Job
    path: str | None = None  # its folder on the server (contents API), if any
    kernel_id: str | None = None
    handle: KernelHandle | None = None
    client: WebSocketKernelClient | None = None
    local: str | None = None  # local scratch folder (kernel.log for dead-kernel reports)


class JupyterExecutor:
    """Executes jobs in kernels of the Jupyter server or kernel gateway at ``url``."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        jobs: int = 1,
        prestart: int = 1,
        env: Iterable[str] = (),
        runs_folder: str = "nbcache-runs",
        connect_timeout: float = 10.0,
        request_timeout: float = 60.0,
        **_settings: Any,
    ) -> None:
        if not url or not url.startswith(("http://", "https://")):
            raise ConfigError(
                "nbcache_executor_url",
                f"{url!r}: the 'jupyter' executor needs the server's address, e.g. "
                "'http://127.0.0.1:8888' (https too)",
            )
        try:
            self.env = check_env_names(env)
        except ValueError as exc:
            raise ConfigError("nbcache_executor_env", str(exc)) from None
        self.url = url.rstrip("/")
        self.jobs = max(1, jobs)
        self.prestart = max(0, prestart)
        self.runs_folder = runs_folder.strip("/")
        self._token = token or os.environ.get(TOKEN_VARIABLE) or None
        self._api = JupyterAPI(
            self.url, self._token, connect_timeout, request_timeout, max(10, 2 * self.jobs)
        )
        self.connect_timeout = connect_timeout
        self.kernel_names: set[str] = set()
        self.has_contents = False  # a jupyter server; a kernel gateway has no contents API
        self.leaked: list[str] = []  # kernels and folders that could not be deleted
        self._live: set[str] = set()  # ids of kernels started and not yet deleted
        self._folders: set[str] = set()  # run folders made and not yet deleted
        # asyncio primitives bind to the loop that first uses them (Python >= 3.10)
        self._kernels = asyncio.Semaphore(self.jobs + self.prestart)  # started or starting
        self._slots = asyncio.Semaphore(self.jobs)  # executing
        self._job_tasks: set[asyncio.Task[None]] = set()
        self._starting: set[asyncio.Future[str]] = set()
        self._releasing: set[asyncio.Future[None]] = set()
        self._tasks: list[concurrent.futures.Future[None]] = []
        self._outcomes: list[concurrent.futures.Future[Outcome]] = []
        self._closed = False
        self._cancelling = False  # shutdown(cancel=True): no outcome of a cut run is given
        self._thread = LoopThread("nbcache-jupyter")
        try:
            self._thread.run(self._check(), timeout=3 * connect_timeout + request_timeout)
        except BaseException:
            self._thread.run(self._close_api())
            self._thread.stop()
            raise
        atexit.register(self._atexit)

    # -- public -------------------------------------------------------------------------------

    def submit(self, job: Job) -> concurrent.futures.Future[Outcome]:
        if self._closed:
            raise RuntimeError("this executor has been shut down")
        future: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
        self._tasks.append(self._thread.submit(self._run(job, future)))
        self._outcomes.append(future)
        return future

    def shutdown(self, cancel: bool = False) -> None:
        """Wait for (or cancel) every job, then delete every kernel and folder still there."""
        if self._closed:
            return
        self._closed = True
        if cancel:
            self._cancelling = True
            for task in self._tasks:
                task.cancel()
        else:
            concurrent.futures.wait(self._tasks)
        try:
            self._thread.run(self._stop_all(cancel), timeout=self.connect_timeout * 3 + 60)
        except Exception as exc:  # timed out: say what may be left
            log.warning("Jupyter executor: clean-up at %s did not finish: %s", self.url, exc)
        self._thread.stop()
        for future in self._outcomes:
            if not future.done():
                future.cancel()
        atexit.unregister(self._atexit)

    @property
    def kernels_alive(self) -> int:
        """Remote kernels started by this executor and not deleted yet."""
        return len(self._live)

    # -- checks -------------------------------------------------------------------------------

    async def _check(self) -> None:
        try:
            specs = await self._api.call("GET", "api/kernelspecs")
        except ServerError as exc:
            if exc.status in (401, 403):
                given = "the token given" if self._token else "no token (none was given)"
                raise ExecutorError(
                    "jupyter",
                    f"the Jupyter server at {self.url} refused {given} (HTTP {exc.status}); set "
                    f"nbcache_executor_token in conf.py or the environment variable "
                    f"{TOKEN_VARIABLE} to the server's token",
                ) from None
            if exc.status is None:
                raise ExecutorError(
                    "jupyter",
                    f"cannot reach the Jupyter server at {self.url} ({exc}); check "
                    "nbcache_executor_url and that `jupyter server` or `jupyter kernelgateway` "
                    "runs there",
                ) from None
            raise ExecutorError(
                "jupyter",
                f"{self.url} does not answer like a Jupyter server ({exc}); check "
                "nbcache_executor_url (the server's base URL, e.g. http://host:8888/)",
            ) from None
        self.kernel_names = set((specs or {}).get("kernelspecs", {}))
        try:
            await self._api.call("GET", "api/contents", timeout=self.connect_timeout)
        except ServerError:
            return  # a kernel gateway: its kernels run in its own folder
        self.has_contents = True
        try:
            await self._api.call("PUT", f"api/contents/{self.runs_folder}", {"type": "directory"})
        except ServerError as exc:
            raise ExecutorError(
                "jupyter",
                f"cannot make the folder {self.runs_folder!r} for the notebooks' files on the "
                f"Jupyter server at {self.url} ({exc}); give the server a writable root folder",
            ) from None

    async def _close_api(self) -> None:
        self._api.close()

    # -- one job ------------------------------------------------------------------------------

    async def _run(self, job: Job, future: concurrent.futures.Future[Outcome]) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._job_tasks.add(task)
        try:
            resolve(future, await self._run_job(job, future))
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
            raise
        finally:
            self._job_tasks.discard(task)

    async def _run_job(self, job: Job, future: concurrent.futures.Future[Outcome]) -> Outcome:
        async with self._kernels:
            run = _Run(job)
            try:
                failure = await self._start(run)
                if failure is None:
                    assert run.handle is not None
                    env = passed_environment(job, self.env)
                    failure = await prepare(run.handle, job, env)
                if failure is not None:
                    return error_outcome(job, failure)
                assert run.handle is not None
                async with self._slots:
                    outcome = await execute_in(run.handle, job)
                if self._cancelling:  # nbclient turns a cancel into "the kernel died"
                    raise asyncio.CancelledError
                outcome = self._judge(outcome, run)
                resolve(future, outcome)  # known now: the deletions need not delay it
                return outcome
            finally:
                task = asyncio.ensure_future(self._release(run))
                self._releasing.add(task)
                task.add_done_callback(self._releasing.discard)
                await asyncio.shield(task)

    async def _start(self, run: _Run) -> Failure | None:
        job = run.job
        if job.kernel not in self.kernel_names:
            known = ", ".join(sorted(self.kernel_names)) or "none"
            return Failure(
                "no_kernel",
                "NoSuchKernel",
                f"the Jupyter server at {self.url} has no kernel named {job.kernel!r} (it has: "
                f"{known}); install it there or map the name with nb_kernel_rgx_aliases",
            )
        run.local = tempfile.mkdtemp(prefix="nbcache-remote-")
        with open(os.path.join(run.local, "owner"), "w") as owner:  # sweep_orphan_folders()
            owner.write(str(os.getpid()))
        try:
            if self.has_contents:
                run.path = f"{self.runs_folder}/{uuid.uuid4().hex[:16]}"
                self._folders.add(run.path)
                # packing reads and compresses files: not on the loop that drives the kernels
                files = await asyncio.get_running_loop().run_in_executor(None, shipped_files, job)
                await upload(self._api, run.path, files)
            body = {"name": job.kernel, **({"path": run.path} if run.path else {})}
            starting = asyncio.ensure_future(self._create_kernel(body))
            self._starting.add(starting)
            starting.add_done_callback(self._starting.discard)
            run.kernel_id = await asyncio.shield(starting)  # a cancel cannot lose its id
        except ServerError as exc:
            return Failure(
                "no_kernel", "ServerError", f"cannot start a kernel on {self.url}: {exc}"
            )
        with open(os.path.join(run.local, "kernel.log"), "w") as note:
            note.write(f"remote kernel {run.kernel_id} on {self.url}\n")
        run.client = WebSocketKernelClient(self._api, run.kernel_id, self.connect_timeout)
        manager = RemoteKernelManager(run.client, kernel_name=job.kernel)
        run.handle = KernelHandle(manager, run.local, time.perf_counter(), run.path or "")
        return None

    async def _create_kernel(self, body: dict[str, Any]) -> str:
        model = await self._api.call("POST", "api/kernels", body)
        kernel_id = str(model["id"])
        self._live.add(kernel_id)
        return kernel_id

    def _judge(self, outcome: Outcome, run: _Run) -> Outcome:
        """A notebook that stopped because the server went away, or whose kernel could not
        be reached, did not fail: it runs again on the next build (status ``error``)."""
        client, record = run.client, outcome.record
        if client is None or record.status != "failed":
            return outcome
        if client.connection_lost is not None:
            reason = f"lost the connection to the Jupyter server at {self.url} while the "
            reason += f"notebook ran ({client.connection_lost})"
        elif run.handle is not None and run.handle.connect_error is not None:
            reason = f"cannot talk to kernel {run.kernel_id} on {self.url} "
            reason += f"({run.handle.connect_error})"
        else:
            return outcome
        failure = Failure(
            "dead_kernel",
            "ConnectionLost",
            f"{reason}; it runs again on the next build",
            cell_index=record.failure.cell_index if record.failure else None,
        )
        return Outcome(record._replace(status="error", failure=failure), None)

    # -- clean-up -----------------------------------------------------------------------------

    async def _release(self, run: _Run) -> None:
        if run.client is not None:
            run.client.stop_channels()
        if run.kernel_id is not None:
            await self._delete_kernel(run.kernel_id)
        if run.path is not None:
            await self._delete_folder(run.path)
        if run.local is not None:
            shutil.rmtree(run.local, ignore_errors=True)

    async def _delete_kernel(self, kernel_id: str) -> None:
        # A kernel that died is restarted by the server's own restarter, and a shutdown that
        # meets that restart fails (HTTP 500): asked again once the restart is over, it works.
        # The server gives no event for that: retry with growing pauses, ~15 s in all.
        pause = 0.25
        while True:
            try:
                await self._api.call("DELETE", f"api/kernels/{kernel_id}")
                break
            except ServerError as exc:
                if exc.status == 404:  # gone already (the server was restarted)
                    break
                if exc.status is not None and exc.status >= 500 and pause <= 8:
                    await asyncio.sleep(pause)
                    pause *= 2
                    continue
                self.leaked.append(f"kernel {kernel_id}")
                log.warning("cannot delete kernel %s on %s: %s", kernel_id, self.url, exc)
                break
        self._live.discard(kernel_id)

    async def _delete_folder(self, path: str) -> None:
        try:
            await delete_folder(self._api, path)
        except ServerError as exc:
            self.leaked.append(f"folder {path}")
            log.warning("cannot delete folder %s on %s: %s", path, self.url, exc)
        self._folders.discard(path)

    async def _stop_all(self, cancel: bool) -> None:
        """Cancel (or wait for) the jobs, then delete every kernel and folder left, also
        those of kernels whose start was under way."""
        jobs = list(self._job_tasks)
        if cancel:
            for task in jobs:
                task.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        await asyncio.gather(*self._starting, *self._releasing, return_exceptions=True)
        await asyncio.gather(
            *(self._delete_kernel(k) for k in list(self._live)),
            *(self._delete_folder(f) for f in list(self._folders)),
            return_exceptions=True,
        )
        self._api.close()

    def _atexit(self) -> None:
        self.shutdown(cancel=True)
