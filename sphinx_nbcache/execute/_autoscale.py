"""How many notebooks run at once on this machine, more while its CPUs sit idle, and how many
threads each kernel's numeric libraries may start.

Notebooks that wait on the network, a database or ``time.sleep`` leave the CPUs idle; running
more of them at once then shortens a build without slowing any of them. :class:`Autoscale`
is told, every :data:`PERIOD` seconds while notebooks wait for a place, how much of the whole
machine's CPU time went unused, how much of their time the executing kernels themselves spent
off the CPU, and how much memory would be left with one more kernel (as big as the biggest one
running); it raises the number of places by one (up to ``max_jobs``) when at least
:data:`IDLE_TO_GROW` CPUs' worth sat idle *and* the executing kernels left at least as much
unused (they wait on something: a kernel busy computing is not helped by another one beside
it, even if a CPU is free for a moment between two pages), and that memory is at least both
:data:`MEMORY_TO_GROW` and a fifth of the machine's (:data:`MEMORY_SHARE_TO_KEEP`); it lowers
it by one (never below ``jobs``) when the CPUs are busy again. A fixed ``nbcache_jobs`` turns
it off (``max_jobs == jobs``).

Short notebooks are bound by their kernels' start-up instead (a forked kernel takes a few
hundred milliseconds to come up, most of it waiting, and executes a one-cell page in tens):
places to execute sit free while the next kernels are still coming up. Then
:meth:`Autoscale.ahead` starts one more kernel ahead of need (up to ``max_jobs`` more), under
the same conditions of idle CPUs and memory, without adding a place to execute: no more
notebooks execute at once, so notebooks that compute are not slowed; and one fewer again when
the CPUs are busy.

:func:`thread_caps` gives the variables that cap the thread pools of BLAS (under NumPy), OpenMP,
numexpr and Numba in each local kernel so that the kernels executing at once share the
CPUs instead of each starting one thread per CPU (``cpus // jobs`` threads each, more when
fewer notebooks are left; the places added while kernels wait do not change it: see the
function).

:class:`Places` is the asyncio limit whose size it changes: a semaphore (first come, first
served) that can grow at once and shrink as places are given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "IDLE_TO_GROW",
    "IDLE_TO_SHRINK",
    "MEMORY_SHARE_TO_KEEP",
    "MEMORY_TO_GROW",
    "PERIOD",
    "THREAD_VARIABLES",
    "Autoscale",
    "Machine",
    "Places",
    "cpu_seconds",
    "largest_memory",
    "read_machine",
    "thread_caps",
    "usable_cpus",
]

PERIOD = 0.5  # seconds between two looks at the machine
IDLE_TO_GROW = 0.75  # CPUs' worth idle over the last period to add a place
IDLE_TO_SHRINK = 0.25  # ... below which a place added earlier is taken back
MEMORY_TO_GROW = 1 << 30  # bytes left available with one more kernel, to add a place
MEMORY_SHARE_TO_KEEP = 0.2  # ... and at least this share of the machine's memory


@dataclass(frozen=True)
class Autoscale:
    """Decides the change of the number of places from what the machine did over the last
    period."""

    jobs: int  # the number of places to begin with, and the least
    max_jobs: int  # the most (no more than jobs: a fixed number)
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)

    @property
    def enabled(self) -> bool:
        return self.max_jobs > self.jobs

    def decide(
        self,
        size: int,
        cpu_percent: float,
        waiting: int,
        available_memory: int,
        total_memory: int = 0,
        *,
        kernels_idle: float,
    ) -> int:
        """+1, -1 or 0: the change of ``size``, the number of places now. ``cpu_percent`` is
        the whole machine's use over the last period (100 = every CPU busy), ``waiting`` the
        notebooks queued for a place, ``available_memory`` the bytes left with one more
        kernel, ``total_memory`` the machine's, ``kernels_idle`` the CPUs' worth of time the
        executing kernels spent off the CPU over the period (the time they executed minus the
        CPU time they used: ~1 per kernel that sleeps, ~0 per kernel that computes)."""
        idle = (100.0 - cpu_percent) / 100.0 * self.cpus
        if (
            waiting > 0
            and size < self.max_jobs
            and idle >= IDLE_TO_GROW
            and kernels_idle >= IDLE_TO_GROW
            and available_memory >= max(MEMORY_TO_GROW, MEMORY_SHARE_TO_KEEP * total_memory)
        ):
            return 1
        if size > self.jobs and idle < IDLE_TO_SHRINK:
            return -1
        return 0

    def change(
        self,
        size: int,
        cpu_percent: float,
        waiting: int,
        available_memory: int,
        total_memory: int = 0,
        *,
        kernels_idle: float,
        kernel_memory: int = 0,
    ) -> int:
        """The change of ``size`` over one period: :meth:`decide`, asked again after each
        place it adds as if the kernel given it took :data:`IDLE_TO_GROW` of a CPU and
        ``kernel_memory`` bytes (the biggest running), so that kernels waiting on I/O fill
        idle CPUs within a period or two instead of one place a period."""
        step = total = self.decide(
            size, cpu_percent, waiting, available_memory, total_memory, kernels_idle=kernels_idle
        )
        while step > 0:
            size, waiting = size + 1, waiting - 1
            cpu_percent += IDLE_TO_GROW / self.cpus * 100.0
            kernels_idle -= IDLE_TO_GROW
            available_memory -= kernel_memory
            step = max(0, self.decide(size, cpu_percent, waiting, available_memory,
                                      total_memory, kernels_idle=kernels_idle))  # fmt: skip
            total += step
        return total

    def ahead(
        self,
        added: int,
        cpu_percent: float,
        waiting: int,
        free: int,
        available_memory: int,
        total_memory: int = 0,
    ) -> int:
        """+1, -1 or 0: the change of ``added``, the kernels started ahead of need beyond
        ``prestart``; ``free`` is the number of places to execute that no notebook holds
        (their next kernels are still coming up), the rest as in :meth:`decide`."""
        idle = (100.0 - cpu_percent) / 100.0 * self.cpus
        if (
            waiting > 0
            and free > 0
            and added < self.max_jobs
            and idle >= IDLE_TO_GROW
            and available_memory >= max(MEMORY_TO_GROW, MEMORY_SHARE_TO_KEEP * total_memory)
        ):
            return 1
        if added > 0 and idle < IDLE_TO_SHRINK:
            return -1
        return 0


class Places:
    """A first-come-first-served limit of ``size`` holders whose size may change: growing
    frees a place at once, shrinking takes the next place given back."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._semaphore = asyncio.Semaphore(size)
        self._owed = 0  # places to keep when given back (shrinks not yet carried out)

    async def __aenter__(self) -> None:
        await self._semaphore.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        if self._owed:
            self._owed -= 1
        else:
            self._semaphore.release()

    def grow(self) -> None:
        self.size += 1
        if self._owed:
            self._owed -= 1
        else:
            self._semaphore.release()

    def shrink(self) -> None:
        self.size -= 1
        self._owed += 1

    def lend(self) -> None:
        """A holder lends its place while it waits for another holder's work (``secede``):
        the next in line may take it."""
        if self._owed:
            self._owed -= 1
        else:
            self._semaphore.release()

    def take_back(self) -> None:
        """The holder that lent its place goes on (``rejoin``), at once, over the limit if
        need be: the next place given back is kept instead of freed."""
        self._owed += 1


