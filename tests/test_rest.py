"""Notebooks as REST endpoints: real HTTP requests to a real ``jupyter server`` on 127.0.0.1
with the sphinx-nbcache extension enabled; executions counted inside the kernels."""

from __future__ import annotations

import json
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import services

pytestmark = [pytest.mark.kernel, pytest.mark.services]

HEADER = """---
jupytext:
  text_representation:
    format_name: myst
kernelspec:
  name: python3
  display_name: Python 3
---
"""


def page(*cells: tuple[str, str]) -> str:
    """A MyST notebook: (tags, code) cells."""
    body = "".join(
        f"```{{code-cell}}\n{f':tags: [{tags}]' + chr(10) if tags else ''}{code}\n```\n\n"
        for tags, code in cells
    )
    return HEADER + "\n" + body


LOG = (  # the first cell of each: how the tests count executions, inside the kernels
    'import os\nwith open(os.environ["NBCACHE_TEST_LOG"], "a") as log:\n'
    '    log.write({name} + "\\n")'
)

NOTEBOOKS = {
    "models/double.md": page(
        ("parameters", 'x = 1\ns = "a"'),
        ("", LOG.format(name='f"double-{x}"')),
        ("skip", "print('never in a call')"),
        ("return", '{"y": x * 2, "s": s.upper()}'),
    ),
    "models/raises.md": page(
        ("parameters", "n = 1"),
        ("", 'raise ValueError(f"bad input {n}")'),
    ),
    "models/slow.md": page(
        ("parameters", "pause = 0.0"),
        ("", LOG.format(name='f"slow-{pause}"')),
        ("", "import time\ntime.sleep(pause)"),
        ("return", "pause"),
    ),
}


