#!/usr/bin/env python3
"""Scale-out figures on the shared harness: where notebooks run, and where the cache is.

    python benchmarks/scale_out.py bench-work [--corpus-args "--n 20 --cells 4 --sleep 1.0"]

Starts real services on 127.0.0.1 (the ones the tests use, from ``tests/services.py``): a
Dask scheduler with two single-threaded workers, a ``jupyter server`` with a token, a
PostgreSQL server and an S3 server (moto). Then two runs of ``../shared/bench/run_bench.py``:

- label ``scale-exec``: cold builds (S1) with the peer, ours with local kernels
  (``nbcache_jobs`` = CPUs), ours on the Dask cluster, ours with kernels on the Jupyter server;
- label ``scale-store``: cold, CI-restore (S5: ``_build`` deleted, cache kept) and no-op builds
  with ours on a local cache and ours on the shared PostgreSQL + S3 store (a fresh database
  and bucket, so its cold build is cold).

Every service is stopped by its process group at the end. The results go to
``<workdir>/results-scale-*.jsonl``; ``benchmarks/report.py <workdir>`` prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT.parent / "shared" / "bench" / "run_bench.py"
ENGINES = ROOT / "benchmarks" / "engines"
sys.path.insert(0, str(ROOT / "tests"))

import services  # noqa: E402  (tests/services.py: the tests' own service starters)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--corpus-args", default="--n 20 --cells 4 --sleep 1.0")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="nbcache-scale-"))
    started: list[object] = []
    try:
        dask = services.start_dask(base / "dask")
        started.append(dask)
        jupyter = services.start_jupyter_server(base / "jupyter", secrets.token_hex(16))
        started.append(jupyter.service)
        postgres = services.start_postgres(base / "postgres")
        started.append(postgres.service)
        s3 = services.start_s3(base / "s3")
        started.append(s3.service)

        env = {**os.environ, **services.AWS_ENV}
        env.update(
            NBCACHE_BENCH_DASK=dask.address,
            NBCACHE_BENCH_JUPYTER=jupyter.url,
            NBCACHE_JUPYTER_TOKEN=jupyter.token,
        )
        run(args, env, "scale-exec", ["mystnb-cache", "nbcache", "nbcache-dask",
                                      "nbcache-jupyter"], "S1")  # fmt: skip

        database = f"bench_{uuid.uuid4().hex[:10]}"
        admin = postgres.connect()
        admin.execute(f'CREATE DATABASE "{database}"')  # type: ignore[attr-defined]
        admin.close()  # type: ignore[attr-defined]
        bucket = f"bench-{uuid.uuid4().hex[:10]}"
        options = {"key": "testing", "secret": "testing", "endpoint_url": s3.endpoint_url}
        import s3fs

        s3fs.S3FileSystem(skip_instance_cache=True, **options).mkdir(bucket)
        env.update(
            NBCACHE_BENCH_DATABASE=postgres.url(database),
            NBCACHE_BENCH_BLOBS=f"s3://{bucket}/docs",
            NBCACHE_BENCH_BLOBS_OPTIONS=json.dumps(options),
        )
        run(args, env, "scale-store", ["nbcache", "nbcache-shared"], "S1,S5,S2,S5,S2")
    finally:
        for service in reversed(started):
            service.stop()  # type: ignore[attr-defined]
    return 0


def run(args: argparse.Namespace, env: dict[str, str], label: str, engines: list[str],
        scenarios: str) -> None:  # fmt: skip
    out = args.workdir / f"results-{label}.jsonl"
    out.unlink(missing_ok=True)
    names = [name if name.startswith("mystnb") else str(ENGINES / f"{name}.py") for name in engines]
    subprocess.run(
        [sys.executable, str(HARNESS), "--engines", ",".join(names),
         "--corpus-args", args.corpus_args, "--scenarios", scenarios,
         "--repeat", str(args.repeat), "--no-warmup", "--label", label,
         "--workdir", str(args.workdir / label), "--out", str(out)],
        env=env, check=True,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
