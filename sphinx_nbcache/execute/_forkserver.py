"""Kernels forked from a warm process: a fresh kernel in milliseconds instead of a second.

Starting an IPython kernel is mostly importing it (ipykernel, IPython, zmq, tornado, ...):
~0.6 s of CPU for each notebook. A *fork server* is a process of the kernel's own interpreter
(same executable, same flags) that has imported the kernel's machinery once, and nothing else:
no user module, no zmq context, no thread, no event loop. For each kernel it forks; the child
becomes the kernel (a new session, the notebook's folder and environment, its own output
file), a process of its own with a fresh namespace, exactly as if it had been started.

jupyter_client drives it through a kernel provisioner (:class:`ForkProvisioner`), so the
kernel manager, nbclient and every executor are untouched. What cannot be forked starts the
usual way: a kernel spec that does not run ``-m ipykernel_launcher``, an environment that
differs from the one the server was started with (beyond jupyter_client's own ``JPY_*``
variables and the thread caps, ``OMP_NUM_THREADS`` and the like: the server loads no library
that reads them, and the child sets them before it becomes the kernel), a platform without
``fork``, or a server that failed to start or answer.
Disable with ``nbcache_fork_kernels = False`` or ``NBCACHE_FORK_KERNELS=0``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from ._autoscale import THREAD_VARIABLES
from ._environ import kernel_environment

__all__ = ["ForkProvisioner", "ForkServer", "ForkServers", "fork_enabled"]

#: The server: run with ``python <flags> -c SERVER <socket>``; self-contained (it may run in
#: an interpreter where sphinx-nbcache is not installed).
SERVER = r"""
import importlib, json, os, select, signal, socket, sys, threading
import ipykernel.kernelapp, ipykernel.ipkernel, ipykernel.zmqshell  # the warm part
import IPython.core.interactiveshell, jupyter_client.session, zmq, tornado.ioloop  # noqa
# what a kernel imports while it starts (its debugger, completer, history, ...): imported
# here once instead of in every kernel; none of it starts a thread or opens a socket
for name in __PRELOAD__:
    try:
        importlib.import_module(name)
    except Exception:
        pass
try:  # what every kernel compiles for its first cell (tokenize's regular expressions, ...)
    import io, tokenize
    from IPython.core.inputtransformer2 import TransformerManager
    list(tokenize.generate_tokens(io.StringIO("x = 1\n").readline))
    TransformerManager().transform_cell("x = 1\n")
except Exception:
    pass
if threading.active_count() != 1:  # a thread would not survive a fork: do not serve
    sys.stdout.write("threads\n")
    sys.stdout.flush()
    sys.exit(1)
parent = os.getppid()
exits = {}
children = set()
stopping = []
def reap(*_):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        exits[pid] = os.waitstatus_to_exitcode(status)
signal.signal(signal.SIGCHLD, reap)
signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
wake, woken = os.pipe()  # a signal writes a byte: told to stop, the wait ends at once
os.set_blocking(woken, False)
signal.set_wakeup_fd(woken)
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sys.argv[1])
listener.listen(64)
sys.stdout.write("ready\n")
sys.stdout.flush()
def become_kernel(request, conn):
    listener.close()
    conn.close()
    signal.set_wakeup_fd(-1)
    os.close(wake)
    os.close(woken)
    os.setsid()
    for number in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(number, signal.SIG_DFL)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    out = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    sys.argv = ["ipykernel_launcher", *request["argv"]]
    try:
        ipykernel.kernelapp.launch_new_instance()
    finally:
        os._exit(0)
while True:
    if stopping or os.getppid() != parent:  # told to, or the build is gone: end every kernel
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for pid in list(children):
            for end in (os.killpg, os.kill):
                try:
                    end(pid, signal.SIGKILL)
                    break
                except OSError:
                    pass
        for pid in list(children):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        break
    ready, _, _ = select.select([listener, wake], [], [], 0.5)
    if wake in ready:
        os.read(wake, 512)
    if listener not in ready:
        continue
    conn, _ = listener.accept()
    with conn:
        stream = conn.makefile("r")
        request = json.loads(stream.readline())
        stream.close()
        if "poll" in request:
            answer = {"exit": exits.pop(request["poll"], None)}
        else:
            pid = os.fork()
            if pid == 0:
                become_kernel(request, conn)
            children.add(pid)
            answer = {"pid": pid}
        conn.sendall((json.dumps(answer) + "\n").encode())
