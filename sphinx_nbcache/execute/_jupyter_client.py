"""A small client for a Jupyter server or kernel gateway: REST calls and kernel WebSockets.

Written on tornado (a dependency of jupyter_client) rather than on
``jupyter_server.gateway``: that one is a process-wide singleton and opens the kernel
WebSocket without the token. Here every request, the WebSocket included, carries
``Authorization: token ...``; every connect and request has a timeout, so a server that goes
away gives an error, never a hang.

:class:`WebSocketKernelClient` speaks the Jupyter server's JSON WebSocket protocol (one
WebSocket for all channels, each message naming its ``channel``) and offers what nbclient uses
of a kernel client; :class:`RemoteKernelManager` is the kernel manager nbclient is given.
Neither starts nor deletes kernels: the executor does that through :class:`JupyterAPI`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import struct
import urllib.parse
import uuid
from queue import Empty
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

__all__ = ["JupyterAPI", "RemoteKernelManager", "ServerError", "WebSocketKernelClient"]

_PROTOCOL_VERSION = "5.3"
_DEAD_STATES = {"restarting", "autorestarting", "dead"}  # the server lost the kernel
_MAX_MESSAGE = 512 * 1024 * 1024  # bytes of one kernel message (large images, data)


class ServerError(Exception):
    """A request to the server failed: ``status`` is the HTTP status, None when there was
    no answer (refused, timed out, reset)."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return self.message if self.status is None else f"HTTP {self.status}: {self.message}"


class JupyterAPI:
    """REST calls to one server: ``await api.call("GET", "api/kernels")``."""

    def __init__(
        self,
        url: str,
        token: str | None,
        connect_timeout: float = 10.0,
        request_timeout: float = 60.0,
        max_clients: int = 10,
    ) -> None:
        self.url = url.rstrip("/") + "/"
        self.headers = {"Authorization": f"token {token}"} if token else {}
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self._http: AsyncHTTPClient | None = None  # made on the loop that uses it
        self._max_clients = max_clients

    def endpoint(self, path: str, scheme: str | None = None) -> str:
        url = self.url + urllib.parse.quote(path)
        if scheme == "ws":
            url = "ws" + url[len("http") :]  # http -> ws, https -> wss
        return url

    async def call(
        self, method: str, path: str, body: Any = None, timeout: float | None = None
    ) -> Any:
        """The JSON answer of ``method path``; :class:`ServerError` if it is not a 2xx."""
        if self._http is None:
            self._http = AsyncHTTPClient(force_instance=True, max_clients=self._max_clients)
        data = None if body is None else json.dumps(body)
        if data is None and method in ("POST", "PUT", "PATCH"):
            data = ""
        request = HTTPRequest(
            self.endpoint(path),
            method=method,
            headers={**self.headers, "Content-Type": "application/json"},
            body=data,
            connect_timeout=self.connect_timeout,
            request_timeout=timeout or self.request_timeout,
        )
        try:
            response = await self._http.fetch(request, raise_error=False)
        except HTTPClientError as exc:  # 599: timed out, connection closed
            raise ServerError(None, f"{method} {path}: {exc.message or exc}") from None
        except OSError as exc:  # refused, unreachable, TLS
            raise ServerError(None, f"{method} {path}: {exc}") from None
        if not 200 <= response.code < 300:
            raise ServerError(response.code, f"{method} {path}: {_message(response.body)}")
        return json.loads(response.body) if response.body else None

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


def _message(body: bytes | None) -> str:
    """The server's own explanation of an error (Jupyter answers ``{"message": ...}``)."""
    text = (body or b"").decode("utf-8", "replace")
    with contextlib.suppress(ValueError, AttributeError):
        reason = json.loads(text).get("message") or json.loads(text).get("reason")
        if reason:
            return str(reason)
    return text.strip()[:300] or "(no message)"


class _Channel:
    """One channel of the kernel WebSocket, as nbclient uses it: ``get_msg`` and ``send``."""

    def __init__(self, name: str, client: WebSocketKernelClient) -> None:
        self.name = name
        self._client = client
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            raise Empty from None

    async def msg_ready(self) -> bool:
        return not self.queue.empty()

    def send(self, msg: dict[str, Any]) -> None:
        self._client.send(self.name, msg)

    def is_alive(self) -> bool:
        return self._client.alive


