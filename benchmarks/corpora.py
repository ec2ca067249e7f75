#!/usr/bin/env python3
"""Two more corpora for the shared harness: a book-shaped one and a BLAS-heavy one.

    python benchmarks/corpora.py book DEST [--engine nbcache] [--harness ../shared/bench]
    python benchmarks/corpora.py blas DEST

Both are written in the layout of the harness's ``make_corpus.py`` (``conf.py`` from an
engine fragment, ``index.md``, ``pages/``, ``bench_manifest.json``), so that ``run_bench.py
--corpus DEST`` builds them with any engine: every page's first code cell holds
``page_id = '<id>'`` (the code edit of S4) and appends ``<id> <time>`` to ``BENCH_EXEC_LOG``
(the kernel-side count), and its first markdown cell says ``Step 1 of page <id> explains the
next cell.`` (the text edit of S3). Formats cycle over ``.ipynb``, MyST ``.md`` and percent
``.py``, as in the generated corpora.

``book``: 25 pages of mixed weight, like a lecture series: 4 heavy numeric pages (NumPy
linear algebra: products, a symmetric eigensolver, a least-squares solve; about
``--heavy-seconds`` of one CPU each), 5 pages of matplotlib plots (the kernel's inline
backend, drawn by Agg), 14 light pages (a little Python or a small array each) and 2 pages
that fail (a singular matrix, a missing key).

``blas``: 12 pages, each a chain of large matrix products that OpenBLAS (or MKL) spreads over
every core: about ``--blas-seconds`` of wall time each on this machine with all its CPUs.

The amount of work is fixed when the corpus is generated (the product rate of one core is
measured once in a child process limited to one thread; ``--gflops`` fixes it), so the work
per page is the same for every engine; under contention it takes longer, as real work does.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
HARNESS = HERE.parent.parent / "shared" / "bench"  # the shared harness, beside the repository
THREAD_NAMES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

#: measures one core's rate of float64 matrix products, in GFLOP/s (printed)
MEASURE = """\
import time, numpy as np
n = 1000
rng = np.random.default_rng(0)
a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
a @ b
best = float("inf")
for _ in range(5):
    t = time.perf_counter()
    a @ b
    best = min(best, time.perf_counter() - t)
print(2 * n**3 / best / 1e9)
"""

HEADER = """\
page_id = '{page_id}'
import os, time
if os.environ.get('BENCH_EXEC_LOG'):  # kernel-side count, independent of the engine
    with open(os.environ['BENCH_EXEC_LOG'], 'a') as _log:
        _log.write(f'{{page_id}} {{time.time():.3f}}\\n')"""


def harness(path: Path) -> ModuleType:
    """The harness's make_corpus module (its serialisers, engine fragments and edits)."""
    if not (path / "make_corpus.py").exists():
        raise SystemExit(f"the shared harness is not at {path}: give --harness")
    sys.path.insert(0, str(path))
    import make_corpus

    return make_corpus


