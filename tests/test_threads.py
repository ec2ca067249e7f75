"""Thread caps: each local kernel's BLAS / OpenMP / numexpr / Numba pools share the CPUs with
the other kernels executing at once, forked or not, unless the user decided; and the
autoscaler adds places for kernels that wait, never for kernels that compute."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from sphinx_nbcache.config import Options
from sphinx_nbcache.errors import ConfigError
from sphinx_nbcache.execute import Job, LocalExecutor, ProjectFiles
from sphinx_nbcache.execute._autoscale import (
    MEMORY_TO_GROW,
    THREAD_VARIABLES,
    Autoscale,
    thread_caps,
    usable_cpus,
)

pytestmark = pytest.mark.kernel

#: what the kernel's environment holds of the thread variables, written to a file by the
#: kernel itself (the page's folder), with the kernel's parent: the build or a warm process
LOOK = """\
import json, os
names = NAMES
with open("threads-PAGE.json", "w") as out:
    json.dump({"env": {n: os.environ.get(n) for n in names}, "parent": os.getppid()}, out)
""".replace("NAMES", repr(list(THREAD_VARIABLES)))


def job(number: int, folder: Path) -> Job:
    page = f"page{number}"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LOOK.replace("PAGE", page))])
    return Job(key=f"{number:064x}", notebook=nb, page=page, files=ProjectFiles(str(folder)))


def run(
    folder: Path, count: int = 3, **settings: object
) -> tuple[list[dict[str, object]], list[int]]:
    """Run ``count`` notebooks; what each kernel saw, and the pids of the warm processes."""
    executor = LocalExecutor(**settings)  # type: ignore[arg-type]
    try:
        outcomes = [
            f.result(timeout=120) for f in [executor.submit(job(n, folder)) for n in range(count)]
        ]
        servers = executor.forks.pids() if executor.forks is not None else []
    finally:
        executor.shutdown()
    for outcome in outcomes:
        assert outcome.record.ok, outcome.record.failure
    seen = [json.loads((folder / f"threads-page{n}.json").read_text()) for n in range(count)]
    return seen, servers


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No thread variable in the build's environment; kernels may fork."""
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("NBCACHE_FORK_KERNELS", raising=False)
    return monkeypatch


