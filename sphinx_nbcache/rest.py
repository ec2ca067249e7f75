"""Every notebook under a Jupyter server's root as a REST endpoint: ``/nbcache/run/<path>``.

A Jupyter Server extension (``jupyter server
--ServerApp.jpserver_extensions="{'sphinx_nbcache': True}"``, or ``nbcache serve``)::

    GET  /nbcache/run/models/forecast.md?city=Oslo&days=5
    POST /nbcache/run/models/forecast.md      {"city": "Oslo", "days": 5}
    ->   {"result": ..., "cached": true, "record": "<id>", "seconds": 0.01}

Calls go through :class:`.Caller` on the cache of the server's root (its
``conf.py`` options, if it has one): answered from the cache when the same code ran with the
same parameters, identical calls in flight joined. Jupyter Server's own token authentication
applies. At most ``NbcacheServe.jobs`` notebooks execute at once (default
``nbcache_serve_jobs``); at most ``NbcacheServe.queue`` calls are taken at once, beyond which
the answer is 503.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import secrets
import threading
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from traitlets import Integer
from traitlets.config import Configurable

from .errors import NbcacheError, NotFoundError, SignatureError
from .notebooks.parameters import literal
from .workflows.calls import Caller, CallResult

__all__ = ["CallService", "NbcacheServe", "RunHandler", "main"]

ROUTE = "nbcache/run/(.*)"
TIMEOUT_HEADER = "X-Nbcache-Timeout"


class NbcacheServe(Configurable):
    """Settings of the ``/nbcache/run/`` endpoints (``--NbcacheServe.jobs=2``)."""

    jobs = Integer(0, config=True, help="notebooks executing at once (0: nbcache_serve_jobs)")
    queue = Integer(100, config=True, help="calls taken at once; more are refused (503)")


class Busy(NbcacheError):
    """Too many calls are waiting."""

    http_status = 503


class Refused(NbcacheError):
    """A path outside the server's root."""

    http_status = 403


class CallService:
    """The calls of one server: one cache, one engine (its executor and warm kernels kept
    for every call), a bounded number of calls taken at once."""

    def __init__(self, root: Path, jobs: int = 0, queue: int = 100) -> None:
        from .engine.cache import open_project

        self.root = root.resolve()
        self.cache = open_project(self.root)
        self.jobs = jobs or self.cache.options.serve_jobs
        self.caller = Caller(self.cache, jobs=self.jobs)
        self.queue = max(1, queue)
        self.pool = concurrent.futures.ThreadPoolExecutor(self.queue, "nbcache-call")
        self._lock = threading.Lock()
        self.taken = 0  # calls being answered now

    def resolve(self, path: str) -> Path:
        """The notebook at ``path`` (URL path under the root); refuses anything outside."""
        relative = Path(path)
        target = (self.root / relative).resolve()
        if relative.is_absolute() or not target.is_relative_to(self.root):
            raise Refused(f"{path!r} is outside the server's root")
        if not target.is_file():
            raise NotFoundError(f"no notebook {path!r}", "give a path under the server's root")
        return target

    async def call(
        self, target: Path, parameters: dict[str, Any], timeout: float | None
    ) -> CallResult:
        with self._lock:
            if self.taken >= self.queue:
                raise Busy(f"{self.taken} calls are being answered; try again later")
            self.taken += 1
        try:
            run = functools.partial(self.caller.call, target, parameters, timeout=timeout)
            return await asyncio.get_running_loop().run_in_executor(self.pool, run)
        finally:
            with self._lock:
                self.taken -= 1

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.caller.close()
        self.cache.close()


def _status(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body of an error (each of ours knows its own)."""
    if isinstance(exc, NbcacheError):
        return exc.http_status, exc.to_json()
    return 500, {"error": type(exc).__name__, "message": f"internal error: {exc}"}


class RunHandler(APIHandler):
    """``GET``/``POST`` ``/nbcache/run/<path>``: call the notebook, answer JSON."""

    def initialize(self, service: CallService) -> None:
        self.service = service

    @web.authenticated
    async def get(self, path: str) -> None:
        parameters = {
            name: literal(self.get_query_argument(name)) for name in self.request.query_arguments
        }
        await self._answer(path, parameters)

    @web.authenticated
    async def post(self, path: str) -> None:
        body = self.request.body.strip()
        try:
            parameters = json.loads(body) if body else {}
        except ValueError as exc:
            self._error(400, {"error": "BadRequest", "message": f"the body is not JSON: {exc}"})
            return
        if not isinstance(parameters, dict):
            message = 'the body must be a JSON object of parameters, like {"x": 1}'
            self._error(400, {"error": "BadRequest", "message": message})
            return
        await self._answer(path, parameters)

    async def _answer(self, path: str, parameters: dict[str, Any]) -> None:
        try:
            timeout = self._timeout()
            target = self.service.resolve(path)
            result = await self.service.call(target, parameters, timeout)
        except Exception as exc:
            status, body = _status(exc)
            if status == 503:
                self.set_header("Retry-After", "1")
            self._error(status, body)
            return
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(result.to_json()))

    def _timeout(self) -> float | None:
        raw = self.request.headers.get(TIMEOUT_HEADER)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            raise SignatureError(TIMEOUT_HEADER, f"{raw!r} is not a number of seconds") from None
        return value if value > 0 else None

    def _error(self, status: int, body: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Jupyter Server calls this when the extension is enabled."""
    settings = NbcacheServe(parent=serverapp)
    service = CallService(Path(serverapp.root_dir), settings.jobs, settings.queue)
    web_app = serverapp.web_app
    route = url_path_join(web_app.settings["base_url"], ROUTE)
    web_app.add_handlers(".*$", [(route, RunHandler, {"service": service})])
    serverapp.log.info(
        "sphinx-nbcache: notebooks under %s answer at %s (%d executing at once, cache %s)",
        service.root,
        url_path_join(web_app.settings["base_url"], "nbcache/run/"),
        service.jobs,
        service.cache.path,
    )


def main(
    root: str | Path, *, port: int = 8890, token: str | None = None, allow_root: bool = False
) -> int:
    """``nbcache serve``: Jupyter Server on 127.0.0.1 with this extension, rooted at
    ``root``, with ``token`` (default: a new random one, printed)."""
    from jupyter_server.serverapp import ServerApp

    folder = Path(root).resolve()
    if not folder.is_dir():
        raise NotFoundError(f"no folder {str(root)!r}", "give the folder to serve")
    token = token or secrets.token_hex(24)
    print(
        f"nbcache: serving the notebooks under {folder} at "
        f"http://127.0.0.1:{port}/nbcache/run/<notebook>?token={token}",
        flush=True,
    )
    argv = [
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={folder}",
        f"--IdentityProvider.token={token}",
        *(["--allow-root"] if allow_root else []),
    ]
    ServerApp.launch_instance(argv=argv, jpserver_extensions={"sphinx_nbcache": True})
    return 0
