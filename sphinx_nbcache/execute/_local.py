"""Run many notebooks at once on this machine, each in its own fresh kernel.

One background thread runs an asyncio loop that drives every kernel (the kernels are separate
processes, so this thread only moves messages). Two limits apply:

* at most ``jobs`` notebooks execute at the same time;
* at most ``jobs + prestart`` kernels are starting or running at the same time: while
  ``jobs`` notebooks run, up to ``prestart`` more kernels are already starting for the next
  notebooks in the queue, hiding the ~1 s a kernel takes to start. A kernel whose notebook is
  done gives its place up at once and exits on its own (a polite shutdown takes ~0.2 s); at
  most ``jobs`` kernels are exiting at a time, so no more than ``2 * jobs + prestart`` kernel
  processes ever exist (``2 * max_jobs + prestart`` with growth, below). A kernel is never
  reused for a second notebook.

With ``max_jobs > jobs`` (``nbcache_jobs = 0``), both limits grow by one at a time while the
machine's CPUs sit idle, the executing kernels leave their CPU unused and notebooks wait, up to
``max_jobs`` executing, and shrink back to ``jobs`` when the CPUs are busy (``_autoscale``):
notebooks waiting on I/O run more at once, notebooks that compute do not. While the CPUs sit
idle and places to execute wait for kernels still coming up (short notebooks), more kernels
start ahead instead, up to ``max_jobs`` more (``Autoscale.ahead``).

Each kernel's numeric libraries get ``cpus // jobs`` threads, or more when fewer notebooks
than ``jobs`` are left when it starts (``kernel_threads``, see ``_autoscale.thread_caps``),
unless the build's environment decides; forked kernels too (the warm process loads none of
those libraries, and the variables reach the child before its first cell).

Jobs start in the order they were submitted. A job's future resolves as soon as its outcome
is known; its kernel exits in the background (:meth:`LocalExecutor.shutdown` waits for it).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from ..records import Failure
from ._autoscale import (
    PERIOD,
    Autoscale,
    Machine,
    Places,
    cpu_seconds,
    largest_memory,
    read_machine,
    thread_caps,
)
from ._forkserver import ForkServers, fork_enabled
from ._job import Job, Outcome, error_outcome
from ._kernel import (
    KernelHandle,
    connect,
    execute_in,
    start_kernel,
    stop_kernel,
    sweep_orphan_folders,
)

__all__ = ["LocalExecutor"]


class LocalExecutor:
    """Executes jobs in fresh local kernels, ``jobs`` at a time."""

    def __init__(
        self,
        jobs: int = 1,
        prestart: int = 1,
        fork_kernels: bool = True,
        max_jobs: int | None = None,
        kernel_threads: int | None = None,
        machine: Callable[[], Machine] | None = None,
        **_settings: Any,
    ) -> None:
        self.jobs = max(1, jobs)
        #: how busy the machine is now (default: psutil's readings; a test gives its own)
        self.machine = machine or read_machine
        #: threads of each kernel's BLAS / OpenMP pools (None: shared, see _kernel_env)
        self.kernel_threads = kernel_threads
        #: places added while the CPUs are idle, up to max_jobs (None: jobs, a fixed number)
        self.autoscale = Autoscale(self.jobs, max_jobs or self.jobs)
        self.prestart = max(0, prestart)
        #: warm processes that fork kernels (None: every kernel starts the usual way)
        self.forks = ForkServers() if fork_enabled(fork_kernels) else None
        self._kernel_names: set[str] = set()  # of every job submitted
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._handles: set[KernelHandle] = set()
        #: kernels executing a notebook: when, and how much CPU time they had, last looked at
        self._executing: dict[KernelHandle, tuple[float, float]] = {}
        self._running = 0
        self.peak_kernels = 0  # most kernels alive at once (bounded by jobs + prestart)
        self.peak_processes = 0  # ... counting those exiting (bounded by 2 * jobs + prestart)
        self.peak_running = 0  # most notebooks executing at once (bounded by max_jobs)
        self._waiting = 0  # jobs submitted that have no place to execute yet
        self.lent = 0  # times a waiting notebook lent its place to the queue
        self.added_ahead = 0  # kernel places added now for kernels started ahead
        self.peak_ahead = 0  # ... the most at once
        self._scaling: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Future[None]] = set()
        self._tasks: list[concurrent.futures.Future[None]] = []  # one per job, kernel exit too
        self._outcomes: list[concurrent.futures.Future[Outcome]] = []  # what submit returned
        self._kernels: Places | None = None
        self._slots: Places | None = None
        self._closed = False
        #: told each job's key when it takes a place to execute (in the executor's thread)
        self.on_start: Callable[[str], object] | None = None

    # -- public -------------------------------------------------------------------------------

    def submit(self, job: Job) -> concurrent.futures.Future[Outcome]:
        """Queue a job; the future gives its Outcome (it never raises for notebook errors)."""
        if self._closed:
            raise RuntimeError("this executor has been shut down")
        loop = self._ensure_loop()
        self._kernel_names.add(job.kernel)
        future: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
        self._tasks.append(asyncio.run_coroutine_threadsafe(self._run(job, future), loop))
        self._outcomes.append(future)
        return future

    def shutdown(self, cancel: bool = False) -> None:
        """Wait for (or cancel) every job, stop every kernel, stop the loop thread."""
        if self._closed:
            return
        self._closed = True
        if self._loop is None:
            return
        if cancel:
            for task in self._tasks:
                task.cancel()
        else:
            concurrent.futures.wait(self._tasks)
        stop = asyncio.run_coroutine_threadsafe(self._stop_all(), self._loop)
        with contextlib.suppress(Exception):
            stop.result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=30)
        for future in self._outcomes:  # cancelled before they started: never resolved
            if not future.done():
                future.cancel()
        atexit.unregister(self._atexit)

    @property
    def places(self) -> int:
        """How many notebooks may execute at once now (grows while the CPUs sit idle)."""
        return self._slots.size if self._slots is not None else self.jobs

    @property
    def kernels_alive(self) -> int:
        return len(self._handles)

    def forks_every_kernel(self, timeout: float = 60.0) -> bool:
        """True if every kernel of the jobs submitted so far is (and will be) forked from a
        running warm process: this process then starts no other process while they run, so it
        may fork itself safely (``sphinx-build -j`` readers). Waits for the warm processes."""
        forks, loop = self.forks, self._loop
        if forks is None or loop is None or len(self._tasks) <= self.jobs:
            return False  # too few notebooks to fork them: kernels start the usual way

        async def check() -> bool:
            from ._kernel import forkable

            for name in sorted(self._kernel_names):
                server = forkable(name, forks)
                if server is None or not await server.begin():
                    return False
            return True

        try:
            return asyncio.run_coroutine_threadsafe(check(), loop).result(timeout)
        except Exception:
            return False

    # -- internals ----------------------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            sweep_orphan_folders()
            self._thread = threading.Thread(
                target=self._serve, name="nbcache-executor", daemon=True
            )
            self._thread.start()
            self._ready.wait()
            atexit.register(self._atexit)
        assert self._loop is not None
        return self._loop

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._kernels = Places(self.jobs + self.prestart)
        self._slots = Places(self.jobs)
        self._loop = loop
        if self.autoscale.enabled:
            self._scaling = loop.create_task(self._scale())
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _run(self, job: Job, future: concurrent.futures.Future[Outcome]) -> None:
        stopping: list[asyncio.Future[None]] = []
        try:
            outcome = await self._run_in_kernel(job, stopping, future)
            _resolve(future, outcome)
        except BaseException as exc:
            if not future.done():
                if isinstance(exc, asyncio.CancelledError | concurrent.futures.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)
            raise
        finally:
            # the kernel's permit is free already: the next kernel starts while this one exits
            for task in stopping:
                await asyncio.shield(task)

    async def _run_in_kernel(
        self,
        job: Job,
        stopping: list[asyncio.Future[None]],
        future: concurrent.futures.Future[Outcome],
    ) -> Outcome:
        assert self._kernels is not None and self._slots is not None
        self._waiting += 1  # until it has a place to execute (or never will)
        waiting = True
        try:
            async with self._kernels:
                # forking pays once more notebooks than workers are queued (a warm process
                # costs what one kernel start costs)
                forks = self.forks if len(self._tasks) > self.jobs else None
                started = await start_kernel(job, forks, self._kernel_env())
                if isinstance(started, Failure):
                    return error_outcome(job, started)
                self._handles.add(started)
                self.peak_kernels = max(self.peak_kernels, len(self._handles))
                alive = len(self._handles) + len(self._stopping)
                self.peak_processes = max(self.peak_processes, alive)
                try:
                    await connect(started, job)  # kernel answers before the job takes a slot
                    started.on_wait = on_wait = self._lender()
                    async with self._slots:
                        self._waiting -= 1
                        waiting = False
                        self._running += 1
                        self.peak_running = max(self.peak_running, self._running)
                        if self._scaling is not None:
                            now = (time.monotonic(), cpu_seconds(_pid(started)))
                            self._executing[started] = now
                        if self.on_start is not None:
                            self.on_start(job.key)
                        try:
                            outcome = await execute_in(started, job)
                        finally:
                            on_wait(False)  # a place still lent is taken back
                            self._running -= 1
                            self._executing.pop(started, None)
                    _resolve(future, outcome)  # known now: the kernel's exit need not delay it
                    return outcome
                finally:
                    # a task of its own that cancelling this job cannot interrupt; shutdown
                    # waits for it
                    task = asyncio.ensure_future(stop_kernel(started))
                    self._stopping.add(task)
                    task.add_done_callback(self._stopping.discard)
                    self._handles.discard(started)
                    stopping.append(task)
                    if len(self._stopping) > self._slots.size:  # enough exiting: keep the place
                        await asyncio.shield(task)
        finally:
            if waiting:
                self._waiting -= 1

    def _lender(self) -> Callable[[bool], None]:
        """What a kernel's wait signals do: while its notebook waits for another notebook's
        result, its execution slot and its kernel place go to the notebooks queued behind it
        (which may be the one it waits for), so no wait can hold up what it waits for."""
        lent = [False]

        def on_wait(waiting: bool) -> None:
            assert self._kernels is not None and self._slots is not None
            if waiting and not lent[0]:
                self._slots.lend()
                self._kernels.lend()
                self._running -= 1
                self.lent += 1
            elif not waiting and lent[0]:
                self._slots.take_back()
                self._kernels.take_back()
                self._running += 1
            lent[0] = waiting

        return on_wait

    async def _scale(self) -> None:
        """Every PERIOD seconds: places added while notebooks wait, the CPUs sit idle and the
        executing kernels leave theirs unused, one less (down to ``jobs``) when the CPUs are
        busy; kernels started further ahead while places wait for them (see ``_autoscale``)."""
        assert self._kernels is not None and self._slots is not None
        self.machine()  # the first reading starts the count
        looked = time.monotonic()
        while True:
            await asyncio.sleep(PERIOD)
            try:
                cpu, available, total = self.machine()
                largest = largest_memory(map(_pid, self._handles)) if self._waiting else 0
                available -= largest  # what remains once one more kernel as big as the biggest
            except Exception:  # the machine cannot be read (no /proc, ...): places stay
                return
            size = self._slots.size
            ahead = self.autoscale.ahead(
                self.added_ahead,
                cpu,
                self._waiting,
                size - self._running,
                available,
                total,
            )
            if ahead > 0:
                self._kernels.grow()
            elif ahead < 0:
                self._kernels.shrink()
            self.added_ahead += ahead
            self.peak_ahead = max(self.peak_ahead, self.added_ahead)
            change = self.autoscale.change(
                size,
                cpu,
                self._waiting,
                available,
                total,
                kernels_idle=self._kernels_idle(time.monotonic() - looked),
                kernel_memory=largest,
            )
            looked = time.monotonic()
            for _ in range(change):
                self._slots.grow()
                self._kernels.grow()
            if change < 0:
                self._slots.shrink()
                self._kernels.shrink()

    def _kernel_env(self) -> dict[str, str]:
        """The thread caps of a kernel starting now: the CPUs shared by the notebooks that
        execute beside it, ``jobs``, or fewer when fewer are left (a page edited alone gets
        every CPU)."""
        left = sum(1 for future in self._outcomes if not future.done())
        return thread_caps(self.kernel_threads, min(self.jobs, max(1, left)), os.environ)

    def _kernels_idle(self, elapsed: float) -> float:
        """CPUs' worth of time the executing kernels spent off the CPU over the last
        ``elapsed`` seconds: the time each executed minus the CPU time it used (its threads
        included). A kernel whose CPU time cannot be read counts as busy."""
        now, idle = time.monotonic(), 0.0
        for handle, (since, cpu) in list(self._executing.items()):
            used = cpu_seconds(_pid(handle))
            if used >= 0 and cpu >= 0:
                idle += max(0.0, (now - since) - (used - cpu))
            self._executing[handle] = (now, used)
        return idle / max(elapsed, 1e-3)

    async def _stop_all(self) -> None:
        busy = {asyncio.current_task(), *self._stopping}
        tasks = [t for t in asyncio.all_tasks() if t not in busy]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        handles, self._handles = list(self._handles), set()
        await asyncio.gather(
            *(stop_kernel(h) for h in handles), *self._stopping, return_exceptions=True
        )
        if self.forks is not None:
            await self.forks.close()

    def _atexit(self) -> None:
        self.shutdown(cancel=True)


def _pid(handle: KernelHandle) -> int | None:
    """The kernel's process id, when its provisioner knows it (for psutil's readings)."""
    pid = getattr(handle.manager.provisioner, "pid", None)
    return pid if isinstance(pid, int) else None


def _resolve(future: concurrent.futures.Future[Outcome], outcome: Outcome) -> None:
    """Hand the outcome over (once; a future cancelled meanwhile keeps its state)."""
    if not future.done():
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            future.set_result(outcome)
