"""Live progress: done of total, which notebooks run and for how long, "still running" lines."""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from sphinx_nbcache.cli import main
from sphinx_nbcache.engine.progress import Progress

HEADER = (
    "---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n"
    "  name: {kernel}\n  display_name: K\n---\n\n# {title}\n\n"
)
#: a notebook that runs until the test lets it finish (no sleeping for the test's sake)
WAITS = (
    "import os, time\n"
    "while not os.path.exists(os.environ['NBCACHE_TEST_GO']):\n"
    "    time.sleep(0.02)"
)


def page(title: str, code: str, kernel: str = "python3") -> str:
    return HEADER.format(kernel=kernel, title=title) + f"```{{code-cell}}\n{code}\n```\n"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_counts_and_names_what_runs() -> None:
    clock = Clock()
    progress = Progress(interval=30, clock=clock)
    for key, page_name in (("k1", "slow"), ("k2", "quick"), ("k3", "never")):
        progress.event("submitted", key, page_name, clock.now)
    assert progress.line() == "0/3 done"
    progress.event("started", "k1", "slow", 100.0)
    clock.now = 110.0
    progress.event("started", "k2", "quick", 110.0)
    clock.now = 112.0
    assert progress.line() == "0/3 done; running: slow (12 s), quick (2 s)"
    progress.event("done", "k2", "quick", 112.0)
    progress.event("done", "k3", "never", 112.0)  # could not start: it never ran
    assert progress.line() == "2/3 done; running: slow (12 s)"
    assert progress.still_running() is None  # not yet 30 s
    clock.now = 131.0
    assert progress.still_running() == "still running: slow (31 s) (2/3 done)"
    assert progress.still_running() is None  # told once per interval it ran
    clock.now = 159.0
    assert progress.still_running() is None
    clock.now = 161.0
    assert progress.still_running() == "still running: slow (61 s) (2/3 done)"
    progress.event("done", "k1", "slow", 161.0)
    assert progress.still_running() is None
    assert progress.line() == "3/3 done"
    # a job's line, shown after others finished, says what was so when it was done
    assert progress.line("k2") == "1/3 done; running: slow (12 s)"
    assert progress.line("k1") == "3/3 done"
    progress.close()


def test_the_ticker_calls_back_while_something_runs() -> None:
    ticked = threading.Event()
    progress = Progress(interval=0.01, on_tick=lambda p: ticked.set())
    assert not ticked.wait(0.05)  # nothing submitted: no thread, no tick
    progress.event("submitted", "k", "p", time.monotonic())
    assert ticked.wait(30)
    progress.close()
    ticked.clear()
    assert not ticked.wait(0.05)  # closed: no more


@pytest.mark.kernel
def test_the_engine_reports_each_job_as_it_starts_and_ends(project_factory, capsys) -> None:  # type: ignore[no-untyped-def]
    from sphinx_nbcache.api import open_cache

    project = project_factory("failing")
    (project.src / "julia.md").write_text(page("Julia", "1 + 1", kernel="julia-1.9"))
    events: dict[str, list[str]] = defaultdict(list)
    lock = threading.Lock()

    def on_event(kind: str, key: str, page_name: str, when: float) -> None:
        with lock:
            events[page_name].append(kind)

    with open_cache(project.src) as cache:
        report = cache.execute(jobs=2, on_event=on_event)
    assert report.counts() == {
        "executed": 1, "failed": 1, "could not start": 1, "from cache": 0, "skipped": 0
    }  # fmt: skip
    assert events == {
        "fails": ["submitted", "started", "done"],
        "tolerated": ["submitted", "started", "done"],
        "julia": ["submitted", "done"],  # its kernel never started: it never ran
    }


def _start_build(project: Any, **options: Any) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []

    def build() -> None:
        try:
            result.append(project.build(**options))
        except BaseException as exc:  # reported by the test
            result.append(exc)

    thread = threading.Thread(target=build)
    thread.start()
    return thread, result


def _wait_for(check: Any, what: str) -> None:
    deadline = time.monotonic() + 120
    while not check():
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.02)


