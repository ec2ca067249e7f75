"""Every notebook under a Jupyter server's root as a REST endpoint: ``/nbcache/run/<path>``.

A Jupyter Server extension (``jupyter server
--ServerApp.jpserver_extensions="{'sphinx_nbcache': True}"``, or ``nbcache serve``)::

    GET  /nbcache/run/models/forecast?city=Oslo&days=5       (a page name, or forecast.md)
    POST /nbcache/run/models/forecast.md      {"city": "Oslo", "days": 5}
    ->   {"result": ..., "cached": true, "record": "<id>", "seconds": 0.01}

Calls go through :class:`.Caller` on the cache of the server's root (its
``conf.py`` options, if it has one): answered from the cache when the same code ran with the
same parameters, identical calls in flight joined. At most ``NbcacheServe.jobs`` notebooks
execute at once (default ``nbcache_serve_jobs``); at most ``NbcacheServe.queue`` calls are
taken at once, beyond which the answer is 503.

Trust (docs/security.md): Jupyter Server's authentication applies, then its authorizer
(action ``execute`` on resource ``nbcache``), then, for a GET authenticated by the login
cookie alone, Jupyter's XSRF check (a token in the header or URL needs none). Query values
are JSON literals, else text (never YAML: no aliases); ``token`` and ``_xsrf`` are Jupyter's,
never parameters. Parameters over ``NbcacheServe.max_parameter_bytes`` are refused (413) before
they are read; every malformed input is a 4xx with a JSON body; the ``X-Nbcache-Timeout``
header may shorten the notebook's own per-cell timeout, never lengthen it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import math
import os
import secrets
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from traitlets import Integer
from traitlets.config import Configurable

from .errors import NbcacheError, NotFoundError, SignatureError
from .notebooks.parameters import json_literal
from .workflows import kinds as _kinds  # noqa: F401  (the workflows' dependency kinds)
from .workflows.calls import Caller, CallResult
from .workflows.link import serve_kernels

__all__ = ["AUTH_RESOURCE", "CallService", "NbcacheServe", "RunHandler", "main"]

ROUTE = "nbcache/run/(.*)"
TIMEOUT_HEADER = "X-Nbcache-Timeout"
#: the resource Jupyter's authorizer is asked about (action ``execute``)
AUTH_RESOURCE = "nbcache"
#: query arguments that belong to Jupyter Server (authentication), never parameters
JUPYTER_ARGUMENTS = frozenset({"token", "_xsrf"})
#: the Jupyter services ``nbcache serve`` starts without ``--full-server``: /api/status, /login
MINIMAL_SERVICES = ("api", "auth")


_Handler = Callable[..., Awaitable[None]]
#: Jupyter's authorizer decides: may this user ``execute`` on ``nbcache`` (403 if not)
_execute: Callable[[_Handler], _Handler] = authorized("execute", resource=AUTH_RESOURCE)


class NbcacheServe(Configurable):
    """Settings of the ``/nbcache/run/`` endpoints (``--NbcacheServe.jobs=2``)."""

    jobs = Integer(0, config=True, help="notebooks executing at once (0: nbcache_serve_jobs)")
    queue = Integer(100, config=True, help="calls taken at once; more are refused (503)")
    max_parameter_bytes = Integer(
        65536, config=True, help="bytes of parameters (query string or body) a call may carry"
    )


class Busy(NbcacheError):
    """Too many calls are waiting."""

    http_status = 503


class Refused(NbcacheError):
    """A path outside the server's root, or hidden."""

    http_status = 403


