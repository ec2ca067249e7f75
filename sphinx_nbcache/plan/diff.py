"""A page against its cached result: which code cells and execution settings differ.

Only what can change outputs is compared: what :mod:`.hashing` puts in the key
(code cell sources, the kernel, ``allow_errors`` for a result that raised, the timeout for one
that timed out) and what the result recorded it depended on
(:mod:`~sphinx_nbcache.plan.freshness`: files, packages). Execution tags are in the key but not
stored, so when sources and kernel agree but the keys do not, :attr:`NotebookDiff.note` says
which of those must have changed.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ..config import Options
    from ..records import Record

__all__ = ["CellChange", "NotebookDiff", "diff_page", "diff_sources"]

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
    dependencies: str | None = None  # what the result depended on that changed (same code)

    @property
    def same(self) -> bool:
        """True if the page still matches the cached result (it would not re-execute)."""
        return self.key == self.cached_key and self.dependencies is None

    def summary(self) -> str:
        """One line: ``code cell 2 changed, kernel: python3 -> ir``."""
        if self.same:
            return "unchanged since it was cached"
        if self.key == self.cached_key:
            return f"same code; {self.dependencies}"
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
            "dependencies": self.dependencies,
        }


def diff_page(
    page: str,
    notebook: Mapping[str, Any],
    own: Options,
    key: str,
    record: Record,
    cached: Sequence[str] | None,
    dependencies: str | None,
) -> NotebookDiff:
    """A page (its notebook read with options ``own``, its key) against a cached result
    (``cached``: the code cell sources it ran, if stored; ``dependencies``: what it depended
    on that changed since)."""
    from ..notebooks.hashing import EXECUTION_TAGS, code_sources, kernel_name

    cells = diff_sources(cached, code_sources(notebook)) if cached is not None else ()
    settings: list[tuple[str, Any, Any]] = []
    kernel = kernel_name(notebook, own)
    if record.kernel and record.kernel != kernel:
        settings.append(("kernel", record.kernel, kernel))
    flipped = record.allow_errors is not None and record.allow_errors != own.allow_errors
    if flipped and (record.raised or record.status != "ok"):  # one that raised nothing is reused
        settings.append(("allow_errors", record.allow_errors, own.allow_errors))
    timed_out = record.failure is not None and record.failure.kind == "timeout"
    if timed_out and record.timeout != own.timeout:  # the only case the timeout matters
        settings.append(("timeout", record.timeout, own.timeout))
    note = ""
    if record.key != key and cached is not None and not cells and not settings:
        tags = ", ".join(sorted(EXECUTION_TAGS))
        note = f"same code: an {{eval}} expression, an execution tag ({tags}) or allow_errors"
        note += " changed"
    return NotebookDiff(
        page, key, record.key, cells, tuple(settings), cached is not None, note, dependencies
    )


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
