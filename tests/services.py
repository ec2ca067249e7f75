"""Real services for the tests: PostgreSQL, an S3 server, a Dask cluster, Jupyter servers.

Plain helpers, no pytest fixtures (those are in ``fixtures_services.py``). Every service is a
process group of its own, listening on 127.0.0.1 on a free port; it is ready when its port or
HTTP answers (polled, never a fixed sleep), and :meth:`Service.stop` ends it by its process
group id. A service whose program or Python package is missing raises :class:`Missing`; the
fixtures turn that into a skip on a developer's machine and a failure in CI (``CI`` set).
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 60.0  # seconds for a service to become ready (they take 1-3 s here)


class Missing(Exception):
    """A program or package a service needs is not installed; the message says which."""


class StartError(Exception):
    """A service was started but did not become ready; the message has its log's tail."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@dataclass
class Service:
    """One started process group, its log, and when it became ready."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    stop_signal: int = signal.SIGTERM
    startup: float = 0.0  # seconds from start to ready
    cleanup: list[Path] = field(default_factory=list)  # folders removed after stop

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0, sig: int | None = None) -> None:
        """End the whole process group (politely, then by force) and wait for the leader."""
        group = self.pid  # the leader of a new session: its pid is the group id
        for signum in (self.stop_signal if sig is None else sig, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signum)
            try:
                self.process.wait(timeout=timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)  # members that outlived the leader
        for folder in self.cleanup:
            shutil.rmtree(folder, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def http_status(url: str, token: str | None = None, timeout: float = 2.0) -> int | None:
    """The HTTP status of GET ``url`` (None: no answer)."""
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def wait_until(service: Service, ready: Callable[[], bool], timeout: float = START_TIMEOUT) -> None:
    """Poll ``ready`` until it is true; :class:`StartError` if the service exits or times out."""
    begin = time.monotonic()
    delay = 0.02
    while not ready():
        if not service.alive():
            raise StartError(f"{service.name} exited ({service.process.returncode}):\n"
                             f"{service.log_tail()}")  # fmt: skip
        if time.monotonic() - begin > timeout:
            service.stop()
            raise StartError(f"{service.name} not ready after {timeout:g} s:\n{service.log_tail()}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
    service.startup = round(time.monotonic() - begin, 3)


def child_env(base: Path) -> dict[str, str]:
    """The environment of every service: Jupyter's and IPython's folders under ``base``,
    dummy AWS credentials and no instance-metadata look-ups."""
    env = dict(os.environ)
    for name, sub in (
        ("JUPYTER_DATA_DIR", "jupyter-data"),
        ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"),
        ("JUPYTER_CONFIG_DIR", "jupyter-config"),
        ("IPYTHONDIR", "ipython"),
        ("XDG_DATA_HOME", "xdg-data"),  # send2trash's trash, if a server ever uses it
    ):
        env[name] = str(base / sub)
    env.update(AWS_ENV)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def start(
    name: str,
    argv: list[str],
    base: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stop_signal: int = signal.SIGTERM,
) -> Service:
    """Start ``argv`` as a new process group, its output in ``base/<name>.log``."""
    base.mkdir(parents=True, exist_ok=True)
    log = base / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env if env is not None else child_env(base),
            cwd=cwd or base,
            start_new_session=True,
        )
    return Service(name, process, log, stop_signal)


def need_module(*modules: str) -> None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise Missing(f"the Python package providing {module!r} is not installed "
                          "(pip install -e '.[test]')")  # fmt: skip


# -- PostgreSQL ------------------------------------------------------------------------------


@dataclass
class Postgres:
    service: Service
    port: int

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` (psycopg 3 driver)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> object:
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database,
            autocommit=True, connect_timeout=2,
        )  # fmt: skip


def postgres_bin(program: str) -> str:
    """``program`` from the newest /usr/lib/postgresql/<ver>/bin, else from PATH."""
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{program}"),
        key=lambda p: [int(x) for x in Path(p).parts[-3].split(".") if x.isdigit()],
    )
    path = found[-1] if found else shutil.which(program)
    if path is None:
        raise Missing(f"PostgreSQL's {program!r} not found (Debian: apt-get install postgresql)")
    return path


def start_postgres(base: Path) -> Postgres:
    need_module("psycopg")
    initdb, postgres = postgres_bin("initdb"), postgres_bin("postgres")
    as_user: list[str] = []
    # initdb refuses root: run as the postgres user, in a folder it can reach and own
    top = Path(tempfile.mkdtemp(prefix="nbcache-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(top)
            raise Missing("running as root, but there is no 'postgres' user for initdb") from None
        # util-linux's runuser is in /usr/sbin or /sbin, which a minimal PATH may leave out
        search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
        runuser = shutil.which("runuser", path=search)
        if runuser is None:
            shutil.rmtree(top)
            raise Missing("running as root, but 'runuser' is not installed (util-linux)")
        as_user = [runuser, "-u", "postgres", "--"]
        top.chmod(0o755)
        os.chown(top, user.pw_uid, user.pw_gid)
    data, sockets = top / "data", top / "sockets"
    env = child_env(base)
    setup = subprocess.run(
        [*as_user, "mkdir", "-p", str(sockets)], capture_output=True, env=env, check=False
    )
    initialised = subprocess.run(
        [*as_user, initdb, "-D", str(data), "--auth=trust", "--no-sync", "-U", "postgres",
         "-E", "UTF8", "--no-instructions"],
        capture_output=True, env=env, check=False, cwd=top,
    )  # fmt: skip
    if setup.returncode or initialised.returncode:
        shutil.rmtree(top, ignore_errors=True)
        raise StartError(f"initdb failed:\n{initialised.stderr.decode(errors='replace')}")
    port = free_port()
    service = start(
        "postgres",
        [*as_user, postgres, "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
         "-k", str(sockets), "-c", "fsync=off", "-c", "synchronous_commit=off",
         "-c", "full_page_writes=off"],
        base, env=env, cwd=top, stop_signal=signal.SIGINT,  # SIGINT: fast shutdown
    )  # fmt: skip
    service.cleanup.append(top)
    server = Postgres(service, port)

    def ready() -> bool:
        try:
            server.connect().close()  # type: ignore[attr-defined]
        except Exception:
            return False
        return True

    wait_until(service, ready)
    return server


# -- S3 (moto) -------------------------------------------------------------------------------


@dataclass
class S3Server:
    service: Service
    endpoint_url: str


def start_s3(base: Path) -> S3Server:
    need_module("moto.server", "s3fs", "boto3", "flask")
    port = free_port()
    service = start(
        "moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], base
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(service, lambda: http_status(f"{url}/moto-api/") == 200)
    return S3Server(service, url)


# -- Dask ------------------------------------------------------------------------------------


@dataclass
class DaskCluster:
    scheduler: Service
    workers: list[Service]
    address: str

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.scheduler.stop()


def start_dask(base: Path, workers: int = 2) -> DaskCluster:
    """A scheduler and ``workers`` workers (one process, one thread each, with a nanny that
    restarts a worker that dies)."""
    need_module("distributed")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    begin = time.monotonic()
    scheduler = start(
        "dask-scheduler",
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", str(port), "--dashboard-address", "127.0.0.1:0"],
        base,
    )  # fmt: skip
    cluster = DaskCluster(scheduler, [], address)
    try:
        wait_until(scheduler, lambda: port_open(port))
        for number in range(workers):
            argv = [
                sys.executable, "-m", "distributed.cli.dask_worker", address,
                "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0",
                "--nworkers", "1", "--nthreads", "1", "--name", f"w{number}",
                "--local-directory", str(base / f"dask-worker-{number}"),
            ]  # fmt: skip
            cluster.workers.append(start(f"dask-worker-{number}", argv, base))
        wait_for_workers(cluster, workers)
    except BaseException:
        cluster.stop()
        raise
    scheduler.startup = round(time.monotonic() - begin, 3)
    return cluster


def wait_for_workers(cluster: DaskCluster, count: int, timeout: float = START_TIMEOUT) -> None:
    """Until the scheduler has ``count`` workers (a nanny restarts a killed one)."""
    from distributed import Client

    with Client(cluster.address, timeout=10) as client:
        try:
            client.wait_for_workers(count, timeout=timeout)
        except TimeoutError:
            logs = "\n".join(w.log_tail() for w in cluster.workers)
            raise StartError(f"Dask workers not up after {timeout:g} s:\n{logs}") from None


# -- Jupyter server and kernel gateway --------------------------------------------------------


@dataclass
class JupyterService:
    service: Service
    url: str
    token: str
    root: Path  # the server's root folder (its contents API; the gateway's kernels' cwd)


def start_jupyter_server(base: Path, token: str, name: str = "jupyter-server") -> JupyterService:
    need_module("jupyter_server")
    port = free_port()
    root = base / f"{name}-root"
    root.mkdir(parents=True, exist_ok=True)
    service = start(
        name,
        [sys.executable, "-m", "jupyter_server", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--no-browser",
         "--allow-root", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         # deleting a folder removes it instead of moving it to a trash folder
         "--FileContentsManager.delete_to_trash=False"],
        base,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until(service, lambda: http_status(f"{url}/api/status", token) == 200)
    return JupyterService(service, url, token, root)


def start_kernel_gateway(base: Path, token: str, name: str = "kernel-gateway") -> JupyterService:
    need_module("kernel_gateway")
    port = free_port()
    root = base / f"{name}-root"
    root.mkdir(parents=True, exist_ok=True)
    service = start(
        name,
        [sys.executable, "-m", "kernel_gateway", "--KernelGatewayApp.ip=127.0.0.1",
         f"--KernelGatewayApp.port={port}", "--KernelGatewayApp.port_retries=0",
         f"--KernelGatewayApp.auth_token={token}",
         "--JupyterWebsocketPersonality.list_kernels=True"],  # tests look for leaked kernels
        base, cwd=root,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until(service, lambda: http_status(f"{url}/api/kernelspecs", token) == 200)
    return JupyterService(service, url, token, root)
