"""Development sessions: ``nox -s tests``, ``tests_sphinx7``, ``docs``, ``lint``, ``package``,
``bench``.

Every session gets its own virtualenv under ``.nox/`` (re-used on later runs) with a
``python3`` kernelspec installed *into that venv*, so kernels run the venv's interpreter.
Jupyter's per-user folders are pointed into the session's temporary folder, so a
``python3`` kernelspec in ``~/.local/share/jupyter`` cannot shadow the venv's one.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from pathlib import Path

import nox
from nox.command import CommandFailed

nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"  # re-use .nox/<session> when it still matches; installs re-run
nox.options.sessions = ["lint", "tests"]

ROOT = Path(__file__).resolve().parent
BENCH_DIR = ROOT.parent / "shared" / "bench"  # the shared harness, outside this repo
BENCH_ENGINE = ROOT / "benchmarks" / "engines" / "nbcache.py"
BENCH_ENGINE_FIXED = ROOT / "benchmarks" / "engines" / "nbcache_jobs2.py"
BENCH_WORK = ROOT / "bench-work"
ENGINES = ROOT / "benchmarks" / "engines"
#: labels whose corpus benchmarks/corpora.py writes (not make_corpus.py): the engines and
#: scenarios each is run with by default, and the ratios its table adds
CORPORA: dict[str, tuple[list[str], str, list[str]]] = {
    # ours with and without the thread caps, autoscaled and one per CPU (nbcache_jobs = 2),
    # and as before both (nbcache-before: no caps, the autoscaler's old rule)
    "blas": (
        ["nbcache-nocaps.py", "nbcache_jobs2.py", "nbcache_jobs2-nocaps.py",
         "nbcache-before.py"],
        "S1,S5",
        ["nbcache:nbcache-nocaps", "nbcache_jobs2:nbcache_jobs2-nocaps",
         "nbcache:nbcache_jobs2", "nbcache:nbcache-before"],
    ),
    # a book: cold, edits and a CI restore against the peer (no S6/S7: it has its own
    # failing pages)
    "book": (
        ["nbcache-nocaps.py", "nbcache-before.py"],
        "S1,S2,S3,S4,S5",
        ["nbcache:nbcache-nocaps", "nbcache:nbcache-before"],
    ),
}  # fmt: skip

# The oldest end we support: Sphinx 7 with the myst stack that jupyter-book 1 pins.
SPHINX7_PINS = (
    "sphinx~=7.0",
    "myst-parser~=3.0",
    "myst-nb~=1.0",
    "jupyter-book==1.0.4.post1",
)


def _jupyter_env(session: nox.Session) -> dict[str, str]:
    """Environment isolating Jupyter/IPython from the user's own folders."""
    tmp = Path(session.create_tmp()).resolve()  # kernels run in other folders
    return {
        "JUPYTER_DATA_DIR": str(tmp / "jupyter-data"),
        "JUPYTER_CONFIG_DIR": str(tmp / "jupyter-config"),
        "IPYTHONDIR": str(tmp / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",  # silences jupyter_core's deprecation warning
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # silences debugpy's frozen-modules note
    }


def _install_kernel(session: nox.Session) -> None:
    session.run(
        "python", "-m", "ipykernel", "install", "--sys-prefix",
        "--name", "python3", "--display-name", "Python 3",
    )  # fmt: skip


def _versions(session: nox.Session, *dists: str) -> None:
    code = (
        "import importlib.metadata as m, sys\n"
        "print('python', sys.version.split()[0])\n"
        f"for d in {list(dists)!r}:\n"
        "    print(d, m.version(d))\n"
    )
    session.run("python", "-c", code, log=False)


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite on the newest stack, with the real services (what CI runs; `.ci/run`)."""
    session.install(".[test]")
    _install_kernel(session)
    _versions(session, "sphinx", "myst-nb", "myst-parser", "nbclient", "jupytext")
    # tests marked jb1 need jupyter-book 1, installed only by tests_sphinx7;
    # a -m given in posargs replaces this one (pytest keeps the last).
    session.run(
        "pytest", "-p", "no:cacheprovider", "-m", "not jb1", *session.posargs,
        env=_jupyter_env(session),
    )  # fmt: skip


@nox.session
def tests_sphinx7(session: nox.Session) -> None:
    """The test suite on the oldest end: Sphinx 7, myst-parser 3, jupyter-book 1."""
    session.install(".[test]", *SPHINX7_PINS)
    _install_kernel(session)
    _versions(session, "sphinx", "docutils", "myst-nb", "myst-parser", "jupyter-book")
    session.run("python", "-c", "import sphinx_nbcache, jupyter_book, sphinx")
    # the tests on real services (tests/services.py) run in `tests` only, to save CI time;
    # a -m given in posargs replaces this one (pytest keeps the last)
    session.run(
        "pytest", "-p", "no:cacheprovider", "-m", "not services", *session.posargs,
        env=_jupyter_env(session),
    )  # fmt: skip


@nox.session
def docs(session: nox.Session) -> None:
    """Build docs/ with the extension itself (notebooks cached in docs/.nbcache)."""
    session.install(".[docs]")
    _install_kernel(session)
    session.run(
        "sphinx-build", "-b", "html", "-W", "--keep-going",
        "docs", "docs/_build/html", *session.posargs,
        env=_jupyter_env(session),
    )  # fmt: skip
    session.log(f"open {ROOT / 'docs/_build/html/index.html'}")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, mypy --strict; runs all three, fails if any failed."""
    # pinned so that a new release cannot fail CI on unchanged code; bump deliberately
    session.install(
        "-e", ".[serve]", "ruff==0.17.6", "mypy==2.4.1",
        "types-docutils", "types-PyYAML", "types-Pygments", "types-psutil",
    )  # fmt: skip
    failed = []
    for cmd in (
        ("ruff", "check", "."),
        ("ruff", "format", "--check", "."),
        ("mypy", "--strict", "sphinx_nbcache"),
    ):
        try:
            session.run(*cmd)
        except CommandFailed:
            failed.append(" ".join(cmd))
    if failed:
        session.error("failed: " + "; ".join(failed))


def _wheel_problems(wheel: Path, version: str) -> list[str]:
    """What is wrong with the wheel's contents: a missing py.typed, files outside the package
    (tests, docs, ...), bytecode, or a version other than ``sphinx_nbcache.__version__``."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    dist_info = f"sphinx_nbcache-{version}.dist-info/"
    problems = []
    if "sphinx_nbcache/py.typed" not in names:
        problems.append("no sphinx_nbcache/py.typed (type checkers would ignore the annotations)")
    stray = [n for n in names if not n.startswith(("sphinx_nbcache/", dist_info))]
    if stray:
        problems.append(f"files outside the package: {', '.join(stray[:10])}")
    compiled = [n for n in names if n.endswith((".pyc", ".pyo")) or "__pycache__/" in n]
    if compiled:
        problems.append(f"bytecode: {', '.join(compiled[:10])}")
    if f"{dist_info}METADATA" not in names:
        problems.append(
            f"no {dist_info}: its version is not sphinx_nbcache.__version__ ({version}); "
            "make pyproject.toml's version equal to it"
        )
    return problems


@nox.session
def package(session: nox.Session) -> None:
    """Build the sdist and the wheel (from the sdist) into a temporary folder, run
    ``twine check --strict`` on both, and check what the wheel holds."""
    session.install("build", "twine>=6.1")
    text = (ROOT / "sphinx_nbcache" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if not found:
        session.error('no __version__ = "..." line in sphinx_nbcache/__init__.py')
    version = found.group(1)
    with tempfile.TemporaryDirectory(prefix="nbcache-dist-") as tmp:
        out = Path(tmp)
        session.run("python", "-m", "build", "--outdir", str(out), str(ROOT))
        wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
        if len(wheels) != 1 or len(sdists) != 1:
            session.error(
                f"expected one wheel and one sdist in {out}, found {sorted(out.iterdir())}"
            )
        session.run("twine", "check", "--strict", str(wheels[0]), str(sdists[0]))
        problems = _wheel_problems(wheels[0], version)
        if problems:
            session.error(f"{wheels[0].name}: " + "; ".join(problems))
        session.log(
            f"{wheels[0].name}: py.typed, nothing outside sphinx_nbcache/, version {version}"
        )


def _option(args: list[str], name: str, default: str) -> str:
    """Value of ``--name X`` or ``--name=X`` in args (the last one wins, as in argparse)."""
    value = default
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


@nox.session
def bench(session: nox.Session) -> None:
    """Peer vs us on the shared harness; then benchmarks/report.py.

    Extra arguments go to run_bench.py and override the defaults, e.g.
    ``nox -s bench -- --label cpu20 --corpus-args "--n 20 --cells 4 --cpu 1.0"``.
    ``--label book`` and ``--label blas`` build the corpora of benchmarks/corpora.py (a
    book-shaped one; multi-threaded NumPy products) with the engines and ratios of CORPORA.
    The staleness and instruction figures, which no corpus changes, come with the plain run
    only (no ``--label``).
    """
    run_bench = BENCH_DIR / "run_bench.py"
    if not run_bench.exists():
        session.error(f"benchmark harness not found: {run_bench}")
    session.install(".[bench]")
    _install_kernel(session)
    label = _option(session.posargs, "--label", "sleep20")
    env = _jupyter_env(session)
    BENCH_WORK.mkdir(exist_ok=True)
    if label in CORPORA:  # a corpus of benchmarks/corpora.py: written here, then --corpus
        more, scenarios, ratios = CORPORA[label]
        corpus = BENCH_WORK / f"corpus-{label}"
        shutil.rmtree(corpus, ignore_errors=True)
        session.run("python", str(ROOT / "benchmarks" / "corpora.py"), label, str(corpus))
        engines = ",".join(["mystnb-cache", "mystnb-off", str(BENCH_ENGINE)])
        engines += "".join(f",{ENGINES / name}" for name in more)
        source = ["--corpus", str(corpus)]
    else:
        # ours twice: as configured by default (more notebooks at once while kernels wait)
        # and with a fixed nbcache_jobs = 2 (never more than the peer's -j 2)
        engines = f"mystnb-cache,mystnb-off,{BENCH_ENGINE},{BENCH_ENGINE_FIXED}"
        # the short builds (S2, S5: ~1-2 s, +-10 % run to run here) three times a repetition
        scenarios, ratios = "S1,S2,S3,S4,S5,S2,S5,S2,S5,S6,S7", []
        source = ["--corpus-args", "--n 20 --cells 4 --sleep 1.0"]
    args = [
        "--engines", engines, *source, "--scenarios", scenarios, "--repeat", "2",
        "--workdir", str(BENCH_WORK), "--label", label, *session.posargs,
    ]  # fmt: skip
    # one results file per label: re-running a label replaces its rows, other labels stay
    out = Path(_option(args, "--out", str(BENCH_WORK / f"results-{label}.jsonl")))
    out.unlink(missing_ok=True)
    session.run("python", str(run_bench), *args, "--out", str(out), env=env)
    session.run(
        "python", str(ROOT / "benchmarks" / "report.py"), str(BENCH_WORK),
        "--png", str(ROOT / "docs" / "_static" / "bench.png"),
        *(f"--ratio={pair}" for pair in ratios), *(["--cpu"] if label in CORPORA else []),
    )  # fmt: skip
    if "--label" in " ".join(session.posargs):
        return  # a run of one label: the figures below do not depend on the corpus
    # the staleness check alone, at 100 / 500 / 2,000 pages (no kernels; about a minute)
    session.run(
        "python", str(ROOT / "benchmarks" / "staleness.py"),
        "--json", str(BENCH_WORK / "staleness.json"),
        "--png", str(ROOT / "docs" / "_static" / "staleness.png"),
    )  # fmt: skip
    # our cost over the floor in instructions (valgrind), immune to the machine's noise
    session.run(
        "python", str(ROOT / "benchmarks" / "overhead.py"),
        "--json", str(BENCH_WORK / "overhead.json"),
    )  # fmt: skip


@nox.session
def bench_scale(session: nox.Session) -> None:
    """Scale-out figures: local kernels vs a Dask cluster vs a Jupyter server (cold sleep20),
    and a local cache vs a shared PostgreSQL + S3 store (cold, CI-restore, no-op); starts the
    services the tests use (PostgreSQL must be installed: see .ci/run)."""
    if not (BENCH_DIR / "run_bench.py").exists():
        session.error(f"benchmark harness not found: {BENCH_DIR}")
    session.install(".[bench,test]")
    _install_kernel(session)
    BENCH_WORK.mkdir(exist_ok=True)
    env = _jupyter_env(session)
    session.run("python", str(ROOT / "benchmarks" / "scale_out.py"), str(BENCH_WORK), env=env)
    session.run("python", str(ROOT / "benchmarks" / "report.py"), str(BENCH_WORK))


@nox.session(venv_backend="none")
def clean(session: nox.Session) -> None:
    """Remove build outputs and caches (not the nox venvs)."""
    for path in (ROOT / "docs" / "_build", ROOT / "docs" / ".nbcache", ROOT / "dist"):
        session.log(f"rm -r {path}")
        shutil.rmtree(path, ignore_errors=True)