class BadRequest(NbcacheError):
    """A request that cannot be read (status 400, or the status given)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message, status)
        self.message = message
        self.http_status = status

    def __str__(self) -> str:
        return self.message


class CallService:
    """The calls of one server: one cache, one engine (its executor and warm kernels kept
    for every call), a bounded number of calls taken at once."""

    def __init__(
        self, root: Path, jobs: int = 0, queue: int = 100, max_parameter_bytes: int = 65536
    ) -> None:
        from .engine.cache import open_project

        self.root = root.resolve()
        self.cache = open_project(self.root)
        self.jobs = jobs or self.cache.options.serve_jobs
        self.caller = Caller(self.cache, jobs=self.jobs)
        self.caller.engine.kernel_link = serve_kernels  # calls inside calls: through the server
        self.queue = max(1, queue)
        self.max_parameter_bytes = max(1, max_parameter_bytes)
        self.pool = concurrent.futures.ThreadPoolExecutor(self.queue, "nbcache-call")
        self._lock = threading.Lock()
        self.taken = 0  # calls being answered now

    def resolve(self, path: str) -> Path:
        """The notebook at ``path`` (URL path under the root: a file, or a page name without
        its suffix); refuses anything outside the root or hidden."""
        if any(ord(c) < 32 or c == "\x7f" for c in path):
            raise BadRequest(f"the path {path!r} holds control characters")
        relative = Path(path)
        target = (self.root / relative).resolve()
        if relative.is_absolute() or not target.is_relative_to(self.root):
            raise Refused(f"{path!r} is outside the server's root")
        if any(part.startswith(".") for part in target.relative_to(self.root).parts):
            raise Refused(f"{path!r} is in a hidden folder or file")
        if target.is_file():
            return target
        options = self.cache.options
        for suffix in dict.fromkeys((".ipynb", ".md", *options.notebook_suffixes)):
            named = target.with_name(target.name + suffix)
            if target.name and named.is_file():
                return named
        raise NotFoundError(
            f"no notebook {path!r}", "give a file path or a page name under the server's root"
        )

    async def call(
        self, target: Path, parameters: dict[str, Any], timeout: float | None
    ) -> CallResult:
        with self._lock:
            if self.taken >= self.queue:
                raise Busy(f"{self.taken} calls are being answered; try again later")
            self.taken += 1
        try:
            run = functools.partial(self._call, target, parameters, timeout)
            return await asyncio.get_running_loop().run_in_executor(self.pool, run)
        finally:
            with self._lock:
                self.taken -= 1

    def _call(self, target: Path, parameters: dict[str, Any], asked: float | None) -> CallResult:
        """A call with the per-cell timeout ``asked`` for, never longer than the notebook's."""
        timeout = asked
        if asked is not None:
            from .plan.parse import inspect_page

            page = self.caller.page(target)
            run, _memo = inspect_page(page, self.cache.options, self.cache.project.md_config)
            own = run.options.timeout
            timeout = asked if own is None else min(asked, own)
        return self.caller.call(target, parameters, timeout=timeout)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.caller.close()
        self.cache.close()


