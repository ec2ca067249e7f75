"""Hostile input against the real thing (issue 24): the REST endpoint on a real Jupyter server,
``nbcache serve``, a real Dask cluster, a real gzip bomb, the real CLI, real kernels.

One test per row of the issue's table; each performs the attack and checks the outcome.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.cookiejar
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import services
from test_rest import NOTEBOOKS, Server, start_server

from sphinx_nbcache.errors import ArchiveError, ParameterError

pytestmark = [pytest.mark.kernel]

#: a notebook whose own per-cell timeout (1 s) is shorter than the pause it is asked for
CAPPED = (
    "---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n"
    "  name: python3\n  display_name: Python 3\nmystnb:\n  execution_timeout: 1\n---\n\n"
    "```{code-cell}\n:tags: [parameters]\npause = 0.0\n```\n\n"
    "```{code-cell}\nimport time\ntime.sleep(pause)\n```\n\n"
    "```{code-cell}\n:tags: [return]\npause\n```\n"
)


def start(base: Path, *extra: str, env: dict[str, str] | None = None) -> Server:
    """A ``jupyter server`` with the extension: test_rest's notebooks, plus models/capped.md."""
    notebooks = {**NOTEBOOKS, "models/capped.md": CAPPED}
    return start_server(base, *extra, notebooks=notebooks, env=env)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start(tmp_path_factory.mktemp("hostile"), "--NbcacheServe.max_parameter_bytes=8192")
    yield running
    running.service.stop()
    assert not running.service.alive()


def fetch(
    url: str,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of a plain request; a body that is not JSON fails the test."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=120) as response:
            status, text = int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        status, text = int(exc.code), exc.read()
    try:
        return status, json.loads(text)
    except ValueError:
        raise AssertionError(f"{status}: not a JSON body: {text[:200]!r}") from None


# -- 1. query values: no YAML anchors or aliases; parameters bounded before anything --------


def laughs(levels: int) -> str:
    """A YAML flow sequence of ~30 characters per level whose aliases expand 9 times each."""
    items = ["[&a0 [1,1,1,1,1,1,1,1,1]"]
    for level in range(1, levels):
        items.append(f"&a{level} [" + ",".join([f"*a{level - 1}"] * 9) + "]")
    return ",".join(items) + "]"


@pytest.mark.services
def test_query_values_never_expand_and_parameters_are_bounded(server: Server) -> None:
    value = laughs(6)
    assert len(value) < 300
    status, body = server.call("models/double.md", "x=" + urllib.request.quote(value))
    assert status == 200, body
    assert body["result"] == {"y": value * 2, "s": "A"}  # the text, not 9**6 ones
    status, body = server.call("models/double.md", 'x=[1,%202]&s="quoted"')  # JSON literals
    assert (status, body["result"]) == (200, {"y": [1, 2, 1, 2], "s": "QUOTED"})

    big = "a" * 9000  # over the 8192 bytes this server allows: refused before any check
    status, body = server.call("models/double.md", f"s={big}")
    assert status == 413, body
    assert "8192" in body["message"]
    status, body = server.call("models/double.md", body={"s": big})
    assert status == 413, body
    status, body = server.call("models/double.md", f"nope={big}")  # not even named first
    assert status == 413, body
    assert server.executed()[f"double-{big}"] == 0

    from sphinx_nbcache.cli.calls import parse_parameters

    with pytest.raises(ParameterError, match="alias"):  # `nbcache run -p x VALUE` and `-y`
        parse_parameters([["x", value]], [])
    with pytest.raises(ParameterError, match="alias"):
        parse_parameters([], [f"x: {value}"])


# -- 2. the token is never a parameter ---------------------------------------------------------


@pytest.mark.services
def test_token_and_xsrf_query_arguments_are_not_parameters(server: Server) -> None:
    url = f"{server.url}/nbcache/run/models/double.md?x=21&token={server.token}"
    status, body = fetch(url)  # the URL as `nbcache serve` prints it, with a parameter added
    assert status == 200, body
    assert body["result"] == {"y": 42, "s": "A"}
    status, body = server.call("models/double.md", "x=21&_xsrf=anything")
    assert status == 200, body
    assert body["record"] == fetch(url)[1]["record"]  # the same call: neither was a parameter


# -- 3. a cross-site link after a browser login runs nothing -----------------------------------


@pytest.mark.services
def test_a_cross_site_get_with_only_the_login_cookie_is_refused(server: Server) -> None:
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    # the user opened the printed URL once: Jupyter keeps them logged in with a cookie
    assert fetch(f"{server.url}/api/status?token={server.token}", opener=browser)[0] == 200
    assert any(c.name.startswith("username-") for c in jar)
    evil = {"Referer": "https://evil.example/page.html"}
    link = f"{server.url}/nbcache/run/models/double.md?x=666"
    status, body = fetch(link, headers=evil, opener=browser)
    assert status == 403, body
    status, body = fetch(link, opener=browser)  # no Referer at all (rel=noreferrer)
    assert status == 403, body
    assert server.executed()["double-666"] == 0
    # the same page of the same server (a form with its _xsrf token) still works
    # any page of Jupyter's sets the _xsrf cookie its own forms and scripts send back
    with contextlib.suppress(urllib.error.HTTPError):
        browser.open(f"{server.url}/login", timeout=30).close()
    xsrf = next(c.value for c in jar if c.name == "_xsrf")
    status, body = fetch(link, headers={"X-XSRFToken": xsrf}, opener=browser)
    assert status == 200, body
    # header tokens (what scripts send) need nothing more
    assert server.call("models/double.md", "x=666")[0] == 200


# -- 4. nbcache serve: only the endpoint, root said first, authorizer, page names -------------


def serve(tmp_path: Path, *extra: str) -> tuple[services.Service, int]:
    root = tmp_path / "docs"
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "models" / "double.md").write_text(NOTEBOOKS["models/double.md"])
    port = services.free_port()
    argv = [sys.executable, "-m", "sphinx_nbcache.cli", "serve", str(root), "--port", str(port)]
    env = services.child_env(tmp_path)
    env["NBCACHE_TEST_LOG"] = str(tmp_path / "kernel.log")
    return services.start("nbcache-serve", [*argv, *extra], tmp_path, env=env), port