"""

#: Modules an ipykernel kernel imports while it starts (measured: ipykernel 7, IPython 9),
#: imported by the server before it forks: ~0.4 s less per kernel. A name missing in another
#: version is skipped.
PRELOAD = (
    "ipykernel.debugger", "debugpy.server.api", "IPython.core.completerlib",
    "IPython.core.debugger", "IPython.core.oinspect", "IPython.core.logger",
    "IPython.extensions.storemagic", "IPython.utils.wildcard",
    "traitlets.config.argcomplete_config", "tornado.gen", "tornado.locks", "tornado.queues",
    "tornado.platform.asyncio", "sqlite3", "psutil", "pdb", "pydoc", "http.server",
    "xmlrpc.server", "xmlrpc.client", "email.parser", "mimetypes", "gzip", "sysconfig",
    "faulthandler", "resource", "runpy", "encodings.idna", "unicodedata",
)  # fmt: skip
SERVER = SERVER.replace("__PRELOAD__", repr(PRELOAD))

_VOLATILE = ("JPY_",)  # environment variables jupyter_client sets per kernel
#: ... and those the executor sets per kernel (thread caps): read by libraries a kernel loads
#: (BLAS, OpenMP, ...), never by the server, which imports none of them
_PER_KERNEL = frozenset(THREAD_VARIABLES)


def fork_enabled(setting: bool = True) -> bool:
    """Whether kernels may be forked here: the setting, the environment, the platform."""
    if os.environ.get("NBCACHE_FORK_KERNELS", "").strip().lower() in ("0", "false", "no", "off"):
        return False
    return setting and sys.platform == "linux" and hasattr(os, "fork")


def _interpreter(program: str) -> str:
    """The interpreter a kernel spec's ``argv[0]`` runs, as jupyter_client launches it: a bare
    ``python``, ``python3`` or ``python3.X`` (what ipykernel's own spec in a venv says) is
    this interpreter."""
    major, minor = sys.version_info[:2]
    bare = {"python", f"python{major}", f"python{major}.{minor}"}
    return sys.executable if program in bare else program


def _stable(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith(_VOLATILE) and k not in _PER_KERNEL}


class ForkServer:
    """One warm process of one interpreter (with its flags) and one environment."""

    def __init__(self, prefix: tuple[str, ...], env: dict[str, str]) -> None:
        self.prefix = prefix
        self.env = _stable(env)
        self.folder = tempfile.mkdtemp(prefix="nbcfork-")
        self.socket = os.path.join(self.folder, "s")
        self.process: asyncio.subprocess.Process | None = None
        self.failed = False
        self.ready = False
        self.forked = 0  # kernels forked
        self._starting: asyncio.Task[bool] | None = None

    async def begin(self) -> bool:
        """Start the server (once; later callers wait for the same start): True if it runs."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self.start())
        return await asyncio.shield(self._starting)

    async def start(self) -> bool:
        """Start the server; True when it answers."""
        ready = False
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.prefix,
                "-c",
                SERVER,
                self.socket,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )
            assert self.process.stdout is not None
            line = await asyncio.wait_for(self.process.stdout.readline(), 60)
            ready = line.strip() == b"ready"
        except (OSError, asyncio.TimeoutError, AssertionError):
            ready = False
        self.failed, self.ready = not ready, ready
        if not ready:
            self.stop()
        return ready

    def usable(self, env: dict[str, str]) -> bool:
        return not self.failed and _stable(env) == self.env

    async def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        reader, writer = await asyncio.open_unix_connection(self.socket)
        try:
            writer.write((json.dumps(request) + "\n").encode())
            await writer.drain()
            answer: dict[str, Any] = json.loads(await asyncio.wait_for(reader.readline(), 30))
            return answer
        finally:
            writer.close()

    def stop(self, now: bool = True) -> None:
        """End the server: it ends the kernels it forked that still run (their managers
        normally have); ``now``: kill it instead (it leaves them to exit on their own)."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(OSError):
                os.killpg(self.process.pid, signal.SIGKILL if now else signal.SIGTERM)
        with contextlib.suppress(OSError):
            os.unlink(self.socket)
        with contextlib.suppress(OSError):
            os.rmdir(self.folder)

    async def close(self) -> None:
        """End the server and wait for it (its exit is collected before the loop ends)."""
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(BaseException):
                await self._starting
        self.stop(now=False)
        if self.process is not None:
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except Exception:
                self.stop()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.process.wait(), 10)
        self.stop()  # the socket and folder

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid


class ForkServers:
    """The fork servers of one executor, by interpreter and environment."""

    def __init__(self) -> None:
        self._servers: dict[tuple[str, ...], ForkServer] = {}

    def for_spec(self, argv: list[str]) -> ForkServer | None:
        """The server for a kernel spec's ``argv``, if it can be forked (not yet started)."""
        try:
            at = argv.index("-m")
        except ValueError:
            return None
        prefix = (_interpreter(argv[0]), *argv[1:at])
        if argv[at + 1 : at + 2] != ["ipykernel_launcher"] or not Path(prefix[0]).is_file():
            return None
        server = self._servers.get(prefix)
        if server is None or server.failed:
            server = self._servers[prefix] = ForkServer(prefix, kernel_environment())
        return server

    def pids(self) -> list[int]:
        return [s.pid for s in self._servers.values() if s.pid is not None]

    @property
    def forked(self) -> int:
        """Kernels forked so far (the others started the usual way)."""
        return sum(s.forked for s in self._servers.values())

    async def close(self) -> None:
        for server in self._servers.values():
            await server.close()


