"""An executor run in a process of its own: the build's interpreter is left to Sphinx.

In-process, the local executor moves every kernel message in a thread of the build process,
and each outcome is stored there too: both wait for the build's interpreter lock, which
Sphinx's reading holds most of the time, and Sphinx's reading waits for them in turn.
:class:`ProcessExecutor` runs the executor (kernels, the warm process they fork from,
autoscaling) in a child process instead, started with this interpreter and this ``sys.path``
(a fresh interpreter: no thread, loop or lock of the build is inherited) when the executor is
made, so that it imports what it needs while the build makes the jobs. The build sends it
:class:`Job` s (they pickle); it sends back one small message per job.

Given a *finisher* (:meth:`ProcessExecutor.store_with`: a picklable callable, run in the child
on each outcome, e.g. one that stores it), the child finishes outcomes there and sends back
what the finisher returns: with a storing finisher, the stored record and no outputs (the
build reads them from the blobs when it renders the page, ``Outcome.stored``). A finisher
that fails leaves the outcome as it was: it comes back whole and the build finishes it.

The child ends its kernels and exits when told to (:meth:`ProcessExecutor.shutdown`), when
the build's end of the connection closes, or when the build is gone (its parent changes).
Ctrl-C reaches the child too (same process group): it does not stop there, but no failure
seen after it is finished (stored) in the child: the interruption may be what failed it; the
build decides (its ``shutdown(cancel=True)`` follows).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import itertools
import json
import os
import pickle
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from ..errors import ExecutorError
from ._job import Job, Outcome
from ._registry import resolve_factory

__all__ = ["ProcessExecutor", "serve"]

Finisher = Callable[[Job, Outcome], Outcome]

#: the child's first lines: Ctrl-C must not interrupt its imports; the build's ``sys.path``
BOOT = (
    "import json, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "sys.path[:] = json.loads(sys.argv[2]); "
    "from sphinx_nbcache.execute._process import serve; serve(int(sys.argv[1]))"
)
_STATS = ("peak_running", "peak_kernels", "peak_processes", "peak_ahead", "lent")


class ProcessExecutor:
    """Runs the executor named ``spec`` (with ``settings``) in a child process."""

    apart = True  # the build's interpreter runs none of its work

    def __init__(self, spec: str = "local", **settings: Any) -> None:
        self.spec = spec
        self.settings = settings
        self.finisher: Finisher | None = None
        #: told each job's key when its kernel starts executing it (in the reader thread)
        self.on_start: Callable[[str], object] | None = None
        self.pid: int | None = None  # of the child, once started
        self.peak_running = 0
        self.peak_kernels = 0
        self.peak_processes = 0
        self.peak_ahead = 0
        self.lent = 0
        self._owner = os.getpid()
        self._numbers = itertools.count()
        self._futures: dict[int, concurrent.futures.Future[Outcome]] = {}
        self._lock = threading.Lock()  # sending, and the futures
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: Connection | None = None
        self._reader: threading.Thread | None = None
        self._closed_reply = threading.Event()
        self._closed = False
        self._gone: BaseException | None = None  # why the child will resolve nothing more
        self._started = False  # the child was told what to run (at the first job)
        resolve_factory(spec)  # a misspelt name is a ConfigError now, as in-process
        self._spawn()

    # -- the Executor interface ---------------------------------------------------------------

    def store_with(self, finisher: Finisher) -> None:
        """Finish each outcome in the child with ``finisher`` (before the first submit)."""
        if self._started:
            raise RuntimeError("the finisher is given before the first job")
        self.finisher = finisher

    def submit(self, job: Job) -> concurrent.futures.Future[Outcome]:
        if self._closed:
            raise RuntimeError("this executor has been shut down")
        future: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
        with self._lock:
            try:
                if self._gone is not None:
                    raise OSError(str(self._gone))
                connection = self._start()
                number = next(self._numbers)
                connection.send(("submit", number, job))
                self._futures[number] = future
            except (OSError, ValueError) as exc:  # the page fails (an internal error), no hang
                future.set_exception(ExecutorError(self.spec, f"its process is gone ({exc})"))
        return future

    def shutdown(self, cancel: bool = False) -> None:
        """Tell the child to finish (or cancel) its jobs and end its kernels; wait for it."""
        if self._closed or os.getpid() != self._owner:
            return  # a forked reader: the connection is the build's
        self._closed = True
        atexit.unregister(self._atexit)
        if self._process is None:
            return
        with self._lock, contextlib.suppress(OSError, ValueError):
            assert self._connection is not None
            self._connection.send(("shutdown", cancel))  # never started: it ends at once
        self._closed_reply.wait(None if not cancel else 60)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()  # its kernels end when it is gone (they watch their parent)
            self._process.wait()
        if self._reader is not None:
            self._reader.join(timeout=30)
        if self._connection is not None:
            self._connection.close()
        self._fail_all(None)

    def forks_every_kernel(self, timeout: float = 60.0) -> bool:
        """True: this process starts no kernel (nor any other process) while they run, so it
        may fork (``sphinx-build -j`` readers) once the child runs."""
        return self._process is not None and self._process.poll() is None

    # -- internals ----------------------------------------------------------------------------

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", BOOT, str(theirs.fileno()), json.dumps(sys.path)],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        except OSError as exc:
            ours.close()
            raise ExecutorError(self.spec, f"could not start its process ({exc})") from None
        finally:
            theirs.close()
        self.pid = self._process.pid
        self._connection = Connection(ours.detach())
        self._reader = threading.Thread(target=self._read, name="nbcache-results", daemon=True)
        self._reader.start()
        atexit.register(self._atexit)

    def _start(self) -> Connection:
        """The connection, once the child was told what to run (the first job)."""
        assert self._connection is not None
        if not self._started:
            self._started = True
            # the finisher as bytes: the child unpickles it (importing the store) in its
            # finishing thread while its first kernels start
            finisher = pickle.dumps(self.finisher) if self.finisher is not None else None
            self._connection.send(("start", self.spec, self.settings, finisher))
        return self._connection

    def _read(self) -> None:
        """The reader thread: resolves each job's future as its message arrives."""
        assert self._connection is not None
        gone: BaseException = EOFError("it stopped")
        try:
            while True:
                message = self._connection.recv()
                kind = message[0]
                if kind == "closed":
                    self._count(message[1])
                    return
                if kind == "started":
                    if self.on_start is not None:
                        with contextlib.suppress(Exception):  # progress never breaks a run
                            self.on_start(message[1])
                    continue
                _, number, result, stats = message
                self._count(stats)
                with self._lock:
                    future = self._futures.pop(number, None)
                if future is None or future.done():
                    continue
                if kind == "cancelled":
                    future.cancel()
                elif kind == "failed":
                    future.set_exception(ExecutorError(self.spec, str(result)))
                else:
                    future.set_result(result)
        except (EOFError, OSError) as exc:
            gone = exc
        finally:
            self._fail_all(None if self._closed else gone)
            self._closed_reply.set()

    def _count(self, stats: dict[str, int]) -> None:
        for name in _STATS:
            setattr(self, name, max(getattr(self, name), int(stats.get(name, 0))))

    def _fail_all(self, exc: BaseException | None) -> None:
        """Futures the child will not resolve: failed (it died) or cancelled (shut down)."""
        with self._lock:
            futures, self._futures = list(self._futures.values()), {}
            self._gone = self._gone or exc or EOFError("shut down")
        for future in futures:
            if future.done():
                continue
            if exc is None:
                future.cancel()
            else:
                future.set_exception(
                    ExecutorError(self.spec, f"its process ended unexpectedly ({exc})")
                )

    def _atexit(self) -> None:
        self.shutdown(cancel=True)


