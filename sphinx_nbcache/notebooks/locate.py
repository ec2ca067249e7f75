"""Where each cell starts in its source file (1-based line numbers), for located warnings.

In every format (``.ipynb`` JSON, MyST, jupytext scripts, R Markdown, ...) the cells are found
in the file text in order: each cell's first non-blank source line (JSON-escaped for
``.ipynb``) is searched after the previous cell's position. MyST notebooks also carry a
``source_map`` from myst-nb's reader, used as a lower bound for the search.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["cell_lines"]


def cell_lines(notebook: Mapping[str, Any], text: str, is_json: bool) -> list[int]:
    """A 1-based line number per cell of ``notebook`` within ``text`` (best effort)."""
    cells = list(notebook.get("cells", ()))
    source_map = notebook.get("metadata", {}).get("source_map")
    if not (isinstance(source_map, list) and len(source_map) == len(cells)):
        source_map = None
    starts = [0]  # offset of each line
    for index, char in enumerate(text):
        if char == "\n":
            starts.append(index + 1)
    lines = []
    position = 0
    last_line = 1
    for number, cell in enumerate(cells):
        if source_map is not None:  # myst-nb's map: where the cell's block starts
            mapped = max(0, min(int(source_map[number]) - 1, len(starts) - 1))
            position = max(position, starts[mapped])
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        filled = [ln for ln in source.splitlines() if ln.strip()]
        needle = _escaped(filled[0], is_json) if filled else ""
        found = text.find(needle, position) if needle else -1
        if found < 0:
            lines.append(last_line)
            continue
        last_line = text.count("\n", 0, found) + 1
        lines.append(last_line)
        position = found + len(needle)
        end = text.find(_escaped(filled[-1], is_json), position) if len(filled) > 1 else -1
        if end >= 0:  # skip the rest of this cell: later cells are searched after it
            position = end + len(_escaped(filled[-1], is_json))
    return lines


def _escaped(line: str, is_json: bool) -> str:
    return json.dumps(line, ensure_ascii=False)[1:-1] if is_json else line
