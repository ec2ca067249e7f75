"""How a failed notebook is reported: one Sphinx warning at the failing line of the page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sphinx.util import logging

from ..notebooks.hashing import code_cells

if TYPE_CHECKING:
    from ..errors import NotebookReadError
    from ..records import Record

__all__ = ["warn_failure", "warn_read_error"]

logger = logging.getLogger("sphinx_nbcache")

_TB_LINE = re.compile(r"^Cell In\[\d*\], line (\d+)", re.MULTILINE)
#: ``suppress_warnings = ["nbcache.<subtype>"]`` silences each kind
_SUBTYPES = {
    "cell": "failed",
    "timeout": "timeout",
    "dead_kernel": "kernel",
    "no_kernel": "kernel",
    "read": "read",
    "internal": "internal",
}


def warn_failure(
    docname: str,
    path: Path | None,
    notebook: Any,
    record: Record,
    cached: bool,
    show_traceback: bool,
) -> None:
    """Warn at the failing cell's line (and the line inside it, from the traceback)."""
    failure = record.failure
    assert failure is not None
    line = None
    if failure.cell_index is not None and path is not None:
        from ..notebooks.locate import cell_lines

        try:
            text = path.read_text(encoding="utf-8")
            line = cell_lines(notebook, text, is_json=path.suffix == ".ipynb")[failure.cell_index]
        except (OSError, UnicodeDecodeError, IndexError):
            line = None
        in_cell = _TB_LINE.search(failure.traceback)
        if line and in_cell:  # point at the failing line inside the cell
            line += int(in_cell.group(1)) - 1
    where = record.where()
    if record.failed_code_cell is None and failure.cell_index is not None:  # imported results
        where = f"code cell {len(code_cells({'cells': notebook.cells[: failure.cell_index + 1]}))}"
    message = f"notebook execution {record.explain(where)}"
    if cached:
        message += (
            " (cached failure, not re-executed: change the code or set"
            " nbcache_retry_failed = True to retry)"
        )
    if show_traceback and failure.traceback:
        message += "\n" + failure.traceback.rstrip()
    logger.warning(
        message,
        location=(docname, line) if line else docname,
        type="nbcache",
        subtype=_SUBTYPES.get(failure.kind, "failed"),
    )


def warn_read_error(docname: str, error: NotebookReadError) -> None:
    logger.warning(
        f"cannot read this notebook: {error.reason}; it is shown without execution",
        location=docname,
        type="nbcache",
        subtype="read",
    )
