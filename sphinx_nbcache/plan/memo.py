"""What reading a page's file told us, and whether that still holds (a stat, no reading).

Kept apart from ``parse`` (which reads and parses) so that a build where nothing changed can
check its memos without loading any reader.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

__all__ = ["Memo", "not_a_notebook", "still_valid"]


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
