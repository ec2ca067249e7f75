"""Source notebook + stored outputs -> the notebook the renderer gets (and back).

The merged notebook is the page *as written* (every cell, its source, its metadata) with the
outputs and execution counts of its code cells taken from the stored result, matched by
position among the code cells. Source files are never written. :func:`extract_outputs` is the
inverse: an executed notebook -> the outputs to store (used to cache notebooks executed
elsewhere).
"""

from __future__ import annotations

import copy
from typing import Any

import nbformat

from .errors import CorruptCacheError
from .hashing import code_sources
from .records import Outputs

__all__ = ["KEPT_METADATA", "extract_outputs", "merge_outputs"]

#: Notebook metadata that comes from execution and is stored with the outputs.
KEPT_METADATA = ("language_info", "widgets")


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


def extract_outputs(notebook: nbformat.NotebookNode) -> Outputs:
    """The outputs, execution counts and code sources of an executed notebook."""
    cells = tuple(
        {
            "execution_count": cell.get("execution_count"),
            "outputs": _plain(list(cell.get("outputs", ()))),
        }
        for cell in notebook.cells
        if cell.get("cell_type") == "code"
    )
    metadata = {k: notebook.metadata[k] for k in KEPT_METADATA if k in notebook.metadata}
    return Outputs(cells, _plain(metadata), tuple(code_sources(notebook)))


def _plain(value: Any) -> Any:
    """NotebookNode trees as plain dicts and lists (JSON-ready, comparable)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
