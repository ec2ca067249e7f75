"""Helpers for the reliability tests: real ``sphinx-build`` processes, FIFOs, process trees.

Every process started here runs in its own session (``start_new_session``) so a test can signal
the whole build (the way a terminal's Ctrl-C does) and kill it in ``finally``.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOTS = Path(__file__).parent / "roots"


@dataclass
class Build:
    """One ``sphinx-build`` process on a copy of a test root."""

    src: Path
    log: Path  # executions, written inside the kernels (one page name a line)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def copy(cls, root: str, dest: Path, **env: str) -> Build:
        shutil.copytree(ROOTS / f"test-{root}", dest)
        log = dest.parent / f"{dest.name}.kernel.log"
        log.write_text("")
        return cls(dest, log, {"NBCACHE_TEST_LOG": str(log), **env})

    def command(self, *args: str) -> list[str]:
        out = self.src / "_build" / "html"
        return [sys.executable, "-m", "sphinx", "-b", "html", *args, str(self.src), str(out)]

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        self.log.write_text("")
        environ = {**os.environ, "PYTHONWARNINGS": "ignore", **self.env, **env}
        with open(self.src.parent / f"{self.src.name}.out", "wb") as out:
            self.proc = subprocess.Popen(
                self.command(*args),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=environ,
                start_new_session=True,
            )
        return self.proc

    def run(self, *args: str, timeout: float = 120, **env: str) -> tuple[int, str]:
        """Build to the end; (exit code, output)."""
        proc = self.start(*args, **env)
        try:
            code = proc.wait(timeout=timeout)
        finally:
            kill_group(proc)
        return code, self.output()

    def output(self) -> str:
        return (self.src.parent / f"{self.src.name}.out").read_text(errors="replace")

    def executed(self) -> Counter[str]:
        return Counter(line for line in self.log.read_text().split() if line)

    def html(self, page: str) -> str:
        return (self.src / "_build" / "html" / f"{page}.html").read_text()


def kill_group(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL a process's whole session group and reap it (no-op if it is gone)."""
    if proc is None:
        return
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


class Fifo:
    """A named pipe the test notebooks write one line to when they reach a point."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self._read = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._keep = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # no EOF before a writer
        self._buffer = b""

    def wait_line(self, timeout: float = 120.0, proc: subprocess.Popen[bytes] | None = None) -> str:
        """Block until a whole line arrives (fails if ``proc`` exits first)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line on {self.path} within {timeout} s")
            ready, _, _ = select.select([self._read], [], [], min(left, 1.0))
            if ready:
                self._buffer += os.read(self._read, 4096)
            elif proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the build exited ({proc.returncode}) before the signal")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def close(self) -> None:
        os.close(self._read)
        os.close(self._keep)


def kernels_of(pid: int) -> list[psutil.Process]:
    """The ipykernel processes started by process ``pid`` (direct children)."""
    found = []
    with suppress(psutil.NoSuchProcess):
        for child in psutil.Process(pid).children(recursive=True):
            with suppress(psutil.NoSuchProcess):
                if "ipykernel" in " ".join(child.cmdline()):
                    found.append(child)
    return found


def assert_all_gone(procs: list[psutil.Process], timeout: float) -> None:
    """Wait (on the processes, not a clock) until each has exited; kill and fail otherwise."""
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        with suppress(psutil.NoSuchProcess):
            proc.kill()
    assert not alive, f"left behind: {[p.pid for p in alive]}"


def keep_pages(src: Path, *names: str) -> None:
    """Trim a copy of the reliability root to these pages."""
    for page in ("p1", "p2", "p3", "p4"):
        if page not in names:
            (src / f"{page}.md").unlink()
    (src / "index.md").write_text("# Reliability\n\n```{toctree}\n" + "\n".join(names) + "\n```\n")


def warning_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "WARNING" in line or "ERROR" in line]
