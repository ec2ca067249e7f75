"""Smoke tests of the real services the remote tests use: each answers on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
import services
from fixtures_services import S3Bucket

pytestmark = pytest.mark.services


def test_postgres_gives_a_fresh_database_per_test(
    postgres_url: str, postgres_server: services.Postgres
) -> None:
    database = postgres_url.rsplit("/", 1)[1]
    connection: Any = postgres_server.connect(database)
    with connection:
        assert connection.execute("SELECT current_database()").fetchone() == (database,)
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        connection.execute("CREATE TABLE t (x int)")
    assert postgres_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")


def test_s3_bucket_is_fresh_and_writable(s3: S3Bucket) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3.storage_options)
    assert fs.ls(s3.bucket) == []
    fs.pipe(f"{s3.bucket}/a/b.txt", b"hello")
    assert fs.cat(f"{s3.bucket}/a/b.txt") == b"hello"
    assert s3.endpoint_url.startswith("http://127.0.0.1:")


def test_dask_scheduler_has_two_single_threaded_workers(dask_scheduler: str) -> None:
    from distributed import Client

    with Client(dask_scheduler, timeout=10) as client:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        assert len(workers) == 2
        assert all(w["nthreads"] == 1 for w in workers.values())
        assert all(address.startswith("tcp://127.0.0.1:") for address in workers)
        assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6


def _get(url: str, token: str | None) -> tuple[int | None, Any]:
    status = services.http_status(url, token)
    if status != 200:
        return status, None
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return status, json.load(response)


@pytest.mark.parametrize("server", ["jupyter_server", "kernel_gateway"])
def test_jupyter_servers_need_their_token(server: str, request: pytest.FixtureRequest) -> None:
    service: services.JupyterService = request.getfixturevalue(server)
    status, specs = _get(f"{service.url}/api/kernelspecs", service.token)
    assert status == 200
    assert "python3" in specs["kernelspecs"]
    assert services.http_status(f"{service.url}/api/kernelspecs", "wrong") in (401, 403)
    assert services.http_status(f"{service.url}/api/kernelspecs") in (401, 403)
    assert _get(f"{service.url}/api/kernels", service.token) == (200, [])
