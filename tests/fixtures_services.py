"""pytest fixtures for the real services of ``services.py`` (registered by ``conftest.py``).

Each service starts once per session, on first use, and is stopped by its process group id
at the session's end. A service that cannot run here is a skip with its reason, or a failure
when the environment variable ``CI`` is set (CI must run every test).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest
import services

T = TypeVar("T")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``services`` run last: the clients they use (Dask, s3fs) keep threads for
    the life of the process, and other tests need a process without threads (plan.py forks
    its parsing workers only then)."""
    items.sort(key=lambda item: item.get_closest_marker("services") is not None)


def unavailable(reason: str) -> NoReturn:
    if services.in_ci():
        pytest.fail(f"service unavailable in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _start(factory: Callable[[], T]) -> T:
    try:
        return factory()
    except services.Missing as exc:
        unavailable(str(exc))


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def aws_env() -> Iterator[dict[str, str]]:
    """Dummy AWS credentials (and no metadata look-ups) in this process, for the session."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in services.AWS_ENV.items():
            patch.setenv(name, value)
        yield dict(services.AWS_ENV)


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server(services_dir: Path) -> Iterator[services.Postgres]:
    server = _start(lambda: services.start_postgres(services_dir / "postgres"))
    yield server
    server.service.stop()


@pytest.fixture
def postgres_url(postgres_server: services.Postgres) -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty database on the session's PostgreSQL server."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin: Any = postgres_server.connect()
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        yield postgres_server.url(name)
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


# -- S3 --------------------------------------------------------------------------------------


@dataclass
class S3Bucket:
    endpoint_url: str
    bucket: str
    storage_options: dict[str, Any]  # for s3fs / fsspec: s3fs.S3FileSystem(**storage_options)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}"


@pytest.fixture(scope="session")
def s3_server(services_dir: Path, aws_env: dict[str, str]) -> Iterator[services.S3Server]:
    server = _start(lambda: services.start_s3(services_dir / "s3"))
    yield server
    server.service.stop()


@pytest.fixture
def s3(s3_server: services.S3Server, aws_env: dict[str, str]) -> S3Bucket:
    """A fresh, empty bucket on the session's S3 server (moto)."""
    import s3fs

    options: dict[str, Any] = {
        "key": aws_env["AWS_ACCESS_KEY_ID"],
        "secret": aws_env["AWS_SECRET_ACCESS_KEY"],
        "endpoint_url": s3_server.endpoint_url,
    }
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(skip_instance_cache=True, **options).mkdir(bucket)
    return S3Bucket(s3_server.endpoint_url, bucket, options)


# -- Dask ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dask_cluster(services_dir: Path) -> Iterator[services.DaskCluster]:
    cluster = _start(lambda: services.start_dask(services_dir / "dask"))
    yield cluster
    cluster.stop()


@pytest.fixture
def dask_scheduler(dask_cluster: services.DaskCluster) -> str:
    """Address of the session's Dask scheduler, with its two workers up (a test that killed
    one waits here for its nanny to bring it back)."""
    services.wait_for_workers(dask_cluster, len(dask_cluster.workers))
    return dask_cluster.address


# -- Jupyter ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def jupyter_server(services_dir: Path) -> Iterator[services.JupyterService]:
    """A ``jupyter server`` with a token (url, token, root)."""
    server = _start(
        lambda: services.start_jupyter_server(services_dir / "jupyter", secrets.token_hex(16))
    )
    yield server
    server.service.stop()


@pytest.fixture(scope="session")
def kernel_gateway(services_dir: Path) -> Iterator[services.JupyterService]:
    """A ``jupyter kernelgateway`` with a token (url, token, root = its kernels' cwd)."""
    server = _start(
        lambda: services.start_kernel_gateway(services_dir / "gateway", secrets.token_hex(16))
    )
    yield server
    server.service.stop()
