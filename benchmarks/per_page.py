#!/usr/bin/env python3
"""Per-page cost of a cold build: one-cell pages at 20 / 100 / 400 pages, ours vs the floor.

    python benchmarks/per_page.py bench-work [--sizes 20,100,400] [--repeat 2] [--run]
        [--no-fork] [--in-process] [--png docs/_static/per_page.png]

With ``--run`` it first runs the shared harness (``run_bench.py``, cold builds only, engines
``mystnb-off`` (the render-only floor) and ours, label ``tinyN``) with this interpreter, and
with ``--no-fork`` another engine: ours with forked kernels off; with ``--in-process``, ours
with the local executor in a thread of the build's process (``nbcache_executor_process =
False``). Then it reads the
``results-tiny*.jsonl`` files of ``bench-work`` and prints, per size, the median wall time of
each engine, seconds per page, our cost over the floor per page, and the ratio; ``--png``
draws seconds per page against pages.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT.parent / "shared" / "bench" / "run_bench.py"
OURS = ROOT / "benchmarks" / "engines" / "nbcache.py"
NO_FORK = ROOT / "benchmarks" / "engines" / "nbcache-nofork.py"
IN_PROCESS = ROOT / "benchmarks" / "engines" / "nbcache-inprocess.py"


def run(work: Path, sizes: list[int], repeat: int, no_fork: bool, in_process: bool) -> None:
    engines = ["mystnb-off", str(OURS)] + ([str(NO_FORK)] if no_fork else [])
    engines += [str(IN_PROCESS)] if in_process else []
    for size in sizes:
        label = f"tiny{size}"
        out = work / f"results-{label}.jsonl"
        out.unlink(missing_ok=True)
        subprocess.run(
            [sys.executable, str(HARNESS), "--engines", ",".join(engines),
             "--corpus-args", f"--n {size} --cells 1", "--scenarios", "S1",
             "--repeat", str(repeat), "--workdir", str(work), "--label", label,
             "--out", str(out)],
            check=True,
        )  # fmt: skip


def summarise(work: Path) -> dict[int, dict[str, float]]:
    walls: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(work.glob("results-tiny*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line) if line.strip() else None
            if not row or row.get("scenario") != "S1" or row.get("rc"):
                continue
            size = int(str(row["label"]).removeprefix("tiny"))
            walls[size][str(row["engine"])].append(float(row["wall_s"]))
    return {
        size: {engine: statistics.median(values) for engine, values in by_engine.items()}
        for size, by_engine in sorted(walls.items())
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--sizes", default="20,100,400")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--run", action="store_true", help="run the builds first")
    parser.add_argument("--no-fork", action="store_true", help="also ours without forking")
    parser.add_argument(
        "--in-process", action="store_true", help="also ours with the executor in the build"
    )
    parser.add_argument("--png", type=Path, default=None)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.run:
        args.work.mkdir(parents=True, exist_ok=True)
        run(args.work, sizes, args.repeat, args.no_fork, args.in_process)
    table = summarise(args.work)
    engines = sorted({e for row in table.values() for e in row if e != "mystnb-off"})
    print("| pages | floor s | " + " | ".join(f"{e} s | {e} s/page | over floor s/page | "
          f"{e}/floor" for e in engines) + " |")  # fmt: skip
    print("|---|---|" + "---|---|---|---|" * len(engines))
    for size, row in table.items():
        floor = row.get("mystnb-off")
        cells = [str(size), f"{floor:.2f}" if floor else "-"]
        for engine in engines:
            wall = row.get(engine)
            if wall is None or floor is None:
                cells += ["-"] * 4
                continue
            cells += [f"{wall:.2f}", f"{wall / size:.3f}", f"{(wall - floor) / size:.3f}",
                      f"{wall / floor:.2f}"]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    if args.png is not None and table:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.6))
        for engine in ["mystnb-off", *engines]:
            points = [(s, r[engine] / s) for s, r in table.items() if engine in r]
            if points:
                label = "render-only floor" if engine == "mystnb-off" else engine
                ax.plot(*zip(*points, strict=True), marker="o", label=label)
        for engine in engines:  # what execution adds to each page
            points = [
                (s, (r[engine] - r["mystnb-off"]) / s)
                for s, r in table.items()
                if engine in r and "mystnb-off" in r
            ]
            if points:
                ax.plot(*zip(*points, strict=True), linestyle="--", marker=".",
                        label=f"{engine} over the floor")  # fmt: skip
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(list(table), [str(s) for s in table])
        ax.set_xlabel("one-cell pages (cold build)")
        ax.set_ylabel("seconds per page")
        ax.set_ylim(bottom=0)
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(args.png, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
