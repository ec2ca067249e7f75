#!/usr/bin/env python3
"""Where the time of one cold build goes: Sphinx's phases, and the CPU of each process.

    python benchmarks/profile_cold.py bench-work [--n 400] [--cells 1]
        [--engines mystnb-off,nbcache,nbcache-inprocess]

For each engine it generates the harness's corpus (``make_corpus.py``, one-cell pages by
default: tiny400), adds a ``setup()`` to its ``conf.py`` that notes the wall clock, the main
thread's CPU (``time.thread_time``) and the process's CPU (``getrusage``) when Sphinx starts
reading, when reading ends (``env-updated``) and when the build ends, runs ``sphinx-build``
once, and takes the CPU of everything the build started (the executor's process, the warm
process, the kernels: ``RUSAGE_CHILDREN`` of this script, less the build's own) once it exited.
It prints one Markdown table, engines side by side. Runs are not repeated: it shows shares,
not figures to compare across runs (``per_page.py`` does that).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT.parent / "shared" / "bench"
OURS = ROOT / "benchmarks" / "engines"

#: appended to the corpus's conf.py: the marks, written as JSON when the build ends
HOOK = """

def setup(app):
    import json, resource, time

    marks = {}

    def mark(name):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        marks[name] = {
            "wall": time.time(),
            "main_cpu": time.thread_time(),
            "process_cpu": usage.ru_utime + usage.ru_stime,
        }

    def finished(app, exc):
        mark("end")
        with open(os.path.join(_HERE, "_profile.json"), "w") as out:
            json.dump(marks, out)

    mark("configured")
    app.connect("env-before-read-docs", lambda app, env, docnames: mark("reading"))
    app.connect("env-updated", lambda app, env: mark("read"))
    app.connect("build-finished", finished)
"""


def engine_file(name: str) -> Path:
    ours = OURS / f"{name}.py"
    return ours if ours.exists() else HARNESS / "engines" / f"{name}.py"


def profile(work: Path, engine: str, n: int, cells: int) -> dict[str, float]:
    corpus = work / f"profile-{engine}"
    shutil.rmtree(corpus, ignore_errors=True)
    subprocess.run(
        [sys.executable, str(HARNESS / "make_corpus.py"), str(corpus), "--n", str(n),
         "--cells", str(cells), "--engine", str(engine_file(engine))],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    with (corpus / "conf.py").open("a") as conf:
        conf.write(HOOK)
    build = Path(sys.executable).with_name("sphinx-build")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    done = subprocess.run(
        [str(build), "-b", "html", "-d", "_build/doctrees", ".", "_build/html"],
        cwd=corpus, capture_output=True, text=True,
    )  # fmt: skip
    ended = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"{engine}: sphinx-build failed:\n{done.stderr[-2000:]}")
    marks = json.loads((corpus / "_profile.json").read_text())
    tree = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    own = marks["end"]["process_cpu"]
    waited = re.search(r"reading waited ([\d.]+) s", done.stdout + done.stderr)
    return {
        "wall": ended - started,
        "start-up (to reading)": marks["reading"]["wall"] - started,
        "reading": marks["read"]["wall"] - marks["reading"]["wall"],
        "writing and exit": ended - marks["read"]["wall"],
        "reading waited for results": float(waited.group(1)) if waited else 0.0,
        "CPU: build, main thread (Sphinx)": marks["end"]["main_cpu"],
        "CPU: build, other threads (ours)": own - marks["end"]["main_cpu"],
        "CPU: executor process, warm process, kernels": tree - own,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--cells", type=int, default=1)
    parser.add_argument("--engines", default="mystnb-off,nbcache,nbcache-inprocess")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    engines = args.engines.split(",")
    rows = {engine: profile(args.work, engine, args.n, args.cells) for engine in engines}
    print(f"cold build, {args.n} pages x {args.cells} cells; seconds")
    print("| | " + " | ".join(engines) + " |")
    print("|---" * (len(engines) + 1) + "|")
    for what in rows[engines[0]]:
        print(f"| {what} | " + " | ".join(f"{rows[e][what]:.1f}" for e in engines) + " |")


if __name__ == "__main__":
    main()
