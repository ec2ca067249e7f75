"""Source notebook + stored outputs -> the notebook the renderer gets.

The merged notebook is the page *as written* (every cell, its source, its metadata) with the
outputs and execution counts of its code cells taken from the stored result, matched by
position among the code cells. Source files are never written.
"""

from __future__ import annotations

import copy
from typing import Any

import nbformat

from .errors import CorruptCacheError
from .records import Outputs

__all__ = ["merge_outputs"]


def merge_outputs(
    notebook: nbformat.NotebookNode, outputs: Outputs, *, copy_nb: bool = False
) -> Any:
    """Put ``outputs`` into the code cells of ``notebook`` (in place unless ``copy_nb``).

    Raises :class:`CorruptCacheError` if the counts of code cells differ (the record cannot be
    the result of this notebook).
    """
    merged = copy.deepcopy(notebook) if copy_nb else notebook
    code_cells = [cell for cell in merged.cells if cell.cell_type == "code"]
    if len(code_cells) != len(outputs.cells):
        raise CorruptCacheError(
            "<record>",
            f"stored result has {len(outputs.cells)} code cells, the notebook {len(code_cells)}",
        )
    for cell, stored in zip(code_cells, outputs.cells, strict=True):
        cell.outputs = [nbformat.from_dict(o) for o in stored.get("outputs", ())]
        cell.execution_count = stored.get("execution_count")
    for name, value in outputs.metadata.items():
        merged.metadata[name] = nbformat.from_dict(value)
    return merged
