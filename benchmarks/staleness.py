"""Cost of the staleness check alone, per page, at 100 / 500 / 2,000 pages.

Generates N notebook pages (ipynb, MyST md and percent py in turn, 4 code cells each), stores
a result for every one (no kernel runs: the check is what is timed), then times
``plan.plan_pages`` as a build does it:

* ``cold``: no memo (a fresh build folder, e.g. CI restore): every file is read and its bytes
  hashed; these bytes were read before, so nothing is parsed;
* ``parsed``: as cold, but the bytes are new too: every file is parsed and hashed;
* ``warm``: memo valid (no-op rebuild): a ``stat`` per page plus one batched lookup.

Usage: ``python benchmarks/staleness.py [--sizes 100,500,2000] [--json F] [--png F]``
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from sphinx_nbcache.config import Options
from sphinx_nbcache.plan import Memo, Page, plan_pages
from sphinx_nbcache.records import Outputs, Record
from sphinx_nbcache.store import Store

CELL = "x_{i}_{j} = {j} * 2\nprint('page {i} cell {j}', x_{i}_{j})"


def write_pages(root: Path, count: int) -> list[Page]:
    pages = []
    for i in range(count):
        cells = [CELL.format(i=i, j=j) for j in range(4)]
        kind = ("ipynb", "md", "py")[i % 3]
        path = root / f"p{i:05d}.{kind}"
        if kind == "ipynb":
            nb = nbformat.v4.new_notebook()
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
            for j, code in enumerate(cells):
                nb.cells.append(nbformat.v4.new_markdown_cell(f"Prose {j} of page {i}."))
                nb.cells.append(nbformat.v4.new_code_cell(code))
            nbformat.write(nb, path)
        elif kind == "md":
            head = "---\njupytext:\n  text_representation:\n    format_name: myst\n"
            head += "kernelspec:\n  name: python3\n  display_name: Python 3\n---\n\n"
            body = "".join(
                f"Prose {j}.\n\n```{{code-cell}}\n{c}\n```\n\n" for j, c in enumerate(cells)
            )
            path.write_text(head + f"# Page {i}\n\n" + body)
        else:
            head = "# ---\n# jupyter:\n#   kernelspec:\n#     name: python3\n"
            head += "#     display_name: Python 3\n# ---\n\n"
            body = "".join(
                f"# %% [markdown]\n# Prose {j}.\n\n# %%\n{c}\n\n" for j, c in enumerate(cells)
            )
            path.write_text(head + body)
        pages.append(Page(path.stem, path))
    return pages


def measure(count: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="nbcache-stale-") as folder:
        root = Path(folder)
        options = Options.from_mapping(
            {"nb_custom_formats": {".py": ["jupytext.reads", {"fmt": "py:percent"}]}},
            base_dir=root,
        )
        (root / "src").mkdir()
        pages = write_pages(root / "src", count)
        store = Store(root / "cache")
        memos: dict[str, Memo] = {}
        for state in plan_pages(pages, options, store, memos):  # store a result for each
            assert state.key is not None
            cells = tuple({"execution_count": 1, "outputs": []} for _ in range(4))
            store.put(Record(state.key, "ok", None, page=state.page.name), Outputs(cells))
        results: dict[str, float] = {"pages": count}
        for label in ("cold", "parsed", "warm"):
            times = []
            for _ in range(repeat):
                store.close()
                if label == "parsed":  # forget what reading these bytes found: parse again
                    with sqlite3.connect(root / "cache" / "nbcache.db") as db:
                        db.execute("DELETE FROM sources")
                    db.close()
                store = Store(root / "cache")
                use = dict(memos) if label == "warm" else {}
                start = time.perf_counter()
                states = plan_pages(pages, options, store, use)
                times.append(time.perf_counter() - start)
                assert all(s.verdict == "cached" for s in states), {s.verdict for s in states}
            results[f"{label}_ms_per_page"] = round(statistics.median(times) / count * 1000, 3)
        store.close()
        return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,500,2000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--png", type=Path, help="plot ms/page against pages (matplotlib)")
    args = parser.parse_args(argv)
    rows = [measure(int(n), args.repeat) for n in args.sizes.split(",")]
    print(
        "| pages | cold, ms/page (read + hash) | parsed, ms/page (read + parse + hash)"
        " | warm, ms/page (stat) |"
    )
    print("|---|---|---|---|")
    for row in rows:
        cells = [row[f"{k}_ms_per_page"] for k in ("cold", "parsed", "warm")]
        print(f"| {row['pages']:,} | " + " | ".join(str(c) for c in cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if args.png:
        plot(rows, args.png)
    return 0


def plot(rows: list[dict[str, float]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pages = [row["pages"] for row in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, name in (
        ("cold", "cold: read + hash"),
        ("parsed", "parsed: read + parse + hash"),
        ("warm", "warm: stat only"),
    ):
        key = f"{label}_ms_per_page"
        if all(key in row for row in rows):
            ax.plot(pages, [row[key] for row in rows], marker="o", label=name)
    ax.axhline(2.0, color="grey", linestyle=":", label="2 ms/page")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("notebook pages")
    ax.set_ylabel("staleness check, ms per page")
    ax.legend(fontsize="small")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
