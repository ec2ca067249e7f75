"""Source notebook + stored outputs -> the notebook the renderer gets (and back).

The merged notebook is the page *as written* (every cell, its source, its metadata) with the
outputs and execution counts of its code cells taken from the stored result, matched by
position among the code cells. Source files are never written. :func:`outputs_of` is the
inverse: an executed notebook -> the outputs to store (for notebooks executed here and
elsewhere alike).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import nbformat

from ..errors import CorruptCacheError
from ..records import Failure, Outputs, Record
from .expressions import EXPRESSIONS_KEY
from .hashing import code_cells, code_sources, kernel_name

if TYPE_CHECKING:
    from ..config import Options

__all__ = [
    "KEPT_METADATA",
    "assume_language",
    "first_error",
    "merge_outputs",
    "outputs_of",
    "result_of",
]

#: Notebook metadata that comes from execution and is stored with the outputs.
KEPT_METADATA = ("language_info", "widgets")


def merge_outputs(
    notebook: nbformat.NotebookNode,
    outputs: Outputs,
    *,
    copy_nb: bool = False,
    where: str = "the stored result",
) -> nbformat.NotebookNode:
    """Put ``outputs`` into the code cells of ``notebook`` (in place unless ``copy_nb``).

    Raises :class:`CorruptCacheError` naming ``where`` if the counts of code cells differ (the
    record cannot be the result of this notebook); nothing is changed then.
    """
    merged: nbformat.NotebookNode = copy.deepcopy(notebook) if copy_nb else notebook
    cells = code_cells(merged)
    if len(cells) != len(outputs.cells):
        raise CorruptCacheError(
            where,
            f"it has outputs for {len(outputs.cells)} code cells, the notebook has "
            f"{len(cells)}: it cannot be this notebook's result",
        )
    for cell, stored in zip(cells, outputs.cells, strict=True):
        cell.outputs = [nbformat.from_dict(o) for o in stored.get("outputs", ())]
        cell.execution_count = stored.get("execution_count")
    for name, value in outputs.metadata.items():
        merged.metadata[name] = nbformat.from_dict(value)
    if outputs.expressions is not None:  # the values of its {eval} expressions
        merged.metadata[EXPRESSIONS_KEY] = nbformat.from_dict(list(outputs.expressions))
    return merged


def assume_language(notebook: nbformat.NotebookNode, kernel: str) -> None:
    """For a notebook that never ran: name its language (from the kernel spec, or a Python
    kernel's name) so the renderer can still highlight its cells; ``none`` (shown as plain
    text) when neither tells, e.g. a kernel that is not installed: the page's own warning says
    so once, instead of the renderer's "no lexer" for every cell."""
    if "language_info" in notebook.metadata:
        return
    spec = notebook.metadata.get("kernelspec") or {}
    language = spec.get("language") if isinstance(spec, dict) else None
    if not language and kernel.startswith("python"):
        language = "python"
    notebook.metadata["language_info"] = nbformat.from_dict({"name": str(language or "none")})


def outputs_of(notebook: nbformat.NotebookNode) -> Outputs:
    """The outputs, execution counts and code sources of an executed notebook."""
    cells = tuple(
        {
            "execution_count": cell.get("execution_count"),
            "outputs": _plain(list(cell.get("outputs", ()))),
        }
        for cell in code_cells(notebook)
    )
    metadata = {k: notebook.metadata[k] for k in KEPT_METADATA if k in notebook.metadata}
    values = notebook.metadata.get(EXPRESSIONS_KEY)
    expressions = tuple(_plain(values)) if isinstance(values, list) else None
    return Outputs(cells, _plain(metadata), tuple(code_sources(notebook)), expressions)


def _plain(value: Any) -> Any:
    """NotebookNode trees as plain dicts and lists (JSON-ready, comparable)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def result_of(
    notebook: nbformat.NotebookNode,
    key: str,
    own: Options,
    **fields: Any,
) -> tuple[Record, Outputs]:
    """An already executed notebook (run elsewhere: ``nbcache cache-notebook``, a
    jupyter-cache folder) as a result of ``key``: ``failed`` if a cell not tagged
    ``raises-exception`` holds an error and errors are not allowed. ``fields``: more of the
    record (page, created, runtime, ...)."""
    failure = first_error(notebook)
    record = Record(
        key=key,
        status="ok" if failure is None or own.allow_errors else "failed",
        blob=None,
        kernel=kernel_name(notebook, own),
        timeout=own.timeout,
        failure=None if own.allow_errors else failure,
        allow_errors=own.allow_errors,
        raised=failure is not None,
        **fields,
    )
    return record, outputs_of(notebook)


def first_error(notebook: nbformat.NotebookNode) -> Failure | None:
    """The first error output of a cell not tagged ``raises-exception``."""
    for index, cell in enumerate(notebook.cells):
        if cell.get("cell_type") != "code":
            continue  # indices count every cell: the failure's cell_index does
        if "raises-exception" in (cell.get("metadata", {}).get("tags") or ()):
            continue
        for output in cell.get("outputs", ()):
            if output.get("output_type") == "error":
                traceback = "\n".join(output.get("traceback", ()))
                number = sum(1 for c in notebook.cells[: index + 1] if c.get("cell_type") == "code")
                return Failure(
                    "cell",
                    output.get("ename", ""),
                    output.get("evalue", ""),
                    traceback,
                    index,
                    number,
                )
    return None
