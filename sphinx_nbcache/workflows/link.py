"""The build's door for its own kernels: reads and calls answered by the build.

A notebook that reads another page's result (``read_notebook``) or calls a notebook (``run``)
while a build executes it does not open the cache itself: it asks the build, over a Unix
socket in a private folder (mode 0700) with a token made for this build
(:class:`~sphinx_nbcache.execute.inkernel.Link` is the kernel's side). So the database URL, its
password and the blobs' credentials never enter a kernel; what a kernel gets was looked up (and,
for a call, run, checked and stored) by the build itself, with the engine's one lookup; and a
read of a page this build is executing waits on the engine's own event, not by polling.

One request a connection: a JSON line ``{"token", "op", "args"}``; back, ``{"event":
"waiting"}`` when the answer has to wait for an execution (the kernel lends its place
meanwhile), then ``{"ok": ...}`` or ``{"error": {"type", "args"}}`` (one of our exceptions,
raised again in the kernel as the same type). Local kernels only: a kernel on another machine
cannot reach the socket, and reads the store with credentials of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine.cache import ProjectCache
from ..errors import NbcacheError, NotFoundError
from ..notebooks.project import Project
from .calls import Caller
from .reads import current_result, found_to_json

if TYPE_CHECKING:
    from ..engine.core import Engine
    from ..records import Record

__all__ = ["MAX_REQUEST", "KernelLink", "serve_kernels"]

#: the largest request read (a path and parameters): beyond, the connection is dropped
MAX_REQUEST = 1 << 20


def serve_kernels(engine: Engine) -> KernelLink:
    """A link for the kernels of ``engine``'s run (what front doors give the engine)."""
    return KernelLink(engine)


class KernelLink:
    """Serves the reads and calls of the kernels of one engine's run, until :meth:`close`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        project = Project(engine.root, engine.options, md_config=engine.md_config)
        self.cache = ProjectCache(project=project, store=engine.store)
        self.token = secrets.token_hex(16)
        self.folder = tempfile.mkdtemp(prefix="nbcache-link-")  # 0700: this user only
        self.path = os.path.join(self.folder, "s")
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.bind(self.path)
        self._socket.listen(64)
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="nbcache-link", daemon=True)
        self._thread.start()

    def address(self) -> dict[str, str]:
        """What a job tells its kernel (``Job.store``): where the link is, and the token."""
        return {"link": self.path, "link_token": self.token}

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._thread.join(timeout=5)
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- serving ------------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._closed:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return  # closed
            threading.Thread(
                target=self._answer, args=(connection,), name="nbcache-link-call", daemon=True
            ).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rb") as reader:
            line = reader.readline(MAX_REQUEST + 1)
            try:
                request = json.loads(line) if len(line) <= MAX_REQUEST else None
            except ValueError:
                request = None
            if not isinstance(request, dict) or not secrets.compare_digest(
                str(request.get("token", "")), self.token
            ):
                return  # not one of this build's kernels: no answer at all
            try:
                answer = {"ok": self._do(str(request.get("op")), request.get("args"), connection)}
            except NbcacheError as exc:
                answer = {"error": {"type": type(exc).__name__, "args": list(exc.args)}}
            except Exception as exc:  # never a hung kernel: say what broke
                message = f"the build could not answer ({type(exc).__name__}: {exc})"
                answer = {"error": {"type": "NbcacheError", "args": [message]}}
            with contextlib.suppress(OSError):
                _send(connection, answer)

    def _do(self, op: str, arguments: Any, connection: socket.socket) -> dict[str, Any]:
        if not isinstance(arguments, dict):
            raise NbcacheError("a request's arguments are an object")
        page = self.cache.page(self._inside(arguments.get("path")))
        parameters = arguments.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise NbcacheError("parameters are an object")

        def waiting() -> None:
            _send(connection, {"event": "waiting"})

        if op == "read":
            wait = float(arguments.get("wait") or 0.0)
            found = current_result(self.cache, self.engine, page, parameters, wait, waiting)
            return found_to_json(found, self._outputs(found.record))
        if op == "call":
            timeout = arguments.get("timeout")
            result = Caller(self.cache, engine=self.engine).call(
                page.path,
                parameters,
                timeout=None if timeout is None else float(timeout),
                force=bool(arguments.get("force")),
                on_wait=waiting,
            )
            outputs = self._outputs(result.record)
            return {
                "record": result.record.to_json(),
                "outputs": outputs.to_json() if outputs is not None else None,
                "cached": result.cached,
            }
        raise NbcacheError(f"no operation {op!r}")

    def _inside(self, path: Any) -> Path:
        """A notebook of the project (a kernel asks only for those)."""
        root = self.engine.root
        target = Path(str(path)).resolve()
        if root is not None and not target.is_relative_to(root.resolve()):
            raise NotFoundError(f"{path} is outside the project", "read a page of the project")
        return target

    def _outputs(self, record: Record) -> Any:
        return self.engine.store.load_outputs(record) if record.blob is not None else None


def _send(connection: socket.socket, message: dict[str, Any]) -> None:
    connection.sendall(json.dumps(message).encode("utf-8") + b"\n")
