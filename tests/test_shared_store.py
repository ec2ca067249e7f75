"""A store shared by several checkouts and builds: PostgreSQL + S3 (real servers), and the
leases that make builds on one store execute each page once.

- two builds at once on a shared PostgreSQL + S3 store execute each page once, a third
  checkout in another folder executes nothing and shows every output;
- a missing or damaged blob on S3 invalidates only its own result;
- credentials (the database password, the S3 keys) appear in no output, cache file, database
  row, object or archive;
- a build killed while it runs a page leaves a lease that expires: a build waiting for that
  page takes it over and runs it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _reliability import Build, Fifo, kill_group
from fixtures_services import S3Bucket

from sphinx_nbcache.store import open_store

PAGES = ("p1", "p2", "p3", "p4")
DB_PASSWORD = "pg-Pa55-never-shown"
S3_SECRET = "s3-Secret-never-shown"


def shared(postgres_url: str, s3: S3Bucket) -> dict[str, str]:
    """The environment that points a build at the shared store (as CI secrets would)."""
    database = postgres_url.replace("://postgres@", f"://postgres:{DB_PASSWORD}@", 1)
    assert DB_PASSWORD in database, postgres_url
    options = {**s3.storage_options, "secret": S3_SECRET}  # moto takes any key pair
    return {
        "NBCACHE_DATABASE": database,
        "NBCACHE_BLOBS": f"{s3.url}/docs-cache",
        "NBCACHE_BLOBS_OPTIONS": json.dumps(options),
    }


def store_of(env: dict[str, str], cache: Path) -> Any:
    return open_store(
        cache,
        env["NBCACHE_DATABASE"],
        env["NBCACHE_BLOBS"],
        json.loads(env["NBCACHE_BLOBS_OPTIONS"]),
    )


def built(build: Build, code: int, output: str, warnings: int = 0) -> None:
    assert code == 0, output
    assert "Traceback" not in output, output
    assert "ERROR" not in output, output
    assert output.count("WARNING") == warnings, output
    for page in PAGES:
        assert f"output of {page}" in build.html(page), page


@pytest.mark.services
@pytest.mark.kernel
def test_builds_and_checkouts_share_a_postgres_and_s3_store(
    tmp_path: Path, postgres_url: str, s3: S3Bucket
) -> None:
    env = shared(postgres_url, s3)
    first = Build.copy("reliability", tmp_path / "runner-1", **env)
    second = Build.copy("reliability", tmp_path / "runner-2", **env)
    procs = [first.start("-D", "nbcache_jobs=2"), second.start("-j", "2")]
    try:
        codes = [proc.wait(timeout=180) for proc in procs]
    finally:
        for proc in procs:
            kill_group(proc)
    built(first, codes[0], first.output())
    built(second, codes[1], second.output())
    # every page once across both builds: a page the other build ran was waited for
    assert first.executed() + second.executed() == Counter(PAGES)

    # another checkout, in another folder, with no cache folder of its own
    third = Build.copy("reliability", tmp_path / "elsewhere" / "checkout", **env)
    code, output = third.run()
    built(third, code, output)
    assert third.executed() == Counter()

    # p2's blob goes missing, p3's is damaged: those two run again, nothing else does
    store = store_of(env, tmp_path / "unused")
    ids = store.page_results()
    blobs = {page: store.by_id(ids[page]).blob for page in PAGES}
    assert len(set(blobs.values())) == len(PAGES)
    fs = store.blobs.fs
    fs.rm_file(store.blobs.path(blobs["p2"]))
    fs.pipe_file(store.blobs.path(blobs["p3"]), b'{"damaged": true}')
    store.close()
    fourth = Build.copy("reliability", tmp_path / "checkout-4", **env)
    code, output = fourth.run()
    built(fourth, code, output, warnings=2)
    assert "p2.md: WARNING: damaged cache entry (blob is missing)" in output
    assert "p3.md: WARNING: damaged cache entry (blob content does not match its id)" in output
    summary = (
        r"4 notebook pages: 2 executed, 0 failed, 0 could not start, 2 from cache; "
        r"[\d.]+ s of kernel time( \([\d.]+ s CPU\))?, at most [12] at once"
    )
    assert re.search(summary, output), output
    assert fourth.executed() == Counter({"p2": 1, "p3": 1})

    # credentials: nowhere in what the builds printed, the cache folders, the database, the
    # bucket, the CLI's answers, or an exported archive
    archive = tmp_path / "cache.tar.gz"
    cli_env = {**os.environ, **env}
    answers = ""
    for command in (["status", "--json"], ["list", "--json"], ["export", str(archive)]):
        done = subprocess.run(
            [sys.executable, "-m", "sphinx_nbcache.cli", *command, "--docs", str(fourth.src)],
            capture_output=True,
            text=True,
            env=cli_env,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        answers += done.stdout + done.stderr
    assert "p1" in answers  # the commands did answer about the pages
    texts = [answers, *(b.output() for b in (first, second, third, fourth))]
    for folder in (first.src, second.src, third.src, fourth.src):
        texts += [p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file()]
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            if handle is not None:
                texts.append(handle.read().decode("latin-1"))
    texts += [fs.cat_file(path).decode("latin-1") for path in fs.find(s3.bucket)]
    texts.append(dump_database(postgres_url))
    for secret in (DB_PASSWORD, S3_SECRET):
        leaked = [text[:200] for text in texts if secret in text]
        assert not leaked, f"{secret} leaked into: {leaked}"


def dump_database(url: str) -> str:
    """Every row of every table, as text."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sqlalchemy.inspect(conn).get_table_names()
            assert "results" in tables, tables
            return "\n".join(
                repr(row)
                for table in tables
                for row in conn.execute(sqlalchemy.text(f'SELECT * FROM "{table}"'))
            )
    finally:
        engine.dispose()


@pytest.mark.kernel
def test_a_dead_builds_lease_expires_and_its_page_is_taken_over(tmp_path: Path) -> None:
    cache = tmp_path / "shared-cache"
    option = ("-D", f"nbcache_path={cache}", "-D", "nbcache_lease_seconds=2")
    fifo = Fifo(tmp_path / "gate")
    dead = Build.copy("reliability", tmp_path / "dies", NBCACHE_TEST_FIFO=str(fifo.path))
    waiting = Build.copy("reliability", tmp_path / "waits")
    holder = dead.start(*option, NBCACHE_TEST_GATE="p1")
    proc = None
    try:
        assert fifo.wait_line(proc=holder) == "p1"  # the first build runs p1 (and hangs there)
        assert _held(cache), "the running build holds no lease"
        proc = waiting.start(*option)
        kill_group(holder)  # killed mid-page: its lease on p1 stays behind, and expires
        code = proc.wait(timeout=180)
    finally:
        kill_group(holder)
        kill_group(proc)
        fifo.close()
    output = waiting.output()
    assert code == 0, output
    assert waiting.executed()["p1"] == 1, output  # taken over once the lease expired
    for page in PAGES:
        assert f"output of {page}" in waiting.html(page)
    # the taker released its leases; the killed build's are left to expire (it cannot
    # release them), and none is live
    held = _held(cache)
    assert not [h for h, _ in held.values() if f":{proc.pid}:" in h], held
    assert all(expires < time.time() for _, expires in held.values()), held


def _held(cache: Path) -> dict[str, tuple[str, float]]:
    """Every lease in the store of ``cache``."""
    from sqlalchemy import select

    from sphinx_nbcache.store._schema import leases

    store = open_store(cache)
    try:
        with store.db.read() as conn:
            return {k: (h, e) for k, h, e in conn.execute(select(leases))}
    finally:
        store.close()
