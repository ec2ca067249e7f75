"""Hostile notebooks: each is one located warning; the build succeeds; other pages keep outputs.

Two real ``sphinx-build`` runs (one per module fixture) hold every case, so each case costs no
extra build: the unreadable files (no kernel needed) and the notebooks that misbehave in their
kernel (each in its own kernel, beside a healthy page).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import psutil
import pytest
import sphinx
from _reliability import Build, keep_pages

#: Sphinx 8+ appends ``[type.subtype]`` to warnings; Sphinx 7 does not print it
SHOWS_SUBTYPE = sphinx.version_info >= (8,)

MYST = "---\nfile_format: mystnb\nkernelspec:\n  name: {kernel}\n{extra}---\n\n# {title}\n\n"


def _myst(title: str, *cells: str, kernel: str = "python3", extra: str = "") -> str:
    body = "".join(f"```{{code-cell}}\n{cell}\n```\n\n" for cell in cells)
    return MYST.format(kernel=kernel, extra=extra, title=title) + body


_V3 = {
    "nbformat": 3,
    "nbformat_minor": 0,
    "metadata": {"name": "old"},
    "worksheets": [
        {
            "cells": [
                {"cell_type": "heading", "level": 1, "source": "Old", "metadata": {}},
                {
                    "cell_type": "code",
                    "input": "print('v3 says', 6 * 7)",
                    "language": "python",
                    "outputs": [],
                    "metadata": {},
                },
            ]
        }
    ],
}

#: file name -> (content, what its warning says); the page is always still rendered
UNREADABLE: dict[str, tuple[bytes, str]] = {
    "bad_json.ipynb": (b'{"cells": [', "invalid JSON"),
    "future.ipynb": (
        json.dumps({"nbformat": 9, "nbformat_minor": 0, "metadata": {}, "cells": []}).encode(),
        "nbformat 9 is newer",
    ),
    "bad_header.md": (
        _myst("Bad header", "print(1)", extra="jupytext: [unclosed\n").encode(),
        "",  # not a notebook for anyone (invalid YAML): a plain page, whatever it says
    ),
    "empty.ipynb": (b"", "empty"),
}
#: Sphinx aborts on text it cannot decode: we stop first with one error naming file and remedy
UNDECODABLE: dict[str, bytes] = {
    "garbage.ipynb": random.Random(4).randbytes(3000),
    "latin1.md": _myst("Caf\xe9", "print('caf\xe9')").encode("latin-1"),
}


def _toctree(src: Path, names: list[str]) -> None:
    index = src / "index.md"
    index.write_text(index.read_text().replace("```\n", "\n".join(names) + "\n```\n", 1))


@pytest.fixture(scope="module")
def unreadable(tmp_path_factory: pytest.TempPathFactory) -> tuple[Build, int, str]:
    build = Build.copy("reliability", tmp_path_factory.mktemp("hostile") / "unreadable")
    keep_pages(build.src, "p1")
    for name, (data, _) in UNREADABLE.items():
        (build.src / name).write_bytes(data)
    (build.src / "v3.ipynb").write_text(json.dumps(_V3))
    _toctree(build.src, [*(n.rsplit(".", 1)[0] for n in UNREADABLE), "v3"])
    code, output = build.run("--keep-going")
    return build, code, output


def test_unreadable_pages_do_not_break_the_build(unreadable: tuple[Build, int, str]) -> None:
    build, code, output = unreadable
    assert code == 0, output
    assert "Traceback (most recent call last)" not in output
    assert "output of p1" in build.html("p1")
    assert "v3 says 42" in build.html("v3")  # nbformat 3 is converted and executed


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_page_is_one_located_warning(
    unreadable: tuple[Build, int, str], name: str
) -> None:
    build, _, output = unreadable
    _, says = UNREADABLE[name]
    lines = [line for line in output.splitlines() if f"{name}:" in line and "WARNING" in line]
    if says:
        assert len(lines) == 1, output
        assert says in lines[0]
        if SHOWS_SUBTYPE:
            assert "[nbcache.read]" in lines[0]
    assert (build.src / "_build" / "html" / f"{name.rsplit('.', 1)[0]}.html").is_file()


@pytest.mark.parametrize("name", sorted(UNDECODABLE))
def test_undecodable_page_is_one_clear_error(tmp_path: Path, name: str) -> None:
    build = Build.copy("reliability", tmp_path / "project")
    keep_pages(build.src)
    (build.src / name).write_bytes(UNDECODABLE[name])
    _toctree(build.src, [name.rsplit(".", 1)[0]])
    code, output = build.run()
    assert code != 0
    assert "Encoding error" not in output  # Sphinx's own crash, which names no file
    assert f"{name} is not utf-8-sig text" in output
    assert "save it as UTF-8, or add it to exclude_patterns" in output


LIMIT = 200_000  # characters of text per cell (nbcache_output_limit)
RSS_HOOK = """
def setup(app):
    import os, resource
    def record(app, exception):
        with open(os.environ["NBCACHE_TEST_RSS"], "w") as out:
            out.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
    app.connect("build-finished", record)