@pytest.mark.kernel
def test_a_cold_build_shows_progress_and_a_notebook_still_running(
    project_factory: Any, make_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    go = tmp_path / "go"
    monkeypatch.setenv("NBCACHE_TEST_GO", str(go))
    project = project_factory("failing")
    (project.src / "slow.md").write_text(page("Slow", WAITS))
    project.edit("index.md", "tolerated\n", "tolerated\nslow\n")
    # the status stream of the app the build makes, read while it builds
    made: list[Any] = []
    real_make = project._make_app

    def make(*args: Any, **kwargs: Any) -> Any:
        made.append(real_make(*args, **kwargs))
        return made[-1]

    project._make_app = make
    thread, result = _start_build(project, nbcache_progress_interval=0.05, nbcache_jobs=2)
    alone = re.compile(r"nbcache: still running: slow \(\d+ s\) \(2/3 done\)")
    _wait_for(lambda: made and alone.search(made[0]._status.getvalue()),
              "a still-running line for the slow page")  # fmt: skip
    go.write_text("")  # let it finish
    thread.join(timeout=180)
    [build] = result
    assert not isinstance(build, BaseException), build
    lines = [x for x in build.status.splitlines() if "nbcache:" in x]
    assert "nbcache: executing 3 notebooks" in lines
    ran = [x for x in lines if x.startswith("nbcache: ran ")]
    assert len(ran) == 3  # one per executed page (the benchmarks count these)
    assert [re.search(r"\[(\d)/3 done", x).group(1) for x in ran] == ["1", "2", "3"]  # type: ignore[union-attr]
    assert any("running: slow (" in x for x in ran[:2])
    still = [x for x in lines if x.startswith("nbcache: still running: ")]
    shape = r"nbcache: still running: \w+ \(\d+ s\)(, \w+ \(\d+ s\))* \(\d/3 done\)"
    assert all(re.fullmatch(shape, x) for x in still), still
    assert any(alone.fullmatch(x) for x in still)
    assert not any("\x1b" in x or "\r" in x for x in lines)  # no terminal control codes
    account = next(x for x in lines if "notebook pages:" in x)
    assert account.startswith(
        "nbcache: 3 notebook pages: 2 executed, 1 failed, 0 could not start, 0 from cache; "
    )
    assert "s of kernel time" in account
    assert "at most 2 at once" in account


@pytest.mark.kernel
def test_execute_shows_progress_lines_when_not_on_a_terminal(
    project_factory: Any, capsys: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    go = tmp_path / "go"
    monkeypatch.setenv("NBCACHE_TEST_GO", str(go))
    project = project_factory("failing")
    (project.src / "slow.md").write_text(page("Slow", WAITS))
    conf = project.src / "conf.py"
    conf.write_text(conf.read_text() + "nbcache_progress_interval = 0.05\n")
    seen = threading.Event()

    def release() -> None:  # once the CLI said the page is still running, let it finish
        _wait_for(seen.is_set, "a still-running line")
        go.write_text("")

    releaser = threading.Thread(target=release)
    releaser.start()

    class Watch:
        """stderr that notices the still-running line."""

        def __init__(self, stream: Any) -> None:
            self.stream = stream

        def write(self, text: str) -> int:
            if re.search(r"still running: slow \(\d+ s\) \(2/3 done\)", text):
                seen.set()
            return int(self.stream.write(text))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.stream, name)

    monkeypatch.setattr(sys, "stderr", Watch(sys.stderr))
    code = main(["execute", str(project.src), "-j", "2"])
    releaser.join(timeout=60)
    out, err = capsys.readouterr()
    assert code == 1
    assert re.search(r"^ran slow in [\d.]+ s \(ok\) \[3/3 done\]$", err, re.M), err
    assert re.search(r"^still running: slow \(\d+ s\) \(2/3 done\)$", err, re.M), err
    assert "\x1b" not in err
    assert out.strip().splitlines()[-1].startswith("failing: fails; see `nbcache show fails")
