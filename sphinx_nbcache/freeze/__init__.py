"""Frozen results: what each page shows, written into a folder meant for git (``_freeze/``).

``nbcache freeze`` writes one text file per page (sorted keys, one output per block, images as
files named by their content) with the key and the dependencies that make it valid, noise
normalised (:mod:`.normalise`). A build reads a frozen result when the cache has none for the
page's key and its recorded dependencies still hold (:mod:`.reading`, a source of the one
lookup), so collaborators and CI build the site with no kernel, data or cache; ``nbcache freeze
--check`` says which frozen results are out of date (:mod:`.pages`).

Importing this package registers the frozen folder as a source of results; the rest is loaded
when a project has a frozen folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..plan.sources import register_source

if TYPE_CHECKING:
    from ..config import Options
    from ..plan.sources import Kept
    from ..store import Store

__all__ = ["frozen_results"]


def frozen_results(options: Options, store: Store) -> Kept | None:
    """The project's frozen results, for the lookup (None: it has no frozen folder)."""
    folder = options.freeze_folder
    if folder is None or not folder.is_dir():
        return None
    from .reading import frozen_source

    return frozen_source(options, store)


register_source("frozen", frozen_results)
