"""Builds sharing a store execute each page once: the build side of the store's leases.

Before executing a key, a run takes its lease (``Store.acquire``). Keys leased by another
live build are not executed here: a watcher thread waits for their results to appear in the
store and hands them over as if they had run here. While this run's notebooks execute, the
same thread renews their leases (a heartbeat, every third of ``seconds``); each is released
once its result is stored. A lease whose holder stopped renewing it (a build that was killed)
expires, and a waiting run takes the key over and executes it; at once, without waiting for
the expiry, when the holder was a process of this machine that no longer exists (a build
killed with SIGKILL: the next build on the same machine does not wait ``seconds``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .waiting import new_results

if TYPE_CHECKING:
    from ..execute import Job
    from ..records import Record
    from ..store import Store

__all__ = ["Leases", "holder_is_gone"]


class Leases:
    """This run's leases on a store, and the keys it waits for other runs to finish."""

    def __init__(
        self,
        store: Store,
        seconds: float,
        on_result: Callable[[Job, Record], object],
        on_orphan: Callable[[Job], object],
        since: float | None = None,
        known: dict[str, set[str]] | None = None,
    ) -> None:
        self.store = store
        self.seconds = max(1.0, seconds)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        # results not among ``known`` (key -> ids stored when this run planned it) are
        # another run's; for a key with none known, those stored after ``since``
        self.started = time.time() if since is None else since
        self.known = {} if known is None else known
        self._on_result = on_result
        self._on_orphan = on_orphan
        self._mine: set[str] = set()
        self._waiting: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def take(self, jobs: Iterable[Job]) -> tuple[list[Job], list[Job]]:
        """Split ``jobs`` into those to execute here (leased) and those done meanwhile by
        another run (their results are handed over); the rest are waited for."""
        jobs = list(jobs)
        if not jobs:
            return [], []
        mine = self.store.acquire((j.key for j in jobs), self.holder, self.seconds)
        stored = self.new_results(k for k in mine)  # finished between plan and lease
        run, done = [], []
        with self._lock:
            for job in jobs:
                if job.key in stored:
                    done.append(job)
                elif job.key in mine:
                    self._mine.add(job.key)
                    run.append(job)
                else:
                    self._waiting[job.key] = job
        if stored:
            self.store.release(stored, self.holder)
        for job in done:
            self._on_result(job, stored[job.key])
        if self._mine or self._waiting:
            self._ensure_thread()
        return run, done

    def stored(self, key: str) -> None:
        """The result of ``key`` is stored: its lease goes."""
        with self._lock:
            self._mine.discard(key)
        self.store.release([key], self.holder)

    def close(self) -> None:
        """Stop watching; give up every lease still held (a cancelled or finished run)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            mine, self._mine = sorted(self._mine), set()
            self._waiting.clear()
        if mine:
            with contextlib.suppress(Exception):  # else they expire on their own
                self.store.release(mine, self.holder)

    def new_results(self, keys: Iterable[str], errors: bool = False) -> dict[str, Record]:
        """The newest result of each key stored since this run planned it (by this run or
        another); one that could not run only with ``errors``."""
        return new_results(self.store, keys, self.known, self.started, errors)

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="nbcache-leases")
            self._thread.daemon = True
            self._thread.start()

    def _watch(self) -> None:
        beat = time.monotonic() + self.seconds / 3
        delay = 0.05
        while not self._stop.is_set():
            self._wake.wait(delay)  # results of other builds arrive in the store: polled
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                if time.monotonic() >= beat:
                    with self._lock:
                        mine = sorted(self._mine)
                    self.store.renew(mine, self.holder, self.seconds)
                    beat = time.monotonic() + self.seconds / 3
                delay = self._check_waiting(delay)
            except Exception:
                delay = min(delay * 2, 1.0)  # a store hiccup: try again later

    def _check_waiting(self, delay: float) -> float:
        with self._lock:
            waiting = dict(self._waiting)
        if not waiting:
            return self.seconds / 3
        stored = self.new_results(waiting)
        now = time.time()
        held = self.store.leases(k for k in waiting if k not in stored)
        dead = {holder for holder, _ in held.values() if holder_is_gone(holder)}
        expired = [
            k
            for k in waiting
            if k not in stored and (k not in held or held[k][1] < now or held[k][0] in dead)
        ]
        taken = self.store.acquire(expired, self.holder, self.seconds, dead) if expired else set()
        with self._lock:
            for key in stored:
                self._waiting.pop(key, None)
            for key in taken:
                self._waiting.pop(key, None)
                self._mine.add(key)
        for key, record in stored.items():
            self._on_result(waiting[key], record)
        for key in taken:
            self._on_orphan(waiting[key])
        return 0.05 if stored or taken else min(delay * 2, 1.0)


def holder_is_gone(holder: str) -> bool:
    """True if ``holder`` (``host:pid:token``) was a process of this machine that no longer
    exists; False when that is not known (another machine, a process that exists or that is
    not ours to see): then its lease is left to expire."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (OverflowError, OSError):  # not ours to signal (it exists), or no such pid number
        return False
    return False
