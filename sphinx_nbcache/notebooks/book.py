"""A jupyter-book 1 folder (``_config.yml`` and ``_toc.yml``, no ``conf.py``) as its build sees it.

``jupyter-book build`` turns ``_config.yml`` into Sphinx options before Sphinx starts. The CLI
and the API ask jupyter-book for the same translation (``jupyter_book.config.get_final_config``),
so a page has the same options, cache folder and key in ``nbcache status`` as in the build.
With ``only_build_toc_files: true`` the pages that ``_toc.yml`` does not list are left out, as
sphinx-external-toc leaves them out of the build. jupyter-book is imported only here, and only
for a book.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfFileError

__all__ = ["BOOK_CONFIG", "BOOK_TOC", "is_book", "load_book_config", "toc_docnames"]

BOOK_CONFIG = "_config.yml"
BOOK_TOC = "_toc.yml"


def is_book(folder: Path) -> bool:
    """True if ``folder`` holds a jupyter-book configuration and table of contents."""
    return (folder / BOOK_CONFIG).is_file() and (folder / BOOK_TOC).is_file()


def load_book_config(folder: Path) -> dict[str, Any]:
    """The Sphinx options ``jupyter-book build`` derives from ``folder/_config.yml``."""
    path = folder / BOOK_CONFIG
    try:
        from jupyter_book.config import get_final_config
    except ImportError:
        raise ConfFileError(
            str(path),
            "this is a jupyter-book configuration: install jupyter-book 1 to read it "
            "(pip install 'jupyter-book<2'), or pass --cache to skip reading it",
        ) from None
    try:
        values, _ = get_final_config(
            user_yaml=path,
            cli_config={"latex_individualpages": False},  # what `jupyter-book build` passes
            sourcedir=folder,
        )
    except Exception as exc:  # yaml errors, schema errors, anything jupyter-book raises
        raise ConfFileError(
            str(path),
            f"jupyter-book could not read it ({type(exc).__name__}: {exc}); fix it or pass "
            "--cache to skip reading it",
        ) from None
    return dict(values)


def toc_docnames(folder: Path, values: dict[str, Any]) -> frozenset[str] | None:
    """The docnames ``_toc.yml`` lists, when only those are built (else None: every page)."""
    if not values.get("external_toc_exclude_missing"):
        return None
    toc = folder / str(values.get("external_toc_path") or BOOK_TOC)
    try:
        from sphinx_external_toc.parsing import parse_toc_yaml

        site_map = parse_toc_yaml(toc)
    except Exception as exc:  # a missing or malformed table of contents
        raise ConfFileError(
            str(toc),
            f"cannot read the table of contents ({type(exc).__name__}: {exc}); fix it or set "
            "only_build_toc_files: false",
        ) from None
    return frozenset(str(name) for name in site_map)