@dataclass
class Server:
    url: str
    token: str
    log: Path
    service: services.Service

    def call(
        self,
        path: str,
        query: str = "",
        body: Any = None,
        token: str | None = "default",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) of GET (or POST with ``body``) /nbcache/run/<path>?<query>."""
        url = f"{self.url}/nbcache/run/{path}" + (f"?{query}" if query else "")
        data = (
            None
            if body is None
            else (body if isinstance(body, bytes) else json.dumps(body).encode())
        )
        request = urllib.request.Request(
            url, data=data, method="POST" if data is not None else "GET"
        )
        if token is not None:
            request.add_header(
                "Authorization", f"token {self.token if token == 'default' else token}"
            )
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return int(response.status), json.loads(response.read())
        except urllib.error.HTTPError as exc:
            text = exc.read()
            try:
                return int(exc.code), json.loads(text)
            except ValueError:
                return int(exc.code), {"text": text.decode(errors="replace")}

    def executed(self) -> Counter[str]:
        return Counter(line for line in self.log.read_text().split() if line)


def start_server(
    base: Path,
    *extra: str,
    notebooks: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> Server:
    """A ``jupyter server`` with the extension, rooted at ``base/root`` holding ``notebooks``
    (default: :data:`NOTEBOOKS`), with ``env`` added to its environment."""
    root = base / "root"
    for name, text in (notebooks or NOTEBOOKS).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    log = base / "kernel.log"
    log.write_text("")
    child = services.child_env(base)
    child["NBCACHE_TEST_LOG"] = str(log)
    child.update(env or {})
    token = secrets.token_hex(16)
    port = services.free_port()
    service = services.start(
        "jupyter-nbcache",
        [sys.executable, "-m", "jupyter_server", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--no-browser",
         "--allow-root", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--ServerApp.jpserver_extensions={'sphinx_nbcache': True}", *extra],
        base,
        env=child,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    services.wait_until(service, lambda: services.http_status(f"{url}/api/status", token) == 200)
    return Server(url, token, log, service)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("rest"))
    yield running
    running.service.stop()
    assert not running.service.alive()


def test_a_call_executes_once_then_answers_from_the_cache(server: Server) -> None:
    status, cold = server.call("models/double.md", "x=3&s=foo")
    assert status == 200, cold
    assert cold["result"] == {"y": 6, "s": "FOO"}
    assert cold["cached"] is False
    assert server.executed()["double-3"] == 1

    status, warm = server.call("models/double.md", "s=foo&x=3")  # the same call
    assert status == 200
    assert warm["cached"] is True
    assert warm["record"] == cold["record"]
    assert warm["seconds"] < cold["seconds"]
    status, posted = server.call("models/double.md", body={"x": 3, "s": "foo"})
    assert (status, posted["cached"], posted["record"]) == (200, True, cold["record"])
    assert server.executed()["double-3"] == 1  # no kernel ran for either

    status, other = server.call("models/double.md", body={"x": 4})  # parameters change the key
    assert status == 200
    assert other["result"] == {"y": 8, "s": "A"}
    assert other["record"] != cold["record"]
    assert server.executed()["double-4"] == 1
    status, literal = server.call("models/double.md", "x=4")  # "4" read as the number 4
    assert (status, literal["record"]) == (200, other["record"])


def test_every_error_has_its_status(server: Server) -> None:
    status, body = server.call("models/double.md", "x=1", token=None)
    assert status == 403
    assert server.call("models/double.md", "x=1", token="wrong")[0] == 403
    status, body = server.call("models/nope.md")
    assert status == 404
    assert "no notebook" in body["message"]
    status, body = server.call("%2E%2E/%2E%2E/etc/passwd")
    assert status == 403
    assert "outside the server's root" in body["message"]
    status, body = server.call("models/double.md", "z=1")
    assert status == 400
    assert "no parameter 'z'" in body["message"]
    status, body = server.call("models/double.md", body=[1, 2])
    assert status == 400
    assert "JSON object" in body["message"]
    assert server.call("models/double.md", body=b"{not json")[0] == 400

    status, body = server.call("models/raises.md", "n=7")
    assert status == 422, body
    assert (body["ename"], body["evalue"], body["cell"]) == ("ValueError", "bad input 7", 2)
    assert "raise ValueError" in body["traceback"]
    assert "\x1b[" not in body["traceback"]  # text, no terminal colours

    status, body = server.call("models/slow.md", "pause=30", headers={"X-Nbcache-Timeout": "1"})
    assert status == 504, body
    assert body["cell"] == 3


def test_identical_calls_in_flight_run_once(server: Server) -> None:
    answers: list[tuple[int, dict[str, Any]]] = []

    def call() -> None:
        answers.append(server.call("models/slow.md", "pause=1.5"))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in answers] == [200, 200, 200]
    assert len({body["record"] for _, body in answers}) == 1
    assert server.executed()["slow-1.5"] == 1


def test_a_full_queue_answers_503(tmp_path: Path) -> None:
    small = start_server(tmp_path, "--NbcacheServe.jobs=1", "--NbcacheServe.queue=1")
    try:
        answers: list[tuple[int, dict[str, Any]]] = []
        first = threading.Thread(
            target=lambda: answers.append(small.call("models/slow.md", "pause=3"))
        )
        first.start()
        begin = time.monotonic()
        while not small.executed()["slow-3"]:  # the first call is executing
            assert time.monotonic() - begin < 60, small.service.log_tail()
            time.sleep(0.02)
        status, body = small.call("models/slow.md", "pause=0.5")
        assert status == 503, body
        assert "try again later" in body["message"]
        first.join()
        assert answers[0][0] == 200
        assert small.call("models/slow.md", "pause=0.5")[0] == 200  # the queue is free again
    finally:
        small.service.stop()
    assert not small.service.alive()


def test_nbcache_serve_starts_the_extension_on_loopback_with_a_token(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "models").mkdir(parents=True)
    (root / "models" / "double.md").write_text(NOTEBOOKS["models/double.md"])
    port = services.free_port()
    service = services.start(
        "nbcache-serve",
        [
            sys.executable,
            "-m",
            "sphinx_nbcache.cli",
            "serve",
            str(root),
            "--port",
            str(port),
            "--allow-root",
        ],
        tmp_path,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        printed: dict[str, str] = {}

        def announced() -> bool:  # the token is printed with the address, before serving
            found = re.search(r"/nbcache/run/<notebook>\?token=(\w+)", service.log.read_text())
            if found:
                printed["token"] = found.group(1)
            return bool(found) and services.http_status(f"{url}/api/status") in (200, 403)

        services.wait_until(service, announced)
        server = Server(url, printed["token"], tmp_path / "none.log", service)
        status, body = server.call("models/double.md", "nope=1")
        assert status == 400, body
        assert server.call("models/double.md", "nope=1", token=None)[0] == 403
    finally:
        service.stop()
    assert not service.alive()