"""

MISBEHAVING = {
    "huge": _myst(
        "Huge",
        'print("x" * 50_000_000)',
        "for i in range(100_000):\n    print(i)",
        'print("after the flood")',
    ),
    "loop": _myst("Loop", "while True:\n    pass", extra="execution:\n  timeout: 2\n"),
    "dies": _myst("Dies", "import os\nos._exit(1)"),
    "nokernel": _myst("No kernel", "print(1)", kernel="no-such-kernel"),
    "orphan": _myst(
        "Orphan",
        "import os, subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "with open(os.environ['NBCACHE_TEST_ORPHAN'], 'w') as out:\n"
        "    out.write(str(child.pid))\n"
        "print('started a child')",
    ),
}
EXPECTED = {
    "huge": ("nbcache_output_limit", None),
    "loop": ("[nbcache.timeout]", "did not finish within 2 s"),
    "dies": ("[nbcache.kernel]", "kernel died"),
    "nokernel": ("[nbcache.kernel]", "no kernel named 'no-such-kernel'"),
    "orphan": (None, None),
}


@pytest.fixture(scope="module")
def misbehaving(tmp_path_factory: pytest.TempPathFactory) -> tuple[Build, int, str]:
    folder = tmp_path_factory.mktemp("hostile")
    build = Build.copy("reliability", folder / "misbehaving")
    keep_pages(build.src, "p1")
    with open(build.src / "conf.py", "a") as conf:
        conf.write(RSS_HOOK)
    for name, text in MISBEHAVING.items():
        (build.src / f"{name}.md").write_text(text)
    _toctree(build.src, list(MISBEHAVING))
    build.env["NBCACHE_TEST_RSS"] = str(folder / "rss")
    build.env["NBCACHE_TEST_ORPHAN"] = str(folder / "orphan")
    code, output = build.run(
        "--keep-going", "-D", "nbcache_jobs=2", "-D", f"nbcache_output_limit={LIMIT}"
    )
    return build, code, output


def test_misbehaving_notebooks_do_not_break_the_build(
    misbehaving: tuple[Build, int, str],
) -> None:
    build, code, output = misbehaving
    assert code == 0, output
    assert "output of p1" in build.html("p1")
    assert "Traceback (most recent call last)" not in output


@pytest.mark.parametrize("name", ["loop", "dies", "nokernel"])
def test_failing_kernel_is_one_located_warning(
    misbehaving: tuple[Build, int, str], name: str
) -> None:
    _, _, output = misbehaving
    subtype, says = EXPECTED[name]
    lines = [line for line in output.splitlines() if f"{name}.md" in line and "WARNING" in line]
    ours = [line for line in lines if "notebook execution" in line]  # failed, could not start
    assert len(ours) == 1, output
    assert says in ours[0]
    if SHOWS_SUBTYPE:
        assert subtype in output


def test_huge_output_is_cut_with_a_note_and_memory_stays_bounded(
    misbehaving: tuple[Build, int, str],
) -> None:
    build, _, _ = misbehaving
    html = build.html("huge")
    assert "after the flood" in html
    assert html.count("more characters of output were cut") == 2
    assert f"nbcache_output_limit = {LIMIT:,}" in html
    assert len(html) < 3 * LIMIT
    peak_mb = int((build.src.parent / "rss").read_text()) / 1024
    assert peak_mb < 400, f"the build peaked at {peak_mb:.0f} MB"


def test_subprocess_outliving_its_kernel_is_ended(misbehaving: tuple[Build, int, str]) -> None:
    build, _, _ = misbehaving
    assert "started a child" in build.html("orphan")
    pid = int((build.src.parent / "orphan").read_text())
    try:
        child = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    try:
        assert child.status() == psutil.STATUS_ZOMBIE, "the kernel's child still runs"
    finally:
        if child.is_running():
            os.kill(pid, 9)
