"""Two builds at once on one cache folder, one of them ``-j 2``: both succeed with outputs, no
lock or creation races; a third build on that cache executes nothing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from _reliability import Build, kill_group

PAGES = ("p1", "p2", "p3", "p4")


def test_two_builds_share_one_cache(tmp_path: Path) -> None:
    cache = tmp_path / "shared-cache"  # does not exist yet: both builds race to create it
    first = Build.copy("reliability", tmp_path / "checkout-1")
    second = Build.copy("reliability", tmp_path / "checkout-2")
    option = ("-D", f"nbcache_path={cache}", "-D", "nbcache_jobs=2")
    procs = [first.start(*option), second.start(*option, "-j", "2")]
    try:
        codes = [proc.wait(timeout=180) for proc in procs]
    finally:
        for proc in procs:
            kill_group(proc)
    for build, code in zip((first, second), codes, strict=True):
        output = build.output()
        assert code == 0, output
        for error in ("database is locked", "already exists", "Traceback", "WARNING"):
            assert error not in output, output
        for page in PAGES:
            assert f"output of {page}" in build.html(page)
    # every page ran at least once, and at most once per build
    together = first.executed() + second.executed()
    assert set(together) == set(PAGES)
    assert max(together.values()) <= 2

    third = Build.copy("reliability", tmp_path / "checkout-3")
    code, output = third.run(*option)
    assert code == 0, output
    assert third.executed() == Counter()
    for page in PAGES:
        assert f"output of {page}" in third.html(page)
