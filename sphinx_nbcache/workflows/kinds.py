"""How the workflows' dependency kinds are checked: ``pages`` (a folder or glob that
``read_notebooks`` listed) and ``variants`` (the ``nbcache-notebook`` directives showing a
notebook whose variants were read). Registered into the one table of kinds
(:mod:`sphinx_nbcache.dependencies`) when this module is imported: every front door imports it
(it is light: the work is imported when an entry of these kinds is checked).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..dependencies import register

__all__ = ["listing_digest", "variants_now"]


def listing_digest(target: str, folder: Path, context: Any) -> str:
    """What the notebook pages in a folder (or matching a glob) are now, by name: how a
    reader of ``read_notebooks(target)`` is found stale."""
    from ..notebooks.project import Project
    from .reads import expand, names_digest, pages_in

    found = expand(folder / target)
    if not found:
        return names_digest({})
    return names_digest(pages_in(Project.load(context.root), found))


def variants_now(target: str, folder: Path, context: Any) -> str:
    """The directives showing the notebook ``target`` now (their pages and parameters)."""
    from .variants import variants_digest

    if context.root is None:
        return ""
    return variants_digest(context.root, folder / target)


register("pages", listing_digest)
register("variants", variants_now)
