"""A stored result -> the notebook shown: the one way every front door merges.

The page (or variant, or call) as it runs, with the outputs of its result put in, loaded from
the result's blob unless they are at hand (just executed). A result with no outputs (its kernel
never started) leaves the notebook as written, its language named so it can be highlighted.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from ..notebooks.merge import assume_language, merge_outputs
from ..store import read_outputs

if TYPE_CHECKING:
    import nbformat

    from ..records import Outputs, Record
    from ..store import Blobs

__all__ = ["merged"]


def merged(
    record: Record,
    notebook: nbformat.NotebookNode,
    blobs: Blobs | None,
    outputs: Outputs | None = None,
    *,
    copy_nb: bool = False,
) -> nbformat.NotebookNode:
    """``notebook`` with ``record``'s outputs (``outputs``, else its blob's), changed in place
    unless ``copy_nb``. :class:`~sphinx_nbcache.errors.CorruptCacheError` if the blob is
    damaged or does not fit the notebook (nothing is changed then)."""
    if outputs is None and record.blob is not None:
        assert blobs is not None, "outputs not given: the blobs to read them from are"
        outputs = read_outputs(blobs, record.blob)
    if outputs is None:  # it never ran
        target = copy.deepcopy(notebook) if copy_nb else notebook
        assume_language(target, record.kernel)
        return target
    return merge_outputs(notebook, outputs, copy_nb=copy_nb, where=f"result {record.id[:10]}")