def _status(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body of an error (each of ours knows its own)."""
    if isinstance(exc, web.HTTPError):
        message = exc.log_message or exc.reason or "bad request"
        return exc.status_code, {"error": "HTTPError", "message": message}
    if isinstance(exc, NbcacheError):
        return exc.http_status, exc.to_json()
    return 500, {"error": type(exc).__name__, "message": f"internal error: {exc}"}


class RunHandler(APIHandler):
    """``GET``/``POST`` ``/nbcache/run/<path>``: call the notebook, answer JSON."""

    auth_resource = AUTH_RESOURCE

    def initialize(self, service: CallService) -> None:
        self.service = service

    @web.authenticated
    @_execute
    async def get(self, path: str) -> None:
        # a GET runs code: a login cookie alone (a link from another site) is not enough
        self.check_xsrf_cookie()
        await self._answer(path, self._query_parameters)

    @web.authenticated
    @_execute
    async def post(self, path: str) -> None:
        await self._answer(path, self._body_parameters)

    def _query_parameters(self) -> dict[str, Any]:
        self._bounded(len(self.request.query))
        return {
            name: json_literal(self.get_query_argument(name), f"query argument {name!r}")
            for name in self.request.query_arguments
            if name not in JUPYTER_ARGUMENTS
        }

    def _body_parameters(self) -> dict[str, Any]:
        body = self.request.body
        self._bounded(len(body))
        try:
            parameters = json.loads(body) if body.strip() else {}
        except (ValueError, RecursionError) as exc:  # RecursionError: nesting too deep
            raise BadRequest(f"the body is not JSON: {str(exc)[:200]}") from None
        if not isinstance(parameters, dict):
            raise BadRequest('the body must be a JSON object of parameters, like {"x": 1}')
        return parameters

    def _bounded(self, size: int) -> None:
        limit = self.service.max_parameter_bytes
        if size > limit:
            raise BadRequest(
                f"the parameters take {size} bytes; at most {limit} are accepted "
                "(NbcacheServe.max_parameter_bytes)",
                413,
            )

    async def _answer(self, path: str, read: Any) -> None:
        try:
            parameters = read()
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
        """The per-cell timeout asked for (None: the notebook's own)."""
        raw = self.request.headers.get(TIMEOUT_HEADER)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise SignatureError(TIMEOUT_HEADER, f"{raw[:40]!r} is not a number of seconds")
        return value if value > 0 else None

    def _error(self, status: int, body: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors raised before a call (authentication, authorization, XSRF) as JSON with the
        fields of the others."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = "internal error"
        if isinstance(exc, web.HTTPError):
            message = exc.log_message or exc.reason or str(status_code)
        self._error(status_code, {"error": self._reason, "message": message})


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Jupyter Server calls this when the extension is enabled."""
    settings = NbcacheServe(parent=serverapp)
    service = CallService(
        Path(serverapp.root_dir), settings.jobs, settings.queue, settings.max_parameter_bytes
    )
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
    root: str | Path,
    *,
    port: int = 8890,
    token: str | None = None,
    allow_root: bool = False,
    full_server: bool = False,
) -> int:
    """``nbcache serve``: Jupyter Server on 127.0.0.1 with this extension, rooted at
    ``root``, with ``token`` (default: a new random one, printed). Without ``full_server``,
    only the endpoint, /api/status and the login page: no contents, files, kernels,
    sessions or terminals APIs, and no other server extension."""
    from jupyter_server.serverapp import ServerApp

    folder = Path(root).resolve()
    if not folder.is_dir():
        raise NotFoundError(f"no folder {str(root)!r}", "give the folder to serve")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        if not allow_root:
            raise NbcacheError(
                "refusing to serve as root: every notebook called would run as root. Run "
                "`nbcache serve` as another user, or pass --allow-root (in a container)"
            )
        print(
            "nbcache: running as root (--allow-root): every notebook called runs as root",
            flush=True,
        )
    token = token or secrets.token_hex(24)

    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

    class NoFilesContentsManager(AsyncLargeFileManager):
        """Jupyter's contents manager without its /files/ handler (the server's root as
        static files)."""

        def get_extra_handlers(self) -> list[Any]:
            return []

    class NbcacheServerApp(ServerApp):
        name = "nbcache-serve"
        # a subset of Jupyter's services (its stubs type the attribute as its own 13-tuple)
        default_services = ServerApp.default_services if full_server else MINIMAL_SERVICES  # type: ignore[assignment]

    argv = [
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={folder}",
        f"--IdentityProvider.token={token}",
        *(["--allow-root"] if allow_root else []),
        *([] if full_server else ["--ServerApp.terminals_enabled=False"]),
        # a body is read whole before authentication: keep it small without the contents API
        *([] if full_server else [f"--ServerApp.max_body_size={2**20}"]),
    ]
    only = {} if full_server else {"contents_manager_class": NoFilesContentsManager}
    app = NbcacheServerApp.instance(jpserver_extensions={"sphinx_nbcache": True}, **only)
    app.initialize(argv=argv, find_extensions=full_server)
    print(
        f"nbcache: serving the notebooks under {folder} at "
        f"http://127.0.0.1:{app.port}/nbcache/run/<notebook>?token={token}\n"
        "  <notebook>: a file path or a page name (models/forecast); add parameters as "
        "&name=value (JSON literals), or POST them as a JSON object",
        flush=True,
    )
    app.start()
    return 0
