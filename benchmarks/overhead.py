"""Our cost over the render-only floor, in instructions (valgrind), not in noisy seconds.

Wall times of one-second builds vary by +-10 % from run to run on a shared machine, more than
the few per cent this is about. Instruction counts do not: this script builds the same corpus
under ``valgrind --tool=cachegrind --cache-sim=no`` and compares the instructions executed by

* ``nbcache``: our engine (its outputs come from the cache);
* ``floor``: myst-nb with ``nb_execution_mode = "off"`` on the pages as written (no outputs:
  the harness's ``mystnb-off``);
* ``floor+outputs``: the same, but each page already holds the outputs our cache stored for it
  (written with ``Cache.merge``): what rendering those outputs costs with no engine at all.

``nbcache / floor+outputs`` is what sphinx-nbcache itself adds; ``floor+outputs / floor`` is
what showing outputs costs myst-nb and Sphinx. Scenarios as in the harness: S2 no-op, S3 one
prose edit, S5 build folder deleted with the cache kept. Pages are ``.ipynb`` (the only format
that can hold outputs); they come from the harness's ``make_corpus.py``.

Usage: ``python benchmarks/overhead.py [--n 20] [--cells 4] [--scenarios S2,S3,S5,S2]
[--json F]`` (needs ``valgrind``;
two to three minutes at 20 pages on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from sphinx_nbcache.api import open_cache

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT.parent / "shared" / "bench"
ENGINE = ROOT / "benchmarks" / "engines" / "nbcache.py"
SCENARIOS = {"S2": "no-op", "S3": "text-edit", "S5": "CI-restore"}
ENGINES = ("nbcache", "floor", "floor+outputs")


def _sphinx(project: Path, valgrind: bool) -> int | None:
    """Build ``project``; with ``valgrind``, the instructions executed (None: not counted)."""
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-d", "_build/doctrees"]
    command += [".", "_build/html", "-q"]
    out = project.parent / f"{project.name}.cachegrind"
    if valgrind:
        tool = ["valgrind", "--tool=cachegrind", "--cache-sim=no"]
        tool += [f"--cachegrind-out-file={os.devnull}", f"--log-file={out}"]
        command = [*tool, *command]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(command, cwd=project, env=env, check=True, stdout=subprocess.DEVNULL)
    if not valgrind:
        return None
    counts = re.findall(r"I\s+refs:\s+([\d,]+)", out.read_text())
    return sum(int(c.replace(",", "")) for c in counts)  # forked children report their own


def make_projects(work: Path, n: int, cells: int) -> dict[str, Path]:
    sys.path.insert(0, str(BENCH_DIR))
    import make_corpus  # the harness's generator: same pages as the benchmark

    ours, floor, outputs = work / "nbcache", work / "floor", work / "floor+outputs"
    corpus = ["--n", str(n), "--cells", str(cells), "--sleep", "0.05", "--formats", "ipynb"]
    make_corpus.main([str(ours), *corpus, "--engine", str(ENGINE)])
    shutil.copytree(ours, floor)
    make_corpus.write_conf(floor, "mystnb-off")
    _sphinx(ours, valgrind=False)  # cold: executes every page once, fills the cache
    shutil.copytree(floor, outputs)
    with open_cache(docs_dir=ours) as cache:
        for page in sorted((ours / "pages").glob("*.ipynb")):
            nbformat.write(cache.merge(page), outputs / "pages" / page.name)
    for project in (floor, outputs):
        _sphinx(project, valgrind=False)
    return {"nbcache": ours, "floor": floor, "floor+outputs": outputs}


def run_scenario(name: str, projects: dict[str, Path], edit: int) -> dict[str, int]:
    sys.path.insert(0, str(BENCH_DIR))
    import make_corpus

    for project in projects.values():
        if name == "S3":
            make_corpus.edit_text(project, edit, tag=f"edit {edit}")
        elif name == "S5":
            shutil.rmtree(project / "_build")
    with ThreadPoolExecutor(len(projects)) as pool:  # counts do not depend on contention
        counts = pool.map(lambda p: _sphinx(p, valgrind=True), projects.values())
        return {engine: count or 0 for engine, count in zip(projects, counts, strict=True)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="pages (default 20)")
    parser.add_argument("--cells", type=int, default=4, help="code cells a page (default 4)")
    parser.add_argument("--scenarios", default="S2,S3,S5,S2", help="in order (default S2,S3,S5,S2)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("overhead.py needs valgrind (apt install valgrind); skipped", file=sys.stderr)
        return 0
    if not (BENCH_DIR / "make_corpus.py").exists():
        print(f"benchmark harness not found: {BENCH_DIR}", file=sys.stderr)
        return 2
    results: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="nbcache-overhead-") as tmp:
        projects = make_projects(Path(tmp), args.n, args.cells)
        # by default S2 twice: the second shows a no-op after a no-op
        for i, name in enumerate(args.scenarios.split(",")):
            results[f"{name}" if name not in results else f"{name}'"] = run_scenario(
                name, projects, edit=i + 1
            )
    print(f"# instructions (valgrind), {args.n} ipynb pages x {args.cells} code cells")
    print("| scenario | nbcache | floor | floor+outputs | ours/floor | ours/(floor+outputs) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    summary: dict[str, dict[str, float]] = {}
    for label, counts in results.items():
        ours, floor, outputs = (counts[e] for e in ENGINES)
        ratios = {"ours/floor": ours / floor, "ours/floor+outputs": ours / outputs}
        summary[label] = {**{e: counts[e] for e in ENGINES}, **ratios}
        what = SCENARIOS[label.rstrip("'")]
        print(
            f"| {label} {what} | {ours / 1e9:.3f} G | {floor / 1e9:.3f} G | {outputs / 1e9:.3f} G"
            f" | {ratios['ours/floor']:.3f} | {ratios['ours/floor+outputs']:.3f} |"
        )
    if args.json:
        data = {"n": args.n, "cells": args.cells, "scenarios": summary}
        args.json.write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