@pytest.mark.services
def test_nbcache_serve_runs_only_the_endpoint_and_its_url_works_as_printed(
    tmp_path: Path,
) -> None:
    service, port = serve(tmp_path, "--allow-root")
    try:
        printed: list[str] = []

        def announced() -> bool:
            found = re.search(
                r"(http://\S+/nbcache/run/<notebook>\?token=\w+)", service.log.read_text()
            )
            if found and not printed:
                printed.append(found.group(1))
            return bool(found) and services.http_status(f"http://127.0.0.1:{port}/api/status") in (
                200,
                403,
            )

        services.wait_until(service, announced)
        log = service.log.read_text()
        if os.geteuid() == 0:  # said before claiming to serve
            assert "as root" in log.split("serving")[0], log
        url = printed[0].replace("<notebook>", "models/double")  # a page name, as a user would
        status, body = fetch(url + "&x=4")
        assert status == 200, body
        assert body["result"] == {"y": 8, "s": "A"}
        token = url.rsplit("=", 1)[1]
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"token {token}"}
        for path in (
            "api/contents",
            "api/kernels",
            "api/terminals",
            "api/sessions",
            "files/models/double.md",
        ):
            request = urllib.request.Request(f"{base}/{path}", headers=auth)
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    got = int(response.status)
            except urllib.error.HTTPError as exc:
                got = int(exc.code)
            assert got == 404, f"{path} answered {got}"
        request = urllib.request.Request(f"{base}/api/kernels", data=b"{}", headers=auth)
        with pytest.raises(urllib.error.HTTPError) as started:  # start a kernel: no such API
            urllib.request.urlopen(request, timeout=30).close()
        assert started.value.code == 404
        big = json.dumps({"s": "a" * 70_000}).encode()  # the default limit is 64 KiB
        status, body = fetch(f"{base}/nbcache/run/models/double.md", data=big, headers=auth)
        assert status == 413, body
    finally:
        service.stop()
    assert not service.alive()


@pytest.mark.services
@pytest.mark.skipif(os.geteuid() != 0, reason="the root check needs root")
def test_nbcache_serve_as_root_refuses_before_claiming_to_serve(tmp_path: Path) -> None:
    service, _port = serve(tmp_path)
    assert service.process.wait(timeout=120) == 2
    log = service.log.read_text()
    assert "refusing to serve as root" in log, log
    assert "--allow-root" in log, log
    assert "serving" not in log, log