# -- the child ----------------------------------------------------------------------------------


class _Child:
    """The executor's process: runs the executor, finishes outcomes, reports them."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.sending = threading.Lock()
        self.parent = os.getppid()
        self.interrupted = False  # Ctrl-C seen, or told to cancel
        self.finisher: Finisher | None = None
        self.pickled: bytes | None = None  # the finisher, until the finishing thread loads it
        self.executor: Any = None
        self.finished: queue.SimpleQueue[tuple[int, Job, Any] | None] = queue.SimpleQueue()
        self.serving = False

    def run(self) -> None:
        from ._registry import load_executor

        self.serving = True
        start = self._next()
        if start is None or start[0] != "start":
            return  # never used
        _, spec, settings, self.pickled = start
        signal.signal(signal.SIGINT, self._interrupt)
        signal.signal(signal.SIGTERM, self._terminate)
        finishing = threading.Thread(target=self._finish_all, name="nbcache-finish")
        finishing.start()
        cancel = True
        try:
            self.executor = load_executor(spec, **settings)
            if hasattr(self.executor, "on_start"):  # the build shows which pages run
                self.executor.on_start = lambda key: self._send(("started", key))
            cancel = self._serve()
        except BaseException as exc:  # a broken executor: every job fails, nothing hangs
            if self.executor is None:
                self._fail_submitted(exc)
            raise
        finally:
            self.serving = False  # SIGTERM from now on: noted, the kernels are ending anyway
            self.interrupted = self.interrupted or cancel
            if self.executor is not None:
                self.executor.shutdown(cancel=cancel)
            self.finished.put(None)
            finishing.join()
            closer = getattr(self.finisher, "close", None)
            if callable(closer):
                closer()
            self._send(("closed", self._stats()))

    def _next(self) -> Any:
        """The build's next message; None once the build closed its end or is gone."""
        while True:
            try:
                if self.connection.poll(1.0):
                    return self.connection.recv()
            except (EOFError, OSError):
                return None
            if os.getppid() != self.parent:
                return None

    def _serve(self) -> bool:
        """Take jobs until told to shut down; True if the work is to be cancelled."""
        while True:
            message = self._next()
            if message is None:
                return True  # the build is gone
            if message[0] == "shutdown":
                return bool(message[1])
            _, number, job = message
            future = self.executor.submit(job)
            future.add_done_callback(lambda done, n=number, j=job: self.finished.put((n, j, done)))

    def _finish_all(self) -> None:
        """The finishing thread: each outcome finished (stored) in turn, then reported."""
        if self.pickled is not None:
            with contextlib.suppress(Exception):  # none: outcomes go back whole
                self.finisher = pickle.loads(self.pickled)
                prepare = getattr(self.finisher, "prepare", None)
                if callable(prepare):
                    prepare()  # opens the store while the first kernels start
        while True:
            item = self.finished.get()
            if item is None:
                return
            number, job, future = item
            if future.cancelled():
                self._send(("cancelled", number, None, self._stats()))
                continue
            try:
                outcome = future.result()
            except Exception as exc:
                self._send(("failed", number, f"{type(exc).__name__}: {exc}", self._stats()))
                continue
            self._send(("done", number, self._finish(job, outcome), self._stats()))

    def _finish(self, job: Job, outcome: Any) -> Any:
        if self.finisher is None or not isinstance(outcome, Outcome):
            return outcome
        if outcome.record.key != job.key or (self.interrupted and not outcome.record.ok):
            return outcome  # the build judges it (and cancels it if interrupted)
        try:
            return self.finisher(job, outcome)
        except Exception:
            return outcome  # the build finishes it itself (and reports what breaks)

    def _fail_submitted(self, exc: BaseException) -> None:
        while self.connection.poll(0):
            message = self.connection.recv()
            if message[0] == "submit":
                self._send(("failed", message[1], f"{type(exc).__name__}: {exc}", {}))

    def _stats(self) -> dict[str, int]:
        return {name: int(getattr(self.executor, name, 0) or 0) for name in _STATS}

    def _send(self, message: tuple[Any, ...]) -> None:
        with self.sending, contextlib.suppress(OSError, ValueError):
            self.connection.send(message)

    def _interrupt(self, *_: Any) -> None:
        self.interrupted = True  # the build was interrupted too: it says what to do

    def _terminate(self, *_: Any) -> None:
        self.interrupted = True
        if self.serving:
            raise SystemExit(143)  # ends the wait for messages: kernels are cancelled


def serve(fd: int) -> None:
    """The child's main: run jobs sent over the connection on ``fd`` until shut down; then
    exit at once (kernels ended, results stored and reported: nothing left to tear down)."""
    _Child(Connection(fd)).run()
    sys.stderr.flush()
    os._exit(0)
