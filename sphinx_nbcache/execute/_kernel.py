"""Run one notebook in one fresh kernel (nbclient, asyncio).

Kernels talk over IPC sockets in a private temporary folder: no TCP ports to race for when
many kernels start at once, and no "running over TCP without encryption" warning in the log.
Every failure is caught here and turned into a :class:`~sphinx_nbcache.records.Failure`: a
cell error, a timeout, a dead kernel, a kernel that is not installed. Nothing escapes as an
exception except cancellation.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import NoSuchKernel
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from ..notebooks.merge import outputs_of
from ..records import Failure, Record
from . import _trace
from ._client import BoundedClient
from ._environ import kernel_environment
from ._expressions import Evaluator
from ._figures import collect, figures, usage_of
from ._forkserver import ForkProvisioner, ForkServer, ForkServers
from ._job import Job, Outcome, error_outcome

__all__ = ["KernelHandle", "connect", "execute_in", "execute_job", "start_kernel", "stop_kernel"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: jupyter_client logs a missing kernel with a traceback; we report it as a Failure instead
_QUIET = logging.getLogger("sphinx_nbcache.kernel")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False
_SHUTDOWN_WAIT = 3.0


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


class KernelHandle:
    """A started kernel plus the private folder its sockets (and maybe its cwd) live in."""

    def __init__(self, manager: AsyncKernelManager, folder: str, started: float, cwd: str) -> None:
        self.manager = manager
        self.folder = folder
        self.started = started
        self.cwd = cwd  # the kernel's working directory
        self.notebook: nbformat.NotebookNode | None = None  # set by connect()
        self.client: BoundedClient | None = None
        self.connect_error: Exception | None = None
        self.traced = False  # the dependency tracer runs in the kernel
        self.untraced: str | None = None  # why not, in a Python kernel
        #: told True when the notebook starts waiting for another's result, False when it
        #: stops (the executor lends the kernel's place meanwhile; None: nobody listens)
        self.on_wait: Callable[[bool], None] | None = None
        #: (CPU seconds, peak bytes) the kernel had used when its notebook was ready to start
        self.usage: tuple[float, int] | None = None


async def start_kernel(
    job: Job, forks: ForkServers | None = None, env: Mapping[str, str] | None = None
) -> KernelHandle | Failure:
    """Start the job's kernel (forked by one of ``forks`` when it can be), with ``env`` added
    to the build's environment (thread caps); a :class:`Failure` if that is impossible."""
    started = time.perf_counter()
    folder = tempfile.mkdtemp(prefix=_FOLDER_PREFIX)
    with open(os.path.join(folder, "owner"), "w") as owner:  # for sweep_orphan_folders()
        owner.write(str(os.getpid()))
    local = job.local_folder()
    cwd = str(local) if local is not None else os.path.join(folder, "cwd")
    os.makedirs(cwd, exist_ok=True)
    manager = AsyncKernelManager(kernel_name=job.kernel, transport="ipc", log=_QUIET)
    manager.ip = os.path.join(folder, "k")
    manager.shutdown_wait_time = _SHUTDOWN_WAIT
    if forks is not None:
        _fork_through(manager, forks)
    # the kernel's own stdout/stderr (C-level prints, shutdown noise) go to a file, not into
    # the build log; its tail explains a dead kernel
    with open(os.path.join(folder, "kernel.log"), "wb") as log:
        try:
            await manager.start_kernel(
                cwd=cwd,
                stdout=log,
                stderr=log,
                extra_arguments=_extra_arguments(manager),
                env=kernel_environment(env, (name for name, _ in job.env)),
            )
        except NoSuchKernel:
            shutil.rmtree(folder, ignore_errors=True)
            return Failure("no_kernel", "NoSuchKernel", missing_kernel_hint(job.kernel))
        except Exception as exc:  # a broken kernelspec, a launcher that fails, ...
            shutil.rmtree(folder, ignore_errors=True)
            return Failure("no_kernel", type(exc).__name__, f"the kernel failed to start: {exc}")
    return KernelHandle(manager, folder, started, cwd)


def forkable(name: str, forks: ForkServers) -> ForkServer | None:
    """The warm process that would fork kernel ``name`` in this environment, if any."""
    manager = AsyncKernelManager(kernel_name=name, log=_QUIET)
    try:
        spec = manager.kernel_spec
    except Exception:
        return None
    if spec is None or spec.env:  # a spec's own variables: another environment
        return None
    server = forks.for_spec(list(spec.argv))
    return server if server is not None and server.usable(kernel_environment()) else None


