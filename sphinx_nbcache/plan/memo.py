"""What reading a page's file told us, and whether that still holds (a stat, no reading).

Kept apart from ``parse`` (which reads and parses) so that a build where nothing changed can
check its memos without loading any reader.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ..notebooks.runnable import Runnable

__all__ = ["Memo", "memo_for", "not_a_notebook", "still_valid"]


class Memo(NamedTuple):
    """What reading a file told us, valid while its size and mtime do not change."""

    mtime_ns: int
    size: int
    key: str | None  # None: not a notebook
    mode: str
    has_outputs: bool
    excluded: bool
    timeout: float | None = None  # the notebook's effective per-cell timeout
    #: the key of the same code run with the other ``allow_errors`` (a result that raised
    #: nothing is valid under either setting)
    sibling: str | None = None
    #: what was read: a digest of the bytes, their reader and the options that decide the key
    #: (``parse.read_contents``; None: not known)
    digest: str | None = None


def still_valid(memo: Memo, path: Path) -> bool:
    """True while the file has the size and modification time the memo was made from."""
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return stat.st_mtime_ns == memo.mtime_ns and stat.st_size == memo.size


def not_a_notebook(path: Path) -> Memo:
    stat = path.stat()
    return Memo(stat.st_mtime_ns, stat.st_size, None, "", False, False)


def memo_for(
    run: Runnable,
    stat: os.stat_result | None = None,
    excluded: bool = False,
    digest: str | None = None,
) -> Memo:
    """What reading found: for a page's file (``stat``) as its options say, or (no ``stat``)
    for a variant or a call, which run whatever the page's execution mode."""
    if stat is None:
        mode, has_outputs = "cache", False
    else:
        mode = run.options.mode
        cells = run.notebook.get("cells", ())
        has_outputs = all(c.get("outputs") for c in cells if c.get("cell_type") == "code")
    return Memo(
        mtime_ns=stat.st_mtime_ns if stat is not None else 0,
        size=stat.st_size if stat is not None else 0,
        key=run.key,
        mode=mode,
        has_outputs=has_outputs,
        excluded=excluded,
        timeout=run.options.timeout,
        sibling=run.sibling,
        digest=digest,
    )