AUTHORIZER = '''
import os
from jupyter_server.auth import Authorizer


class NoNotebookCalls(Authorizer):
    """Every user may read the server's status; nobody may call notebooks."""

    def is_authorized(self, handler, user, action, resource):
        with open(os.environ["AUTHZ_LOG"], "a") as log:
            log.write(f"{action} {resource}\\n")
        return resource != "nbcache"
'''


@pytest.mark.services
def test_handlers_consult_the_authorizer_and_take_page_names(tmp_path: Path) -> None:
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "hostile_authz.py").write_text(AUTHORIZER)
    asked = tmp_path / "authz.log"
    path = os.pathsep.join([str(tmp_path / "plugin"), os.environ.get("PYTHONPATH", "")])
    env = {"PYTHONPATH": path, "AUTHZ_LOG": str(asked)}
    refusing = start(
        tmp_path / "server", "--ServerApp.authorizer_class=hostile_authz.NoNotebookCalls", env=env
    )
    try:
        status, body = refusing.call("models/double.md", "x=5")
        assert status == 403, body
        assert "nbcache" in body["message"]
        assert refusing.call("models/double", body={"x": 5})[0] == 403
        assert refusing.executed()["double-5"] == 0
        assert "execute nbcache" in asked.read_text().split("\n")
    finally:
        refusing.service.stop()
    plain = start(tmp_path / "plain")
    try:
        status, by_name = plain.call("models/double", "x=5")
        assert status == 200, by_name
        status, by_file = plain.call("models/double.md", "x=5")
        assert (status, by_file["record"]) == (200, by_name["record"])
        assert plain.call("models/nope", "x=5")[0] == 404
    finally:
        plain.service.stop()


# -- 5. malformed input is a 4xx with a JSON body --------------------------------------------


@pytest.mark.services
def test_malformed_input_is_a_4xx_with_a_json_body(server: Server) -> None:
    digits = "9" * 5000
    cases: list[tuple[str, str, Any, dict[str, str]]] = [
        ("a 5000-digit integer (GET)", f"x={digits}", None, {}),
        ("a 5000-digit integer (POST)", "", f'{{"x": {digits}}}'.encode(), {}),
        ("deeply nested JSON", "", b'{"x": ' + b"[" * 4000 + b"]" * 4000 + b"}", {}),
        ("a lone surrogate (POST)", "", b'{"s": "\\ud800"}', {}),
        ("a lone surrogate key", "", b'{"\\udc00": 1}', {}),
        ("a lone surrogate (GET)", "s=%ED%A0%80", None, {}),
        ("infinity", "", b'{"x": Infinity}', {}),
        ("a timeout of inf", "x=1", None, {"X-Nbcache-Timeout": "inf"}),
        ("a timeout of nan", "x=1", None, {"X-Nbcache-Timeout": "nan"}),
        ("a timeout of text", "x=1", None, {"X-Nbcache-Timeout": "soon"}),
    ]
    for what, query, data, headers in cases:
        status, body = server.call("models/double.md", query, body=data, headers=headers)
        assert 400 <= status < 500, (what, status, body)
        assert body.get("message"), (what, body)
    for path in ("models/dou%00ble.md", "models%00/double.md", "%00"):
        status, body = server.call(path, "x=1")
        assert 400 <= status < 500, (path, status, body)
        assert body.get("message"), (path, body)
    # the timeout header may shorten the notebook's own timeout (1 s), never lengthen it
    status, body = server.call("models/capped.md", "pause=4", headers={"X-Nbcache-Timeout": "1e9"})
    assert status == 504, body
    status, body = server.call("models/capped.md", "pause=0.1", headers={"X-Nbcache-Timeout": "60"})
    assert status == 200, body


# -- 6. the local Dask cluster needs its certificate -------------------------------------------


@pytest.mark.services
def test_the_local_dask_cluster_refuses_clients_without_its_certificate() -> None:
    from distributed import Client

    from sphinx_nbcache.execute import Job
    from sphinx_nbcache.execute._dask import DaskExecutor

    executor = DaskExecutor(url=None, jobs=1)
    try:
        address = executor.address
        assert address.startswith("tls://127.0.0.1:"), address
        # another local user knows the port, not the certificate: no task of theirs runs
        for tried in (address, address.replace("tls://", "tcp://")):
            with (
                pytest.raises(Exception) as refused,  # noqa: PT011 (TLS or a timeout: any refusal)
                Client(tried, timeout=3) as intruder,
            ):
                intruder.submit(os.getpid).result(timeout=10)
            assert not isinstance(refused.value, AssertionError)
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
        job = Job(key="e" * 64, notebook=notebook, page="tls")
        outcome = executor.submit(job).result(timeout=120)  # the build's own tasks still run
        assert outcome.record.status == "ok", outcome.record.failure
    finally:
        executor.shutdown()