#: The variables that size the thread pools of the numeric libraries a kernel may load:
#: OpenMP (and libraries built on it), OpenBLAS, MKL, BLIS, Apple's Accelerate, numexpr,
#: Numba, and Rust's rayon (polars and others). Each is read once, when its library loads.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "RAYON_NUM_THREADS",
)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the platform tells, e.g. in a
    container or under ``taskset``), at least 1."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        try:
            return max(1, len(affinity(0)))
        except OSError:
            pass
    return os.cpu_count() or 1


def thread_caps(
    setting: int | None,
    at_once: int,
    environ: Mapping[str, str],
    cpus: int | None = None,
) -> dict[str, str]:
    """The variables to add to a local kernel's environment (empty: none).

    ``setting`` is ``nbcache_kernel_threads``: ``None`` shares the CPUs among the ``at_once``
    notebooks that execute beside each other (``max(1, cpus // at_once)`` threads each: the
    executor passes ``jobs``, or the notebooks left when fewer), ``0`` leaves the libraries
    to their defaults (one thread per CPU each), ``N`` gives each kernel N. When
    ``environ`` (the build's environment, which local kernels inherit, variables passed with
    ``nbcache_executor_env`` included) sets any of :data:`THREAD_VARIABLES`, the user has
    decided: none is added (OpenBLAS, say, reads ``OMP_NUM_THREADS`` when its own is unset).

    Places added while kernels wait (``nbcache_jobs = 0``) do not lower the number: a
    kernel's libraries read the variables once, and a place is added only while the
    executing kernels leave CPUs unused, then taken back when the CPUs are busy
    (:class:`Autoscale`).
    """
    if setting == 0 or any(name in environ for name in THREAD_VARIABLES):
        return {}
    share = max(1, (cpus or usable_cpus()) // max(1, at_once))
    threads = setting if setting is not None else share
    return dict.fromkeys(THREAD_VARIABLES, str(threads))


#: (CPU use of the whole machine since the last reading, in %, bytes of memory available, total)
Machine = tuple[float, int, int]


def read_machine() -> Machine:
    """How busy this machine is (psutil): what the autoscaler decides from."""
    import psutil

    memory = psutil.virtual_memory()
    return psutil.cpu_percent(), memory.available, memory.total


def largest_memory(pids: Iterable[int | None]) -> int:
    """The resident memory of the largest of these processes, in bytes (0: none known)."""
    import psutil

    largest = 0
    for pid in pids:
        if pid is not None:
            with contextlib.suppress(psutil.Error):
                largest = max(largest, psutil.Process(pid).memory_info().rss)
    return largest


def cpu_seconds(pid: int | None) -> float:
    """The CPU seconds a process (its threads and reaped children too) has used (-1: not
    known)."""
    import psutil

    if pid is None:
        return -1.0
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return -1.0
    return float(times.user + times.system + times.children_user + times.children_system)
