"""What every command shares: the docs folder it names, the cache opened on it."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..api import Cache, open_cache
from ..errors import NotFoundError
from ..notebooks.book import BOOK_CONFIG, BOOK_TOC, is_book
from ..notebooks.project import CONF_NAME, find_docs_dir
from . import show

__all__ = ["docs_folder", "docs_for", "open_docs", "print_notices"]


def docs_folder(value: str | Path, how: str) -> Path:
    """A folder the user named as the docs folder: it must exist and hold a conf.py or a
    jupyter-book _config.yml (else every notebook below it would be taken for a page)."""
    path = Path(value)
    if not path.is_dir():
        raise NotFoundError(
            f"no folder {str(value)!r}", f"{how} names the docs folder (the one holding conf.py)"
        )
    if not (path / CONF_NAME).is_file() and not is_book(path):
        raise NotFoundError(
            f"{value} holds no {CONF_NAME} and no jupyter-book {BOOK_CONFIG} with {BOOK_TOC}",
            f"{how} names the docs folder: give the folder holding conf.py",
        )
    return path


def docs_for(args: argparse.Namespace, hint: str | Path | None = None) -> Path | None:
    """The docs folder a command works on: ``--docs``, else the project holding ``hint`` (a
    folder or file the command was given), else the nearest one at or above the current
    folder, else ``./docs``. None (no project) only with ``--cache``: a cache folder alone.
    Otherwise :class:`NotFoundError` says what was looked for (no command creates a cache
    folder where there is no project). A command's positional ``DOCS_DIR`` counts as
    ``--docs``."""
    docs = args.docs if args.docs is not None else getattr(args, "docs_dir", None)
    if docs is not None:
        return docs_folder(docs, "--docs")
    if hint is not None:
        path = Path(hint)
        if path.is_dir() and ((path / CONF_NAME).is_file() or is_book(path)):
            return path
        if path.exists():
            found = find_docs_dir(path)
            if found is not None:
                return found
    found = find_docs_dir(Path.cwd())
    if found is None and (Path("docs") / CONF_NAME).is_file():
        found = Path("docs")
    if found is None and args.cache is None:
        start = Path(hint).resolve() if hint is not None and Path(hint).exists() else Path.cwd()
        raise NotFoundError(
            f"no docs project found: looked for {CONF_NAME} or a jupyter-book {BOOK_CONFIG} "
            f"with {BOOK_TOC} in {start} and the folders above it (up to a .git folder), and "
            f"for docs/{CONF_NAME} here",
            "give the docs folder (--docs DIR), or --cache PATH to work on a cache folder alone",
        )
    return found


@contextmanager
def open_docs(
    args: argparse.Namespace, hint: str | Path | None = None, *, read_only: bool = False
) -> Iterator[Cache]:
    """The cache the command works on; its notices go to stderr when the command ends.

    ``read_only`` commands create nothing (a cache that is not there reads as empty)."""
    cache = open_cache(docs_for(args, hint), args.cache, read_only=read_only)
    print_notices(list(cache.project.notices))  # a misspelt option, say
    try:
        yield cache
    finally:
        print_notices(cache.notices())
        cache.close()


def print_notices(notices: list[str]) -> None:
    err = show.console(stderr=True)
    for notice in notices:  # one line each, however long (a script greps it)
        err.print(show.line(("notice:", "yellow"), f" {notice}"), soft_wrap=True)


# -- commands -----------------------------------------------------------------------------------