def _fork_through(manager: AsyncKernelManager, forks: ForkServers) -> None:
    """Give the manager a provisioner that forks the kernel, if its spec allows it."""
    try:
        spec = manager.kernel_spec
    except Exception:  # no such kernel: start_kernel says so
        return
    server = forks.for_spec(list(spec.argv)) if spec is not None else None
    if server is None:
        return
    manager.kernel_id = str(uuid.uuid4())
    provisioner = ForkProvisioner(kernel_id=manager.kernel_id, kernel_spec=spec, parent=manager)
    provisioner.server = server
    manager.provisioner = provisioner


def missing_kernel_hint(name: str) -> str:
    """What to do when no kernel of this name is installed."""
    if name.startswith(("python", "ipython")):
        install = (
            f"install it into the Python that should run the notebooks (`python -m ipykernel "
            f"install --sys-prefix --name {name}`)"
        )
    else:
        install = (
            f"install the {name!r} kernel where the docs are built (`jupyter kernelspec list` "
            "shows the kernels installed)"
        )
    return (
        f"no kernel named {name!r} is installed; {install}, or map the name to an installed "
        "kernel with nb_kernel_rgx_aliases"
    )


def _extra_arguments(manager: AsyncKernelManager) -> list[str]:
    """ipykernel: keep IPython's history in memory (as nbclient does). Saves ~0.15 s a start
    and keeps concurrent kernels from contending for the user's history database."""
    return ["--HistoryManager.hist_file=:memory:"] if manager.ipykernel else []


_FOLDER_PREFIX = "nbcache-"


def sweep_orphan_folders() -> int:
    """Remove the kernel folders of builds that died (their owner process is gone).

    A build killed outright cannot remove its kernels' socket folders; the next one does."""
    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{_FOLDER_PREFIX}*"):
        try:
            pid = int((folder / "owner").read_text())
        except (OSError, ValueError):
            continue  # not one of ours, or still being created
        if pid == os.getpid() or _alive(pid):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def kernel_log_tail(handle: KernelHandle, lines: int = 15) -> str:
    """The last lines the kernel process printed itself (empty if none)."""
    try:
        with open(os.path.join(handle.folder, "kernel.log"), "rb") as log:
            text = log.read()[-8192:].decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


async def stop_kernel(handle: KernelHandle) -> None:
    """Shut a kernel down (politely, then by force), end what it left running, remove its folder.

    jupyter_client starts each kernel in a session of its own, so the kernel's process group
    holds exactly the processes its cells started; any still running once the kernel is gone
    (a server started with ``subprocess.Popen``, say) are killed with it.
    """
    group = getattr(getattr(handle.manager, "provisioner", None), "pgid", None)
    try:
        if await handle.manager.is_alive():
            await handle.manager.shutdown_kernel(now=False)
    except Exception:
        with suppress(Exception):
            await handle.manager.shutdown_kernel(now=True)
    finally:
        with suppress(Exception):
            await _maybe(handle.manager.cleanup_resources())
        if isinstance(group, int) and group > 1 and group != os.getpgrp():
            # the group id stays reserved while any member lives: this cannot hit a stranger
            with suppress(OSError):
                os.killpg(group, signal.SIGKILL)
        shutil.rmtree(handle.folder, ignore_errors=True)


async def connect(handle: KernelHandle, job: Job) -> None:
    """Open the job's client on a started kernel and wait until the kernel answers.

    Part of starting a kernel: the local executor does it before the job takes an execution
    slot, so the slot is spent on cells only. An error is kept for :func:`execute_in`.
    """
    notebook = nbformat.from_dict(job.notebook)
    client = BoundedClient(
        notebook,
        km=handle.manager,
        timeout=int(job.timeout) if job.timeout else None,
        allow_errors=job.allow_errors,
        kernel_name=job.kernel,
        resources={"metadata": {"path": handle.cwd}},
        record_timing=False,
    )
    client.output_limit = job.output_limit
    client.on_wait = lambda waiting: handle.on_wait(waiting) if handle.on_wait else None
    handle.notebook, handle.client = notebook, client
    try:
        await client.async_start_new_kernel_client()
        assert client.kc is not None
        reply = await client.async_wait_for_reply(await _maybe(client.kc.kernel_info()))
        if reply and "language_info" in reply["content"]:
            notebook.metadata["language_info"] = reply["content"]["language_info"]
        if notebook.metadata.get("language_info", {}).get("name") == "python":
            root = job.files.root if job.files is not None and not job.in_temp else handle.cwd
            try:  # without the tracer a run records less (and says so); it still runs
                handle.untraced = await _trace.install(client, root, job.environment, job.store)
            except Exception as exc:
                handle.untraced = f"{type(exc).__name__}: {exc}"
            handle.traced = handle.untraced is None
            handle.usage = await usage_of(client)  # idle until its first cell: no CPU since
    except Exception as exc:  # reported by execute_in, as a failure of this job
        handle.connect_error = exc


