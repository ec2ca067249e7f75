"""jupyter-book 1 (`execute_notebooks: cache` + `extra_extensions`) runs on sphinx-nbcache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("jupyter_book")
pytestmark = pytest.mark.jb1

BOOK = Path(__file__).parent / "roots" / "jb1-book"


def build(book: Path, log: Path) -> tuple[Counter[str], str]:
    log.write_text("")
    env = {**os.environ, "NBCACHE_TEST_LOG": str(log)}
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(book)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return Counter(log.read_text().split()), done.stdout + done.stderr


def test_jupyter_book_build_executes_once(tmp_path: Path) -> None:
    book = tmp_path / "book"
    shutil.copytree(BOOK, book)
    log = tmp_path / "kernel.log"

    executed, output = build(book, log)
    assert executed == Counter({"first": 1, "second": 1}), output
    assert "nbcache: ran" in output
    html = book / "_build" / "html"
    assert "first page output 42" in (html / "first.html").read_text()
    assert "second page output 42" in (html / "second.html").read_text()
    assert (book / ".nbcache" / "nbcache.db").is_file()
    assert not (book / "_build" / ".jupyter_cache").exists()  # jupyter-cache is not used

    assert build(book, log)[0].total() == 0  # no-op
    shutil.rmtree(book / "_build")
    executed, _ = build(book, log)
    assert executed.total() == 0  # CI restore: cache kept, build folder fresh
    assert "second page output 42" in (html / "second.html").read_text()