class _Forked:
    """The parts of :class:`subprocess.Popen` a provisioner uses, for a forked kernel (the
    fork server's child, not ours: it is reaped there)."""

    def __init__(self, pid: int, server: ForkServer) -> None:
        self.pid = pid
        self.server = server
        self.returncode: int | None = None
        self.stdin = self.stdout = self.stderr = None  # its output goes to the kernel's log
        self._start = _start_time(pid)

    def poll(self) -> int | None:
        if self.returncode is None and _start_time(self.pid) != self._start:
            self.returncode = 0  # gone (its exit status stays with the server)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        code = self.poll()
        return 0 if code is None else code

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def _start_time(pid: int) -> str | None:
    """When a live process started (None: there is none, or it is a zombie): a pid reused
    by another process does not pass for the kernel."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]


class ForkProvisioner(LocalProvisioner):
    """A local kernel, forked by a :class:`ForkServer` when the launch allows it."""

    server: ForkServer | None = None
    forked = False

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        server, env = self.server, dict(kwargs.get("env") or kernel_environment())
        stdout = kwargs.get("stdout")
        log = getattr(stdout, "name", None)
        at = cmd.index("-m") if "-m" in cmd else -1
        if server is None or not isinstance(log, str) or at < 0 or not server.usable(env):
            return await super().launch_kernel(cmd, **kwargs)
        # warming up: ready about as soon as a kernel started the usual way would be, and
        # then every kernel comes up in a fraction of that
        if not server.ready and not await server.begin():
            return await super().launch_kernel(cmd, **kwargs)
        request = {"argv": cmd[at + 2 :], "cwd": str(kwargs.get("cwd") or os.getcwd())}
        try:
            answer = await server.ask({**request, "env": env, "log": log})
            pid = int(answer["pid"])
        except (OSError, ValueError, KeyError, asyncio.TimeoutError):
            server.failed = True
            server.stop()
            return await super().launch_kernel(cmd, **kwargs)
        server.forked += 1
        self.process = _Forked(pid, server)  # type: ignore[assignment]
        self.pid = self.pgid = pid  # the child made its own session
        self.cwd = request["cwd"]
        self.forked = True
        return self.connection_info
