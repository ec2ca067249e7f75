#!/usr/bin/env python3
"""Summarise the shared harness's JSON lines: one markdown table per label.

    python benchmarks/report.py bench-work [--png docs/_static/bench.png]

Reads ``<workdir>/results-*.jsonl`` (what ``nox -s bench`` writes, one file per label) or the
files given with ``--results``. Per label and scenario it prints the median wall time of each
engine, the ratios ours/peer and ours/floor, the kernel-side execution counts (``kexec``, one
per repetition) next to the ideal count, the exit codes and the warning counts. It writes the
same figures to ``<workdir>/summary.json`` and, with ``--png``, a bar chart of the wall times.

``--cpu`` adds a table of the CPU seconds each build used (user + system of sphinx-build and
every process it waited for, kernels included, from GNU time's file beside the build log):
on a shared machine the wall times move with the other work, the CPU a build spends does
not, and wasted work (BLAS threads spinning on oversubscribed CPUs) shows there.

``--ratio A:B`` (repeatable) adds a column of engine A's median over engine B's, e.g.
``--ratio nbcache:nbcache-nocaps`` (thread caps on vs off, measured in the same run).

A ``!`` after a kexec count marks a count that differs from what a caching engine should
execute (the harness's ``ideal``; S7b/S7c have no fixed ideal).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

DESCR = {
    "S1": "cold",
    "S2": "no-op",
    "S3": "text-edit",
    "S4": "code-edit",
    "S5": "CI-restore",
    "S6": "parallel-cold",
    "S7a": "fail-cold",
    "S7b": "fail-CI-restore",
    "S7c": "fail-CI-restore-W",
}

Row = dict[str, Any]


def load(paths: list[Path]) -> list[Row]:
    rows: list[Row] = []
    for path in paths:
        for n, line in enumerate(path.read_text(encoding="utf8").splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    print(f"{path}:{n}: skipped, {exc}", file=sys.stderr)
                    continue
                # run_bench.py rows only (run_jcache.py rows have no engine/scenario)
                if {"label", "engine", "scenario", "rep", "wall_s"} <= row.keys():
                    rows.append(row)
    return rows


def cpu_seconds(row: Row) -> float | None:
    """User + system seconds of the build and its reaped children (GNU time), if recorded."""
    try:
        text = Path(row["log"]).with_suffix(".time").read_text(encoding="utf8")
    except (KeyError, OSError):
        return None
    found = re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", text)
    return round(sum(map(float, found)), 2) if len(found) == 2 else None


def _ordered(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def summarise(
    rows: list[Row], ours: str, peer: str, floor: str, pairs: tuple[tuple[str, str], ...] = ()
) -> dict[str, Any]:
    """{label: {"engines": [...], "scenarios": {scen: {...}}}} with medians and ratios."""
    by_label: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row)
    summary: dict[str, Any] = {}
    for label, lrows in by_label.items():
        present = _ordered([r["engine"] for r in lrows])
        engines = [e for e in (ours, peer, floor) if e in present]
        engines += [e for e in present if e not in engines]
        scenarios: dict[str, Any] = {}
        for scen in _ordered([r["scenario"] for r in lrows]):
            entry: dict[str, Any] = {"what": DESCR.get(scen, scen), "engines": {}}
            for engine in engines:
                runs = [r for r in lrows if r["engine"] == engine and r["scenario"] == scen]
                if not runs:
                    continue
                runs.sort(key=lambda r: r["rep"])
                # a crashed build (non-zero exit where 0 is expected: all but S7c, which runs
                # with -W) says nothing about speed; its time is left out of the median
                good = [r for r in runs if scen == "S7c" or r.get("rc") == 0] or runs
                walls = [r["wall_s"] for r in good]
                entry["ideal"] = runs[0].get("ideal")
                entry["engines"][engine] = {
                    "wall_median": round(statistics.median(walls), 2),
                    "walls": [r["wall_s"] for r in runs],
                    "crashed": len(runs) - len(good),
                    "kexec": [r.get("kernel_executed") for r in runs],
                    "exec": [r.get("executed") for r in runs],
                    "rc": [r.get("rc") for r in runs],
                    "warnings": [r.get("warnings") for r in runs],
                    "tree_rss_mb": [r.get("tree_rss_mb") for r in runs],
                }
                cpus = [c for c in map(cpu_seconds, good) if c is not None]
                if cpus:
                    entry["engines"][engine]["cpu_median"] = round(statistics.median(cpus), 2)
            med = {e: v["wall_median"] for e, v in entry["engines"].items()}
            for name, ref in (("ours/peer", peer), ("ours/floor", floor)):
                if ours in med and ref in med and med[ref] > 0:
                    entry[name] = round(med[ours] / med[ref], 2)
            for a, b in pairs:
                if a in med and b in med and med[b] > 0:
                    entry[f"{a}/{b}"] = round(med[a] / med[b], 2)
            scenarios[scen] = entry
        summary[label] = {"engines": engines, "scenarios": scenarios}
    return summary


def _counts(values: list[Any], ideal: Any) -> str:
    def one(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v}!" if ideal is not None and v != ideal else str(v)

    return "/".join(one(v) for v in values)


def _join(values: list[Any]) -> str:
    return "/".join(map(str, values))


def markdown(
    summary: dict[str, Any],
    ours: str,
    peer: str,
    floor: str,
    pairs: tuple[tuple[str, str], ...] = (),
    cpu: bool = False,
) -> str:
    out: list[str] = []
    for label, data in summary.items():
        engines = data["engines"]
        ratios = [k for k, ref in (("ours/peer", peer), ("ours/floor", floor)) if ref in engines]
        ratios = ratios if ours in engines else []
        names = {"ours/peer": f"{ours}/{peer}", "ours/floor": f"{ours}/{floor}"}
        for a, b in pairs:
            if a in engines and b in engines:
                ratios.append(f"{a}/{b}")
                names[f"{a}/{b}"] = f"{a}/{b}"
        head = ["scenario", *(f"{e} s" for e in engines), *(names[k] for k in ratios)]
        kexec_engines = [e for e in (ours, peer) if e in engines]
        head += [f"kexec {e}" for e in kexec_engines] + ["ideal"]
        head += [f"rc {e}" for e in kexec_engines] + [f"warn {e}" for e in kexec_engines]
        out += [f"### {label}", "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for scen, entry in data["scenarios"].items():
            eng = entry["engines"]
            cells = [f"{scen} {entry['what']}"]
            cells += [f"{eng[e]['wall_median']:.2f}" if e in eng else "" for e in engines]
            cells += [f"{entry[k]:.2f}" if k in entry else "" for k in ratios]
            ideal = entry.get("ideal")
            cells += [_counts(eng[e]["kexec"], ideal) if e in eng else "" for e in kexec_engines]
            cells.append("-" if ideal is None else str(ideal))
            for key in ("rc", "warnings"):
                cells += [_join(eng[e][key]) if e in eng else "" for e in kexec_engines]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    if cpu:
        out += cpu_tables(summary)
    out.append(
        "Wall times are medians over the repetitions, leaving out builds that crashed (non-zero"
        " exit outside S7c: see the rc columns); kexec counts executions inside the kernels"
        " (one figure per repetition, `!` = differs from the ideal)."
    )
    return "\n".join(out) + "\n"


def cpu_tables(summary: dict[str, Any]) -> list[str]:
    """Per label, the median CPU seconds of each engine's builds (see ``--cpu``)."""
    out: list[str] = []
    for label, data in summary.items():
        engines = data["engines"]
        out += [f"### {label}: CPU seconds (build and kernels)", ""]
        out += ["| scenario | " + " | ".join(f"{e} cpu s" for e in engines) + " |"]
        out += ["|" + " --- |" * (len(engines) + 1)]
        for scen, entry in data["scenarios"].items():
            eng = entry["engines"]
            cells = [f"{scen} {entry['what']}"]
            cells += [f"{eng[e]['cpu_median']:.1f}" if "cpu_median" in eng.get(e, {}) else ""
                      for e in engines]  # fmt: skip
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return out