# -- 7. archive import is bounded and streamed ----------------------------------------------


class Zeros(io.RawIOBase):
    """``size`` zero bytes, read in chunks (the bomb is never held in memory here)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def bomb(path: Path, size: int, members: int = 1) -> Path:
    manifest = json.dumps({"format": "sphinx-nbcache-archive", "version": 1, "records": []})
    with tarfile.open(path, "w:gz", compresslevel=9) as tar:
        info = tarfile.TarInfo("nbcache-archive.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest.encode()))
        for number in range(members):
            info = tarfile.TarInfo(f"blobs/{hashlib.sha256(str(number).encode()).hexdigest()}.json")
            info.size = size
            tar.addfile(info, io.BufferedReader(Zeros(size), 1 << 20))
    return path


@pytest.mark.slow
def test_a_gzip_bomb_is_refused_without_reading_it(tmp_path: Path) -> None:
    archive = bomb(tmp_path / "bomb.tar.gz", 420 * 2**20)
    assert archive.stat().st_size < 600_000  # 0.41 MB of gzip, 420 MB inside
    code = (
        "import resource, sys\nfrom sphinx_nbcache.cli import main\n"
        "try:\n    status = main(sys.argv[1:])\n"
        "finally:\n    print('maxrss', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "import", str(archive), "--cache", str(tmp_path / "c")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    peak_mb = int(re.search(r"maxrss (\d+)", done.stdout).group(1)) / 1024  # type: ignore[union-attr]
    assert peak_mb < 250, f"peak {peak_mb:.0f} MB"  # the 420 MB member was never read
    assert done.returncode == 2, done.stdout + done.stderr
    said = " ".join(done.stderr.split())  # as one line (the console wraps at 200 columns)
    assert "member 'blobs/" in said, said
    assert "over the limit of 256 MiB per member" in said, said


def test_archive_import_bounds_the_total_and_the_member_count(tmp_path: Path) -> None:
    from sphinx_nbcache.store import Store
    from sphinx_nbcache.store._archive import import_archive

    store = Store(tmp_path / "cache")
    try:
        many = bomb(tmp_path / "many.tar.gz", 2**20, members=5)
        with pytest.raises(ArchiveError, match=r"blobs/\w+\.json.*4 MiB") as caught:
            import_archive(store, many, max_total=4 * 2**20)
        assert "4 MiB" in str(caught.value)
        with pytest.raises(ArchiveError, match="members"):
            import_archive(store, many, max_members=3)
        assert store.records() == []
    finally:
        store.close()


# -- 8. stored text is printed as text ------------------------------------------------------


def hostile_archive(tmp_path: Path) -> tuple[Path, str]:
    """An archive holding a record whose stored text is markup and escape sequences, and
    members named like markup."""
    from sphinx_nbcache.records import Failure, Outputs, Record
    from sphinx_nbcache.store import Store
    from sphinx_nbcache.store._archive import export_archive

    store = Store(tmp_path / "source")
    hyperlink = "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\"
    link = "[link=https://evil.example]x[/link]"
    trace = f"\x1b[2J[bold]cleared\x1b[0m {hyperlink}"
    failure = Failure("cell", "[/red]Error", f"{link} {hyperlink}", trace, code_cell=1)
    page = "[/red]page[link=https://evil.example]"
    record = Record("b" * 64, "failed", None, kernel="\x1b[31mred", failure=failure, page=page,
                    parameters={"[/red]": "\x1b[1m"})  # fmt: skip
    store.put(record, Outputs(({"outputs": []},)))
    store.close()
    plain = tmp_path / "plain.tar.gz"
    export_archive(Store(tmp_path / "source"), plain)
    archive = tmp_path / "hostile.tar.gz"
    with tarfile.open(plain) as source, tarfile.open(archive, "w:gz") as target:
        for member in source:
            target.addfile(member, source.extractfile(member))
        for name in ("[/red]", "[link=https://evil.example]x[/link]", "esc\x1b[31mred"):
            info = tarfile.TarInfo(name)
            info.size = 1
            target.addfile(info, io.BytesIO(b"x"))
    return archive, "b" * 10


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sphinx_nbcache.cli", *argv],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_the_cli_prints_stored_text_as_text(tmp_path: Path) -> None:
    archive, record_id = hostile_archive(tmp_path)
    cache = str(tmp_path / "cache")
    imported = cli("import", str(archive), "--cache", cache)
    assert imported.returncode == 1, imported.stderr  # members rejected, nothing crashed
    assert "rejected [/red]: unexpected archive member" in imported.stdout, imported.stdout
    assert "rejected [link=https://evil.example]x[/link]:" in imported.stdout
    assert "rejected esc\\x1b[31mred:" in imported.stdout
    for argv in (("list",), ("show", record_id, "--traceback")):
        shown = cli(*argv, "--cache", cache)
        assert shown.returncode == 0, shown.stderr
        out = shown.stdout
        assert "\x1b" not in out, (argv, out)
        assert "[/red]page[link=https://evil.example]" in out, (argv, out)
        assert "\\x1b[31mred" in out, (argv, out)
    shown = cli("show", record_id, "--traceback", "--cache", cache).stdout
    assert "[/red]Error: [link=https://evil.example]x[/link]" in shown
    assert "\\x1b[2J[bold]cleared" in shown
    assert "\\x1b]8;;https://evil.example/" in shown
    for output in (imported.stdout, imported.stderr, shown):
        assert "\x1b" not in output
        assert "\x9b" not in output


# -- 9. parameters are written from plain built-in values only --------------------------------


class Sneaky(str):
    def __repr__(self) -> str:
        return (
            "__import__('pathlib').Path(__import__('os').environ['PWNED']).write_text('1') and 'a'"
        )


class SneakyName(str):
    def __format__(self, spec: str) -> str:
        return "s = 'b'\n__import__('pathlib').Path(__import__('os').environ['PWNED']).touch()\nx"

    def __hash__(self) -> int:
        return hash("x")


class Loud(float):
    def __repr__(self) -> str:
        return "__import__('pathlib').Path(__import__('os').environ['PWNED']).touch() or 2.0"


def test_str_subclasses_put_no_code_into_the_injected_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sphinx_nbcache import run_notebook
    from sphinx_nbcache.notebooks.functions import INJECTED_TAG, prepare

    docs = tmp_path / "docs"
    (docs / "models").mkdir(parents=True)
    (docs / "conf.py").write_text("extensions = ['myst_nb', 'sphinx_nbcache']\n")
    (docs / "models" / "double.md").write_text(NOTEBOOKS["models/double.md"])
    pwned = tmp_path / "pwned"
    monkeypatch.setenv("PWNED", str(pwned))
    monkeypatch.setenv("NBCACHE_TEST_LOG", str(tmp_path / "kernel.log"))

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("x = 1\ns = 'a'", metadata={"tags": ["parameters"]})
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python"}
    prepared = prepare(notebook, {"s": Sneaky("a"), "x": Loud(2.0)}, path="p", call=True)
    injected = next(c for c in prepared.cells if INJECTED_TAG in c.metadata.get("tags", []))
    assert injected.source == "# Parameters\ns = 'a'\nx = 2.0\n"
    prepared = prepare(notebook, {SneakyName("x"): 3}, path="p", call=True)
    injected = next(c for c in prepared.cells if INJECTED_TAG in c.metadata.get("tags", []))
    assert injected.source == "# Parameters\nx = 3\n"

    result = run_notebook(docs / "models" / "double.md", {"s": Sneaky("a"), "x": Loud(2.0)})
    assert result.value == {"y": 4.0, "s": "A"}
    result = run_notebook(docs / "models" / "double.md", {SneakyName("x"): 5})
    assert result.value == {"y": 10, "s": "A"}
    assert not pwned.exists()
    tricky = type("Tricky", (list,), {"__repr__": lambda self: "__import__('os')._exit(3)"})
    prepared = prepare(notebook, {"x": tricky([1])}, path="p", call=True)  # containers too
    injected = next(c for c in prepared.cells if INJECTED_TAG in c.metadata.get("tags", []))
    assert injected.source == "# Parameters\nx = [1]\n"
