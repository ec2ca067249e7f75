"""jupyter-book 1 (`execute_notebooks: cache` + `extra_extensions`) runs on sphinx-nbcache, and
the CLI and API read a book's `_config.yml` and `_toc.yml` as its build does."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from sphinx_nbcache.api import open_cache
from sphinx_nbcache.errors import ConfFileError
from sphinx_nbcache.notebooks.project import find_docs_dir

HAS_JUPYTER_BOOK = importlib.util.find_spec("jupyter_book") is not None

BOOK = Path(__file__).parent / "roots" / "jb1-book"


def build(book: Path, log: Path) -> tuple[Counter[str], str]:
    log.write_text("")
    env = {**os.environ, "NBCACHE_TEST_LOG": str(log)}
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(book)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return Counter(log.read_text().split()), done.stdout + done.stderr


@pytest.mark.jb1
@pytest.mark.skipif(not HAS_JUPYTER_BOOK, reason="needs jupyter-book 1")
def test_jupyter_book_build_executes_once(tmp_path: Path) -> None:
    book = tmp_path / "book"
    shutil.copytree(BOOK, book)
    # a notebook the table of contents does not list: not built (only_build_toc_files)
    (book / "unlisted.md").write_text((book / "first.md").read_text().replace("first", "unlisted"))
    log = tmp_path / "kernel.log"

    executed, output = build(book, log)
    assert executed == Counter({"first": 1, "second": 1}), output
    assert "nbcache: ran" in output
    html = book / "_build" / "html"
    assert "first page output 42" in (html / "first.html").read_text()
    assert "second page output 42" in (html / "second.html").read_text()
    assert (book / ".nbcache" / "nbcache.db").is_file()
    assert not (book / "_build" / ".jupyter_cache").exists()  # jupyter-cache is not used

    # the API (and so the CLI) reads _config.yml and _toc.yml as the build did: same cache,
    # same pages, same keys
    assert find_docs_dir(book / "first.md") == book
    with open_cache(docs_dir=book) as cache:
        assert cache.path == book / ".nbcache"
        verdicts = {state.page.name: state.verdict for state in cache.status()}
    assert verdicts == {"first": "cached", "second": "cached"}

    assert build(book, log)[0].total() == 0  # no-op
    shutil.rmtree(book / "_build")
    executed, _ = build(book, log)
    assert executed.total() == 0  # CI restore: cache kept, build folder fresh
    assert "second page output 42" in (html / "second.html").read_text()


@pytest.mark.skipif(HAS_JUPYTER_BOOK, reason="checks the message shown without jupyter-book")
def test_a_book_without_jupyter_book_installed_says_what_to_do(tmp_path: Path) -> None:
    book = tmp_path / "book"
    shutil.copytree(BOOK, book)
    assert find_docs_dir(book / "first.md") == book
    with pytest.raises(ConfFileError) as caught:
        open_cache(docs_dir=book)
    message = str(caught.value)
    assert str(book / "_config.yml") in message
    assert "install jupyter-book" in message
