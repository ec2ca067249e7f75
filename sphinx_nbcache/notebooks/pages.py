"""Pages: what a notebook page is called and where it is, and finding them in a folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ..config import Options

__all__ = ["SKIPPED_FOLDERS", "Page", "pages_under"]

#: Folders never searched for pages (build output, caches, version control).
SKIPPED_FOLDERS = frozenset(
    {"_build", ".nbcache", ".jupyter_cache", ".ipynb_checkpoints", ".git", ".nox"}
)


class Page(NamedTuple):
    """A notebook page: what to call it and where it is."""

    name: str  # the Sphinx docname (the CLI and API use docnames too)
    path: Path


def pages_under(root: Path, options: Options) -> list[Page]:
    """Every notebook page below ``root`` (for the CLI), named by relative POSIX path."""
    from .readers import is_notebook

    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIPPED_FOLDERS and not d.startswith(".")
        )
        for filename in sorted(filenames):
            path = Path(dirpath, filename)
            if is_notebook(path, options):
                found.append(Page(path.relative_to(root).as_posix(), path))
    return found
