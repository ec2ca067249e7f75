"""A page against its cached result: which code cells and execution settings differ.

Only what can change outputs is compared (the same things :mod:`~sphinx_nbcache.hashing`
puts in the key): code cell sources, the kernel, and the per-cell timeout (kept with the
record). The key also covers execution tags and ``allow_errors``; they are not stored, so
when sources and kernel agree but the keys do not, :attr:`NotebookDiff.note` says which of
those must have changed.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["CellChange", "NotebookDiff", "diff_sources"]

ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class CellChange:
    """One code cell that differs; positions count code cells from 1."""

    kind: ChangeKind
    cached_position: int | None  # None for an added cell
    position: int | None  # None for a removed cell
    cached: str
    source: str

    def describe(self) -> str:
        if self.kind == "added":
            return f"code cell {self.position} added"
        if self.kind == "removed":
            return f"code cell {self.cached_position} removed"
        if self.cached_position == self.position:
            return f"code cell {self.position} changed"
        return f"code cell {self.cached_position} changed (now cell {self.position})"

    def unified(self, page: str = "") -> str:
        """The change as a unified diff of the cell's source."""
        prefix = f"{page}: " if page else ""
        before = f"{prefix}cached cell {self.cached_position}" if self.cached_position else "-"
        after = f"{prefix}cell {self.position}" if self.position else "-"
        lines = difflib.unified_diff(
            self.cached.splitlines(), self.source.splitlines(), before, after, lineterm=""
        )
        return "\n".join(lines)


@dataclass(frozen=True)
class NotebookDiff:
    """What differs between a page and the cached result it is compared with."""

    page: str
    key: str  # the page's key now
    cached_key: str  # the key of the cached result compared with
    cells: tuple[CellChange, ...]
    settings: tuple[tuple[str, Any, Any], ...]  # (name, cached value, value now)
    sources_known: bool  # False: the cached result predates stored sources
    note: str = ""

    @property
    def same(self) -> bool:
        """True if the page still matches the cached result (it would not re-execute)."""
        return self.key == self.cached_key

    def summary(self) -> str:
        """One line: ``code cell 2 changed, kernel: python3 -> ir``."""
        if self.same:
            return "unchanged since it was cached"
        parts = [c.describe() for c in self.cells]
        parts += [f"{name}: {_show(old)} -> {_show(new)}" for name, old, new in self.settings]
        if not self.sources_known and not parts:
            parts.append("code changed (the cached result does not keep its sources)")
        if self.note and not parts:
            parts.append(self.note)
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "page": self.page,
            "key": self.key,
            "cached_key": self.cached_key,
            "same": self.same,
            "summary": self.summary(),
            "cells": [
                {
                    "kind": c.kind,
                    "cached_position": c.cached_position,
                    "position": c.position,
                    "cached": c.cached,
                    "source": c.source,
                }
                for c in self.cells
            ],
            "settings": [{"name": n, "cached": o, "now": v} for n, o, v in self.settings],
            "sources_known": self.sources_known,
            "note": self.note,
        }


def diff_sources(cached: Sequence[str], now: Sequence[str]) -> tuple[CellChange, ...]:
    """The code cells that differ, aligned so an inserted cell does not shift every other."""
    changes: list[CellChange] = []
    matcher = difflib.SequenceMatcher(a=list(cached), b=list(now), autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            continue
        paired = min(a1 - a0, b1 - b0) if tag == "replace" else 0
        for offset in range(paired):
            i, j = a0 + offset, b0 + offset
            changes.append(CellChange("changed", i + 1, j + 1, cached[i], now[j]))
        for i in range(a0 + paired, a1):
            changes.append(CellChange("removed", i + 1, None, cached[i], ""))
        for j in range(b0 + paired, b1):
            changes.append(CellChange("added", None, j + 1, "", now[j]))
    return tuple(changes)


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g} s"
    return str(value)