def measure_gflops() -> float:
    """One core's rate of matrix products here (a child limited to one thread)."""
    env = {**os.environ, **dict.fromkeys(THREAD_NAMES, "1")}
    out = subprocess.run(
        [sys.executable, "-c", MEASURE], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def products(n: int, gflop: float) -> int:
    """How many n x n products make ``gflop`` GFLOP (at least 1)."""
    return max(1, round(gflop * 1e9 / (2 * n**3)))


# -- the book's pages ----------------------------------------------------------------------


def heavy_cells(index: int, gflops: float, seconds: float) -> list[str]:
    """NumPy linear algebra worth ``seconds`` of one core: products, eigh, lstsq."""
    n = 900
    reps = products(n, gflops * seconds * 0.8)  # the rest: the eigensolver and the solve
    return [
        f"import numpy as np\nrng = np.random.default_rng({index})\nn = {n}\n"
        "a = rng.standard_normal((n, n))\nb = rng.standard_normal((n, n))\n"
        "print('matrices', a.shape, b.shape)",
        f"c = a\nfor _ in range({reps}):\n    c = (c @ b) / np.sqrt(n)\n"
        "print('the product chain is finite:', bool(np.isfinite(c).all()))",
        "s = a @ a.T / n + np.eye(n)\nw = np.linalg.eigvalsh(s)\n"
        "print('eigenvalues from', round(float(w[0]), 3), 'to', round(float(w[-1]), 1))",
        "x, *_ = np.linalg.lstsq(a[:, : n // 2], b[:, 0], rcond=None)\n"
        "{'unknowns': x.size, 'finite': bool(np.isfinite(x).all())}",
    ]


def plot_cells(index: int) -> list[str]:
    """Two matplotlib figures (the kernel's inline backend, drawn by Agg)."""
    return [
        "import numpy as np\nimport matplotlib\nimport matplotlib.pyplot as plt\n"
        f"rng = np.random.default_rng({index})\nx = np.linspace(0, 4 * np.pi, 400)",
        "fig, ax = plt.subplots(figsize=(5, 3))\n"
        f"for k in range(1, 4):\n    ax.plot(x, np.sin(k * x + {index}) / k, label=f'k={{k}}')\n"
        "ax.legend()\nax.set_title('harmonics')\nplt.show()",
        "fig, ax = plt.subplots(figsize=(5, 3))\n"
        "ax.hist(rng.standard_normal(5000), bins=40)\nax.set_title('samples')\nplt.show()",
    ]


def light_cells(index: int, rng: random.Random) -> list[str]:
    """A little Python or a small array: prints, a value, an HTML table."""
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    cells = [
        f"values = [i * i for i in range({a})]\nprint('sum of squares:', sum(values))",
        f"from IPython.display import HTML, display\n"
        f"display(HTML('<table><tr><td>{a}</td><td>{b}</td><td>{a * b}</td></tr></table>'))",
    ]
    if index % 2:
        cells.append(
            f"import numpy as np\nm = np.arange({a * 4}, dtype=float).reshape(-1, 4)\n"
            "m.mean(axis=0).round(2).tolist()"
        )
    else:
        cells.append(f"{{'page': page_id, 'ratio': round({a} / {b}, 4)}}")
    return cells


FAILURES = (
    "import numpy as np\n\ndef invert(m):\n    return np.linalg.inv(m)\n\n"
    "invert(np.ones((3, 3)))  # deliberate failure: a singular matrix",
    "settings = {'alpha': 1}\n\ndef lookup(name):\n    return settings[name]\n\n"
    "lookup('beta')  # deliberate failure: a missing key",
)

#: page kind by index: 25 pages, edits on page 1 (light)
BOOK_HEAVY = (4, 10, 16, 22)
BOOK_PLOTS = (2, 7, 12, 18, 23)
BOOK_FAIL = (13, 20)


def book_pages(gflops: float, seconds: float) -> list[tuple[str, list[str]]]:
    rng = random.Random(0)
    pages = []
    for i in range(25):
        if i in BOOK_HEAVY:
            pages.append(("heavy", heavy_cells(i, gflops, seconds)))
        elif i in BOOK_PLOTS:
            pages.append(("plot", plot_cells(i)))
        elif i in BOOK_FAIL:
            light = light_cells(i, rng)[:1]
            pages.append(("fail", [*light, FAILURES[BOOK_FAIL.index(i)]]))
        else:
            pages.append(("light", light_cells(i, rng)))
    return pages


# -- the BLAS pages -------------------------------------------------------------------------


def blas_cells(index: int, gflops: float, seconds: float) -> list[str]:
    """Chains of 1500 x 1500 products: ``seconds`` on every core of this machine."""
    n = 1500
    reps = products(n, gflops * seconds * (os.cpu_count() or 1))
    half = max(1, reps // 2)
    chain = (
        "for _ in range({r}):\n    c = (c @ b) / np.sqrt(n)\n"
        "print('finite:', bool(np.isfinite(c).all()))"
    )
    return [
        f"import numpy as np\nrng = np.random.default_rng({index})\nn = {n}\n"
        "a = rng.standard_normal((n, n))\nb = rng.standard_normal((n, n))\nc = a",
        chain.format(r=half),
        chain.format(r=max(1, reps - half)),
    ]


def blas_pages(gflops: float, seconds: float) -> list[tuple[str, list[str]]]:
    return [("blas", blas_cells(i, gflops, seconds)) for i in range(12)]


# -- writing --------------------------------------------------------------------------------


def write(
    dest: Path,
    mc: ModuleType,
    name: str,
    pages: list[tuple[str, list[str]]],
    engine: str,
    facts: dict[str, Any],
) -> dict[str, Any]:
    """Pages in the harness's layout; the manifest as make_corpus writes it."""
    formats = ["ipynb", "md", "py"]
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "pages").mkdir(exist_ok=True)
    rng = random.Random(1)
    listed = []
    for i, (kind, codes) in enumerate(pages):
        fmt = formats[i % len(formats)]
        page_id = f"p{i:03d}"
        cells: list[tuple[str, str]] = []
        for k, code in enumerate(codes):
            cells.append(("markdown", mc.markdown_cell_source(k, page_id, rng)))
            cells.append(("code", (HEADER.format(page_id=page_id) + "\n" if k == 0 else "") + code))
        rel = f"pages/{page_id}{mc.FORMAT_EXT[fmt]}"
        title = f"# Page {page_id} ({kind})"
        (dest / rel).write_text(mc.SERIALISERS[fmt](title, cells), encoding="utf8")
        listed.append({"id": page_id, "path": rel, "format": fmt, "kind": kind,
                       "fails": kind == "fail"})  # fmt: skip
    toc = "\n".join(f"pages/{p['id']}" for p in listed)
    (dest / "index.md").write_text(
        f"# The {name} corpus\n\n{len(listed)} notebook pages.\n\n"
        "```{toctree}\n:maxdepth: 1\n\n" + toc + "\n```\n",
        encoding="utf8",
    )
    mc.write_conf(dest, engine)
    manifest = {
        "corpus": name,
        "n": len(listed),
        "cells": max(len(codes) for _, codes in pages),
        "formats": formats,
        "fail": [i for i, p in enumerate(listed) if p["fails"]],
        "engine": mc.engine_name(engine),
        **facts,
        "pages": listed,
    }
    (dest / "bench_manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf8")
    return manifest


CORPORA: dict[str, Callable[[float, float], list[tuple[str, list[str]]]]] = {
    "book": book_pages,
    "blas": blas_pages,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("corpus", choices=sorted(CORPORA))
    ap.add_argument("dest", type=Path)
    ap.add_argument("--engine", default="mystnb-cache", help="engine fragment for conf.py")
    ap.add_argument("--harness", type=Path, default=HARNESS, help="the shared harness folder")
    ap.add_argument("--gflops", type=float, help="one core's product rate (default: measured)")
    ap.add_argument("--heavy-seconds", type=float, default=3.0, help="book: CPU s per heavy page")
    ap.add_argument("--blas-seconds", type=float, default=3.0, help="blas: wall s per page")
    args = ap.parse_args(argv)
    mc = harness(args.harness.resolve())
    gflops = args.gflops or measure_gflops()
    seconds = args.heavy_seconds if args.corpus == "book" else args.blas_seconds
    pages = CORPORA[args.corpus](gflops, seconds)
    facts = {"gflops_per_core": round(gflops, 2), "seconds": seconds, "cpus": os.cpu_count()}
    manifest = write(args.dest, mc, args.corpus, pages, args.engine, facts)
    kinds: dict[str, int] = {}
    for page in manifest["pages"]:
        kinds[page["kind"]] = kinds.get(page["kind"], 0) + 1
    print(f"wrote {manifest['n']} pages to {args.dest} ({kinds}; {gflops:.1f} GFLOP/s per core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