def plot(summary: dict[str, Any], png: Path, ours: str, peer: str, floor: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart", file=sys.stderr)
        return False
    labels = list(summary)
    if not labels:
        return False
    fig, axes = plt.subplots(len(labels), 1, figsize=(9, 3.6 * len(labels)), squeeze=False)
    shown = [(ours, "sphinx-nbcache", "#1b9e77"), (peer, "myst-nb cache", "#d95f02")]
    shown.append((floor, "render only (floor)", "#7570b3"))
    width = 0.27
    for ax, label in zip(axes[:, 0], labels, strict=True):
        scens = summary[label]["scenarios"]
        names = list(scens)
        for k, (engine, title, colour) in enumerate(shown):
            xs, hs, lo, hi = [], [], [], []
            for i, scen in enumerate(names):
                data = scens[scen]["engines"].get(engine)
                if data:
                    med = data["wall_median"]
                    xs.append(i + (k - 1) * width)
                    hs.append(med)
                    lo.append(med - min(data["walls"]))
                    hi.append(max(data["walls"]) - med)
            if xs:
                ax.bar(xs, hs, width, yerr=[lo, hi], capsize=2, label=title, color=colour)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([f"{s}\n{scens[s]['what']}" for s in names], fontsize=8)
        ax.set_ylabel("wall time, s (median; bars: min-max)")
        ax.set_title(label)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("workdir", type=Path, help="the harness's --workdir (bench-work)")
    ap.add_argument("--results", type=Path, nargs="*", help="JSONL files (default: workdir)")
    ap.add_argument("--ours", default="nbcache")
    ap.add_argument("--peer", default="mystnb-cache")
    ap.add_argument("--floor", default="mystnb-off")
    ap.add_argument("--png", type=Path, help="write a bar chart of the wall times here")
    ap.add_argument("--cpu", action="store_true", help="add the builds' CPU seconds")
    ap.add_argument(
        "--ratio", action="append", default=[], metavar="A:B", help="add a column A's / B's"
    )
    args = ap.parse_args(argv)
    pairs = tuple((a, b) for a, _, b in (r.partition(":") for r in args.ratio) if a and b)

    paths = args.results or sorted(args.workdir.glob("results-*.jsonl"))
    if not paths:
        print(f"no results-*.jsonl in {args.workdir}", file=sys.stderr)
        return 1
    rows = load(paths)
    summary = summarise(rows, args.ours, args.peer, args.floor, pairs)
    print(markdown(summary, args.ours, args.peer, args.floor, pairs, args.cpu))
    out = args.workdir / "summary.json"
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf8")
    print(f"wrote {out}")
    if args.png and plot(summary, args.png, args.ours, args.peer, args.floor):
        print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
