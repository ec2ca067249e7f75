"""Live progress of a run: how many notebooks are done of how many, which run now and for how
long, and a "still running" line for each one running after a while.

The :class:`~.runner.Runner` tells a :class:`Progress` of each job's events as they happen (in
whatever thread: the submitting one, the executor's, the storing one): ``submitted``,
``started`` (it took a place to execute; an executor that does not say leaves it out) and
``done`` (stored, given up, or executed by another build). The front doors show it their
own way: the build's log lines (``sphinxext/_log.py``) and ``nbcache execute``'s progress bar
(``cli/act.py``). With an ``interval``, a daemon thread calls ``on_tick`` every ``interval``
seconds while something runs; it names the notebooks running for at least that long, so a hang
is visible while it happens.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

__all__ = ["EVENTS", "OnEvent", "Progress", "format_running"]

#: what happened to a job: queued in this run, took a place to execute, finished (any way)
EVENTS = ("submitted", "started", "done")
#: ``on_event(kind, key, page, when)``: ``when`` on the :func:`time.monotonic` clock
OnEvent = Callable[[str, str, str, float], None]


class Progress:
    """Counts of a run's jobs and the ones running, fed by :meth:`event`."""

    def __init__(
        self,
        interval: float = 0.0,
        on_tick: Callable[[Progress], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.on_tick = on_tick
        self.clock = clock
        self._lock = threading.Lock()
        self._pages: dict[str, str] = {}  # key -> page, every job submitted
        self._started: dict[str, float] = {}  # key -> when it started, until done
        self._done: set[str] = set()
        self._at_done: dict[str, str] = {}  # key -> what line() said when it was done
        self._told: dict[str, int] = {}  # key -> intervals of running told so far
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # -- events -------------------------------------------------------------------------------

    def event(self, kind: str, key: str, page: str, when: float) -> None:
        """Record one event (cheap, thread-safe: called from the executor's thread too)."""
        with self._lock:
            if kind == "submitted":
                self._pages[key] = page
                self._done.discard(key)  # a new run of it
            elif kind == "started":
                self._pages.setdefault(key, page)
                self._started[key] = when
            elif kind == "done":
                self._pages.setdefault(key, page)
                self._started.pop(key, None)
                self._done.add(key)
                self._at_done[key] = self._line(when)
        if kind == "submitted" and self.interval > 0 and self.on_tick is not None:
            self._start_ticker()

    __call__ = event

    # -- what it shows ------------------------------------------------------------------------

    @property
    def total(self) -> int:
        """Jobs submitted in this run (it grows when pages found stale while reading run)."""
        with self._lock:
            return len(self._pages)

    @property
    def finished(self) -> int:
        with self._lock:
            return len(self._done)

    def running(self, at_least: float = 0.0) -> list[tuple[str, float]]:
        """(page, seconds) of the jobs executing now for ``at_least`` seconds, longest first."""
        now = self.clock()
        with self._lock:
            found = [(self._pages[k], now - t) for k, t in self._started.items()]
        return sorted((f for f in found if f[1] >= at_least), key=lambda f: -f[1])

    def counts(self) -> str:
        """``3/12``: jobs done of those submitted."""
        with self._lock:
            return f"{len(self._done)}/{len(self._pages)}"

    def line(self, key: str | None = None) -> str:
        """``3/12 done; running: slow (62 s), other (3 s)``: now, or (given the key of a job
        done) when that job was done (its line may be shown later, by another thread)."""
        with self._lock:
            if key is not None and key in self._at_done:
                return self._at_done[key]
            return self._line(self.clock())

    def _line(self, now: float) -> str:  # holding the lock
        running = sorted(((self._pages[k], now - t) for k, t in self._started.items()),
                         key=lambda f: -f[1])  # fmt: skip
        text = f"{len(self._done)}/{len(self._pages)} done"
        return f"{text}; running: {format_running(running)}" if running else text

    def still_running(self) -> str | None:
        """The line for the notebooks that ran another ``interval`` seconds since they were
        last named (after 30 s, 60 s, ... of running): None if none did. Each call tells them
        once; the others running that long are named with them."""
        if self.interval <= 0:
            return None
        now = self.clock()
        with self._lock:
            due = False
            for key, begun in self._started.items():
                intervals = int((now - begun) / self.interval)
                if intervals > self._told.get(key, 0):
                    self._told[key] = intervals
                    due = True
        if not due:
            return None
        slow = self.running(self.interval)
        return f"still running: {format_running(slow, limit=8)} ({self.counts()} done)"

    # -- the ticker ---------------------------------------------------------------------------

    def _start_ticker(self) -> None:
        with self._lock:
            if self._ticker is not None or self._stop.is_set():
                return
            self._ticker = threading.Thread(target=self._tick, name="nbcache-progress")
            self._ticker.daemon = True
        self._ticker.start()

    def _tick(self) -> None:
        """Look six times an interval: a notebook is named soon after each interval it ran."""
        assert self.on_tick is not None
        while not self._stop.wait(self.interval / 6):
            with contextlib.suppress(Exception):  # showing progress never breaks a run
                self.on_tick(self)

    def close(self) -> None:
        """Stop the ticker (waits for it)."""
        self._stop.set()
        ticker = self._ticker
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join()


def format_running(running: list[tuple[str, float]], limit: int = 4) -> str:
    """``slow (62 s), other (3 s)`` (and ``and N more`` past ``limit``)."""
    shown = ", ".join(f"{page} ({seconds:.0f} s)" for page, seconds in running[:limit])
    more = len(running) - limit
    return f"{shown} and {more} more" if more > 0 else shown
