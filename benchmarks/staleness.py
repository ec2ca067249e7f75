"""Cost of the staleness check alone, per page, at 100 / 500 / 2,000 pages.

Generates N notebook pages (ipynb, MyST md and percent py in turn, 4 code cells each), stores
a result for every one (no kernel runs: the check is what is timed), then times
``plan.stale.plan_pages`` as a build does it:

* ``cold``: no memo (a fresh build folder, e.g. CI restore): every file is read and its bytes
  hashed; these bytes were read before, so nothing is parsed;
* ``parsed``: as cold, but the bytes are new too: every file is parsed and hashed;
* ``warm``: memo valid (no-op rebuild): a ``stat`` per page plus one batched lookup.

Then again with ten recorded files per page (each result read ten of 50 data files) and four
recorded package versions, as a traced run records them:

* ``cold+deps``: no memo of pages nor of file hashes: every file is hashed once;
* ``warm+deps``: both memos valid (a rebuild): a ``stat`` per page and per recorded file.

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
from sphinx_nbcache.execute._trace import sha256_file
from sphinx_nbcache.notebooks.pages import Page
from sphinx_nbcache.plan.environment import kernel_fingerprint
from sphinx_nbcache.plan.freshness import Freshness
from sphinx_nbcache.plan.lookup import Lookup
from sphinx_nbcache.plan.memo import Memo
from sphinx_nbcache.plan.stale import plan_pages
from sphinx_nbcache.records import Dependencies, Outputs, Record
from sphinx_nbcache.store import Store

FILES_PER_PAGE = 10
DATA_FILES = 50
PACKAGES = ("nbformat", "jupytext", "sphinx", "sqlalchemy")

LABELS = ("cold", "parsed", "warm", "cold+deps", "warm+deps")
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


def dependencies(src: Path, page: int) -> Dependencies:
    """What a traced run of page ``page`` would record: ten data files, four packages."""
    from importlib import metadata

    files = []
    for n in range(FILES_PER_PAGE):
        relative = f"data/d{(page * 7 + n) % DATA_FILES:03d}.csv"
        files.append((relative, sha256_file(src / relative)))
    return Dependencies(
        files=tuple(sorted(files)),
        packages=tuple(sorted((p, metadata.version(p)) for p in PACKAGES)),
        environment=(("kernel", kernel_fingerprint("python3")),),
    )


def measure(count: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="nbcache-stale-") as folder:
        root = Path(folder)
        options = Options.from_mapping(
            {"nb_custom_formats": {".py": ["jupytext.reads", {"fmt": "py:percent"}]}},
            base_dir=root,
        )
        src = root / "src"
        (src / "data").mkdir(parents=True)
        for n in range(DATA_FILES):
            (src / "data" / f"d{n:03d}.csv").write_text(f"a,b\n{n},{n * n}\n" * 50)
        pages = write_pages(src, count)
        results: dict[str, float] = {"pages": count}
        for deps in (False, True):
            cache = root / ("cache-deps" if deps else "cache")
            store = Store(cache)
            memos: dict[str, Memo] = {}
            for i, state in enumerate(plan_pages(pages, options, store, memos)):
                assert state.key is not None
                cells = tuple({"execution_count": 1, "outputs": []} for _ in range(4))
                recorded = dependencies(src, i) if deps else None
                record = Record(
                    state.key,
                    "ok",
                    None,
                    page=state.page.name,
                    kernel="python3",
                    dependencies=recorded,
                )
                store.put(record, Outputs(cells))
            hashes: dict[str, tuple[int, int, str]] = {}
            labels = ("cold", "warm") if deps else ("cold", "parsed", "warm")
            for label in labels:
                times = []
                for _ in range(repeat):
                    store.close()
                    if label == "parsed":  # forget what reading these bytes found: parse
                        with sqlite3.connect(cache / "nbcache.db") as db:
                            db.execute("DELETE FROM sources")
                        db.close()
                    store = Store(cache)
                    use = dict(memos) if label == "warm" else {}
                    files = hashes if label == "warm" else {}
                    start = time.perf_counter()
                    check = Freshness(options, src, files)
                    lookup = Lookup(options, check, store.lookup)
                    states = plan_pages(pages, options, store, use, lookup=lookup)
                    times.append(time.perf_counter() - start)
                    hashes = check.memo
                    assert all(s.verdict == "cached" for s in states), {s.reason for s in states}
                name = f"{label}+deps" if deps else label
                per_page = statistics.median(times) / count * 1000
                results[f"{name}_ms_per_page"] = round(per_page, 3)
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
        " | warm, ms/page (stat) | cold + 10 files, ms/page | warm + 10 files, ms/page |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        cells = [row[f"{k}_ms_per_page"] for k in LABELS]
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
        ("cold+deps", "cold, 10 recorded files a page"),
        ("warm+deps", "warm, 10 recorded files a page"),
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
