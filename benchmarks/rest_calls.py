"""Timings of notebooks called over HTTP: a cold call, a cached call, 20 concurrent calls.

Starts ``jupyter server`` with the sphinx-nbcache extension on 127.0.0.1 (a fresh root and
cache in a temporary folder), calls one small notebook, prints a Markdown table and stops the
server. Run with the interpreter of an environment that has sphinx-nbcache, jupyter_server and
a ``python3`` kernel::

    python benchmarks/rest_calls.py [--jobs 2]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

NOTEBOOK = """---
file_format: mystnb
kernelspec:
  name: python3
  display_name: Python 3
---

```{code-cell}
:tags: [parameters]
x = 1
```

```{code-cell}
squares = [i * i for i in range(1000 * x)]
```

```{code-cell}
:tags: [return]
{"x": x, "total": sum(squares)}
```
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(url: str, token: str) -> tuple[float, dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    begin = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        body = json.loads(response.read())
    return time.perf_counter() - begin, body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="NbcacheServe.jobs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "root")
        root.mkdir()
        (root / "square.md").write_text(NOTEBOOK)
        port, token = free_port(), secrets.token_hex(16)
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(Path(tmp, "runtime"))}
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--no-browser",
             "--allow-root", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
             "--ServerApp.jpserver_extensions={'sphinx_nbcache': True}",
             f"--NbcacheServe.jobs={args.jobs}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}/nbcache/run/square.md"
            deadline = time.monotonic() + 60
            while True:  # the server answers once it is up
                try:
                    call(f"http://127.0.0.1:{port}/api/status", token)
                    break
                except (urllib.error.URLError, ConnectionError):
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the server did not start") from None
                    time.sleep(0.1)
            rows = []
            wall, body = call(f"{base}?x=1", token)
            assert body["cached"] is False
            rows.append(("cold call (one kernel)", wall, body["seconds"], 1))
            walls = [call(f"{base}?x=1", token)[0] for _ in range(20)]
            rows.append(("cached call (median of 20)", statistics.median(walls), None, 0))
            with concurrent.futures.ThreadPoolExecutor(20) as pool:
                begin = time.perf_counter()
                answers = list(pool.map(lambda _: call(f"{base}?x=1", token), range(20)))
                rows.append(("20 concurrent cached calls", time.perf_counter() - begin, None, 0))
                assert all(b["cached"] for _, b in answers)
                begin = time.perf_counter()
                answers = list(pool.map(lambda i: call(f"{base}?x={i + 2}", token), range(20)))
                label = f"20 concurrent new calls ({args.jobs} executing at once)"
                rows.append((label, time.perf_counter() - begin, None, 20))
                assert not any(b["cached"] for _, b in answers)
                begin = time.perf_counter()
                answers = list(pool.map(lambda _: call(f"{base}?x=100", token), range(20)))
                label = "20 concurrent identical new calls (joined)"
                rows.append((label, time.perf_counter() - begin, None, 1))
                assert len({b["record"] for _, b in answers}) == 1
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
    print(f"| calls (server: {args.jobs} executing at once, {os.cpu_count()} CPUs) | wall s | "
          "server s | kernels |")  # fmt: skip
    print("|---|---|---|---|")
    for label, wall, seconds, kernels in rows:
        print(
            f"| {label} | {wall:.3f} | {'' if seconds is None else f'{seconds:.3f}'} | {kernels} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