async def execute_in(handle: KernelHandle, job: Job) -> Outcome:
    """Execute ``job`` in the started kernel ``handle``; always returns an Outcome."""
    if handle.client is None:
        await connect(handle, job)
    notebook, client = handle.notebook, handle.client
    assert notebook is not None and client is not None
    code_indices = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    cell_times: list[float | None] = [None] * len(code_indices)
    failure: Failure | None = None
    report: dict[str, Any] | None = None
    expressions = Evaluator(job.expressions)  # {eval}: evaluated between the cells
    usage: tuple[float, int] | None = None  # the kernel's figures after its last cell
    first = last = 0.0  # the page's time: its first cell's execution to its last reply
    try:
        if handle.connect_error is not None:
            raise handle.connect_error
        await expressions.upto(client, 0)
        for position, index in enumerate(code_indices):
            cell = notebook.cells[index]
            begin = time.perf_counter()
            first = first or begin
            try:
                await client.async_execute_cell(
                    cell, index, execution_count=client.code_cells_executed + 1
                )
            finally:
                last = time.perf_counter()
                cell_times[position] = round(last - begin, 4)
            await expressions.upto(client, position + 1)
        client.set_widgets_metadata()
        report, usage = await collect(client, handle.traced, handle.usage)
    except CellTimeoutError as exc:
        failure = Failure(
            "timeout",
            "CellTimeoutError",
            f"a cell did not finish within {job.timeout:g} s; raise nb_execution_timeout or "
            "the notebook's metadata.execution.timeout",
            strip_ansi(str(exc)),
            _failed_cell(client, code_indices, cell_times),
        )
    except DeadKernelError as exc:
        failure = Failure(
            "dead_kernel",
            "DeadKernelError",
            f"the kernel died while running a cell ({exc})",
            kernel_log_tail(handle),
            _failed_cell(client, code_indices, cell_times),
        )
    except CellExecutionError as exc:
        failed = _failed_cell(client, code_indices, cell_times)
        failure = Failure(
            "cell", exc.ename, exc.evalue, _kernel_traceback(notebook, failed), failed
        )
        # a failure depends on what it read too
        report, usage = await collect(client, handle.traced, handle.usage)
    except Exception as exc:  # a broken channel, a kernel that never answers, ...
        failure = Failure(
            "dead_kernel", type(exc).__name__, str(exc) or "the kernel stopped answering"
        )
    finally:
        if client.kc is not None:
            with suppress(Exception):
                client.kc.stop_channels()
    _note_truncation(client, notebook)
    if failure is not None and failure.cell_index is not None:
        failure = failure._replace(code_cell=sum(1 for t in cell_times if t is not None))
    stopped = f"the run stopped: {failure.summary()}" if failure is not None else None
    outputs = outputs_of(notebook)._replace(expressions=expressions.results(stopped))
    dependencies, artifacts = _trace.recorded(job, report, outputs.cells, handle.untraced)
    cpu_time, peak_memory = figures(handle.usage, usage)
    return Outcome(
        Record(
            key=job.key,
            status="ok" if failure is None else "failed",
            blob=None,
            runtime=round(last - first, 4),
            cell_times=tuple(cell_times),
            kernel=job.kernel,
            timeout=job.timeout,
            failure=failure,
            page=job.page,
            allow_errors=job.allow_errors,
            raised=_trace.raised(notebook),
            created=time.time(),
            dependencies=dependencies,
            cpu_time=cpu_time,
            peak_memory=peak_memory,
        ),
        outputs,
        artifacts,
    )


async def execute_job(job: Job) -> Outcome:
    """Start a kernel, execute, stop it: the whole life of one job."""
    handle = await start_kernel(job)
    if isinstance(handle, Failure):
        return error_outcome(job, handle)
    try:
        return await execute_in(handle, job)
    finally:
        await stop_kernel(handle)


async def _maybe(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


def _failed_cell(
    client: BoundedClient, code_indices: list[int], cell_times: list[float | None]
) -> int | None:
    """The index of the cell that was running when execution stopped."""
    done = [i for i, t in zip(code_indices, cell_times, strict=True) if t is not None]
    return done[-1] if done else None


def _kernel_traceback(notebook: nbformat.NotebookNode, index: int | None) -> str:
    if index is None:
        return ""
    for output in notebook.cells[index].get("outputs", ()):
        if output.get("output_type") == "error":
            return strip_ansi("\n".join(output.get("traceback", ())))
    return ""


def _note_truncation(client: BoundedClient, notebook: nbformat.NotebookNode) -> None:
    for index, dropped in client.dropped.items():
        notebook.cells[index].outputs.append(
            nbformat.v4.new_output(
                "stream",
                name="stderr",
                text=f"\n[sphinx-nbcache: {dropped:,} more characters of output were cut; "
                f"the limit is nbcache_output_limit = {client.output_limit:,}]\n",
            )
        )