class WebSocketKernelClient:
    """A kernel client over ``/api/kernels/{id}/channels``, sending the token."""

    def __init__(self, api: JupyterAPI, kernel_id: str, connect_timeout: float = 10.0) -> None:
        self.api = api
        self.kernel_id = kernel_id
        self.connect_timeout = connect_timeout
        self.session = uuid.uuid4().hex
        self.allow_stdin = False
        self.shell_channel = _Channel("shell", self)
        self.iopub_channel = _Channel("iopub", self)
        self.stdin_channel = _Channel("stdin", self)
        self.control_channel = _Channel("control", self)
        self._ws: WebSocketClientConnection | None = None
        self._reader: asyncio.Future[None] | None = None
        self._stopping = False
        self.kernel_lost = False  # the server reported the kernel dead or restarting
        self.connection_lost: str | None = None  # why the WebSocket closed under us

    @property
    def alive(self) -> bool:
        return self._ws is not None and self.connection_lost is None and not self.kernel_lost

    async def start_channels(self) -> None:
        url = self.api.endpoint(f"api/kernels/{self.kernel_id}/channels", scheme="ws")
        request = HTTPRequest(
            f"{url}?session_id={self.session}",
            headers=dict(self.api.headers),
            connect_timeout=self.connect_timeout,
            request_timeout=self.connect_timeout,
        )
        try:
            self._ws = await websocket_connect(
                request, max_message_size=_MAX_MESSAGE, ping_interval=20, ping_timeout=20
            )
        except HTTPClientError as exc:
            raise ServerError(exc.code if exc.code != 599 else None, f"WebSocket: {exc}") from None
        except OSError as exc:
            raise ServerError(None, f"WebSocket: {exc}") from None
        self._reader = asyncio.ensure_future(self._read(self._ws))

    async def _read(self, ws: WebSocketClientConnection) -> None:
        while True:
            frame = await ws.read_message()
            if frame is None:
                if not self._stopping:
                    reason = ws.close_reason or f"closed with code {ws.close_code}"
                    self.connection_lost = reason
                return
            try:
                msg = decode_message(frame)
            except (ValueError, struct.error):
                continue
            name = msg.pop("channel", "")
            channel = {"shell": self.shell_channel, "iopub": self.iopub_channel}.get(name)
            if channel is None:
                continue  # stdin (never allowed), control: not used
            if (
                channel is self.iopub_channel
                and msg.get("header", {}).get("msg_type") == "status"
                and msg.get("content", {}).get("execution_state") in _DEAD_STATES
            ):
                self.kernel_lost = True
            channel.queue.put_nowait(msg)

    def send(self, channel: str, msg: dict[str, Any]) -> None:
        if self._ws is None or not self.alive:
            return  # is_alive() says so; nbclient reports the kernel dead
        future = self._ws.write_message(json.dumps({**msg, "channel": channel}))
        future.add_done_callback(lambda f: f.exception())  # a closed socket: seen by _read

    def _request(self, msg_type: str, content: dict[str, Any]) -> str:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "username": "nbcache",
            "session": self.session,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "version": _PROTOCOL_VERSION,
        }
        msg = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
        self.send("shell", {**msg, "buffers": []})
        return msg_id

    def execute(
        self,
        code: str,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool | None = None,
        stop_on_error: bool = True,
    ) -> str:
        content = {
            "code": code,
            "silent": silent,
            "store_history": store_history,
            "user_expressions": user_expressions or {},
            "allow_stdin": False,
            "stop_on_error": stop_on_error,
        }
        return self._request("execute_request", content)

    def kernel_info(self) -> str:
        return self._request("kernel_info_request", {})

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        """Until the kernel answers a kernel_info request (RuntimeError after ``timeout``)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if not self.alive:
                raise RuntimeError(f"the kernel is gone: {self.connection_lost or 'it died'}")
            msg_id = self.kernel_info()
            try:
                while True:
                    reply = await self.shell_channel.get_msg(timeout=1.0)
                    if reply.get("parent_header", {}).get("msg_id") == msg_id:
                        break
                break
            except Empty:
                if deadline is not None and loop.time() > deadline:
                    raise RuntimeError(f"the kernel did not answer within {timeout:g} s") from None
        while not self.iopub_channel.queue.empty():  # start-up noise
            self.iopub_channel.queue.get_nowait()

    async def is_alive(self) -> bool:
        return self.alive

    def stop_channels(self) -> None:
        """Close the WebSocket (the kernel keeps running: the executor deletes it)."""
        self._stopping = True
        if self._ws is not None:
            self._ws.close()
        if self._reader is not None:
            self._reader.cancel()

    @property
    def channels_running(self) -> bool:
        return self.alive


def decode_message(frame: str | bytes) -> dict[str, Any]:
    """A WebSocket frame of the JSON protocol: text, or the binary layout (``!I`` count,
    ``!I`` offsets, then the JSON message and its buffers) used when it has buffers."""
    if isinstance(frame, str):
        msg: dict[str, Any] = json.loads(frame)
        return msg
    (count,) = struct.unpack_from("!I", frame, 0)
    offsets = [*struct.unpack_from(f"!{count}I", frame, 4), len(frame)]
    parts = [frame[offsets[i] : offsets[i + 1]] for i in range(count)]
    msg = json.loads(parts[0].decode("utf-8"))
    msg["buffers"] = parts[1:]
    return msg


class RemoteKernelManager(AsyncKernelManager):
    """The kernel manager nbclient gets for a remote kernel: it hands out the WebSocket
    client and interrupts through the REST API; the executor starts and deletes kernels."""

    def __init__(self, client: WebSocketKernelClient, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.remote_client = client
        self.remote_id = client.kernel_id

    def client(self, **kwargs: Any) -> Any:
        return self.remote_client

    @property
    def has_kernel(self) -> bool:
        return True

    # AsyncKernelManager's methods are coroutines too; its stubs inherit the sync signatures
    async def is_alive(self) -> bool:  # type: ignore[override]
        return self.remote_client.alive

    async def interrupt_kernel(self) -> None:  # type: ignore[override]
        api = self.remote_client.api
        await api.call("POST", f"api/kernels/{self.remote_id}/interrupt")

    async def shutdown_kernel(  # type: ignore[override]
        self, now: bool = False, restart: bool = False
    ) -> None:
        self.remote_client.stop_channels()

    async def cleanup_resources(self, restart: bool = False) -> None:  # type: ignore[override]
        return None