def test_the_caps_share_the_cpus_unless_told_otherwise() -> None:
    every = set(THREAD_VARIABLES)
    assert {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"} <= every
    assert {"NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS"} <= every
    assert thread_caps(None, 2, {}, cpus=8) == dict.fromkeys(THREAD_VARIABLES, "4")
    assert thread_caps(None, 3, {}, cpus=8) == dict.fromkeys(THREAD_VARIABLES, "2")
    assert thread_caps(None, 8, {}, cpus=2) == dict.fromkeys(THREAD_VARIABLES, "1")  # at least 1
    assert thread_caps(None, 1, {}, cpus=2) == dict.fromkeys(THREAD_VARIABLES, "2")  # alone
    assert thread_caps(3, 2, {}, cpus=2) == dict.fromkeys(THREAD_VARIABLES, "3")  # N: that many
    assert thread_caps(0, 2, {}, cpus=8) == {}  # 0: left alone
    for name in THREAD_VARIABLES:  # the user set one: the user decides, none is added
        assert thread_caps(None, 2, {name: "6"}, cpus=8) == {}
        assert thread_caps(2, 2, {name: "6"}, cpus=8) == {}
    assert 1 <= usable_cpus() <= (os.cpu_count() or 1)


def test_the_option_is_read_and_checked(tmp_path: Path) -> None:
    assert Options.from_mapping({}, tmp_path).kernel_threads is None
    assert Options.from_mapping({"nbcache_kernel_threads": 0}, tmp_path).kernel_threads == 0
    assert Options.from_mapping({"nbcache_kernel_threads": "2"}, tmp_path).kernel_threads == 2
    with pytest.raises(ConfigError, match="nbcache_kernel_threads"):
        Options.from_mapping({"nbcache_kernel_threads": -1}, tmp_path)


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "started"])
def test_kernels_see_the_caps_forked_or_not(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, fork: bool
) -> None:
    seen, servers = run(tmp_path, count=4, jobs=2, max_jobs=2, prestart=1, fork_kernels=fork)
    shared = dict.fromkeys(THREAD_VARIABLES, str(max(1, usable_cpus() // 2)))
    alone = dict.fromkeys(THREAD_VARIABLES, str(usable_cpus()))
    # the first kernel may start before the others are submitted (every CPU, as alone); the
    # others start with at least two notebooks left (the fourth when the first is done)
    assert seen[0]["env"] in (shared, alone)
    for look in seen[1:]:
        assert look["env"] == shared
    parents = {look["parent"] for look in seen}
    if fork:  # the caps do not turn forking off: kernels came from the warm process
        assert servers, "no warm process was started"
        assert parents & set(servers), "no kernel was forked"
    else:
        assert parents == {os.getpid()}  # started the usual way, by this process


def test_a_notebook_left_alone_gets_every_cpu(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    """One page to run (a page edited): its kernel shares the CPUs with no other."""
    (seen,), _ = run(tmp_path, count=1, jobs=2, max_jobs=8)
    assert seen["env"] == dict.fromkeys(THREAD_VARIABLES, str(usable_cpus()))


def test_a_value_the_user_set_is_kept_and_forking_stays_on(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("OMP_NUM_THREADS", "3")
    seen, servers = run(tmp_path, jobs=1, max_jobs=1, prestart=1, kernel_threads=1)
    for look in seen:
        env = look["env"]
        assert isinstance(env, dict)
        assert env.pop("OMP_NUM_THREADS") == "3"
        assert set(env.values()) == {None}  # nothing added beside the user's choice
    assert servers
    assert {look["parent"] for look in seen} & set(servers)


def test_zero_leaves_the_libraries_alone_and_n_sets_n(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    (tmp_path / "zero").mkdir()
    (tmp_path / "five").mkdir()
    alone, _ = run(tmp_path / "zero", count=2, jobs=2, kernel_threads=0)
    five, _ = run(tmp_path / "five", count=2, jobs=2, kernel_threads=5)
    assert all(set(look["env"].values()) == {None} for look in alone)  # type: ignore[union-attr]
    assert all(look["env"] == dict.fromkeys(THREAD_VARIABLES, "5") for look in five)


# -- the autoscaler on pages that compute ---------------------------------------------------


def test_places_grow_for_kernels_that_wait_not_for_kernels_that_compute() -> None:
    scale = Autoscale(jobs=2, max_jobs=4, cpus=2)
    plenty = MEMORY_TO_GROW
    # a CPU sits idle and two kernels sleep: one more place
    assert scale.decide(2, 10, waiting=3, available_memory=plenty, kernels_idle=1.9) == 1
    # a CPU sits idle for a moment (one page done, the next not begun) but the kernels that
    # execute compute: no place (issue 27: 4 Numba/JAX pages at once on 2 CPUs)
    assert scale.decide(2, 50, waiting=3, available_memory=plenty, kernels_idle=0.1) == 0
    assert scale.decide(3, 40, waiting=3, available_memory=plenty, kernels_idle=0.7) == 0
    # one kernel sleeps, one computes, a CPU is free: one more
    assert scale.decide(2, 50, waiting=3, available_memory=plenty, kernels_idle=0.95) == 1
    # kernels idle but the machine busy (other work, the build reading): no place
    assert scale.decide(2, 90, waiting=3, available_memory=plenty, kernels_idle=2.0) == 0
    # busy again: places added earlier are taken back, whatever the kernels do
    assert scale.decide(3, 95, waiting=3, available_memory=plenty, kernels_idle=2.0) == -1


BURN = """\
import time
end = time.process_time() + 1.5
while time.process_time() < end:
    pass
"""


def test_the_executor_adds_no_place_for_kernels_that_compute() -> None:
    """Real kernels, one place to begin with, up to three: notebooks that compute for 1.5 s
    of CPU time each get no second place, even while the machine's other CPU sits idle (the
    rule before: one more whenever three quarters of a CPU sat idle). Notebooks that sleep
    do get more: test_executor.py."""
    executor = LocalExecutor(jobs=1, prestart=1, max_jobs=3)
    try:
        futures = []
        for n in range(4):
            nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(BURN)])
            futures.append(executor.submit(Job(key=f"{n:064x}", notebook=nb, page=f"p{n}")))
        outcomes = [f.result(timeout=120) for f in futures]
    finally:
        executor.shutdown()
    assert all(o.record.ok for o in outcomes)
    assert executor.peak_running == 1
    assert executor.places == 1


# -- through a Sphinx build -----------------------------------------------------------------

PAGE = """\
---
jupytext:
  text_representation:
    format_name: myst
kernelspec:
  name: python3
  display_name: Python 3
---

# Threads

```{code-cell} ipython3
import json, os
names = NAMES
with open("threads.json", "w") as out:
    json.dump({n: os.environ.get(n) for n in names}, out)
```
""".replace("NAMES", repr(list(THREAD_VARIABLES)))


@pytest.mark.parametrize("setting", [3, 0], ids=["three", "off"])
def test_the_option_reaches_the_kernels_of_a_build(
    tmp_path: Path,
    make_app,
    clean_env: pytest.MonkeyPatch,
    setting: int,  # type: ignore[no-untyped-def]
) -> None:
    """nbcache_kernel_threads in conf.py, a real Sphinx build, a real kernel."""
    (tmp_path / "conf.py").write_text(
        'extensions = ["myst_nb", "sphinx_nbcache"]\nnb_execution_mode = "cache"\n'
        f'nbcache_path = ".nbcache"\nnbcache_kernel_threads = {setting}\n'
        'exclude_patterns = ["_build"]\n'
    )
    (tmp_path / "index.md").write_text("# Root\n\n```{toctree}\npage\n```\n")
    (tmp_path / "page.md").write_text(PAGE)
    make_app("html", srcdir=tmp_path).build()
    seen = json.loads((tmp_path / "threads.json").read_text())
    assert seen == dict.fromkeys(THREAD_VARIABLES, str(setting) if setting else None)
