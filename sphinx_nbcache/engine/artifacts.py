"""Files a notebook wrote inside the project, put back when its cached result is used.

A result keeps the files its notebook wrote (``Record.artifacts``, bounded by
``nbcache_artifact_limit``), so that a build from the cache alone (a fresh checkout, ``_build``
deleted) still has them for the pages and notebooks that read them. A missing file is
restored with the content and modification time it had; a file that is there with other
content is the user's and is never overwritten (the caller warns instead). Nothing is written
outside the project.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._atomic import write_atomically
from ..errors import CorruptCacheError

if TYPE_CHECKING:
    from ..plan.freshness import Freshness
    from ..plan.verdicts import PageState
    from ..records import Record
    from ..store import Blobs

__all__ = ["restore_all", "restore_artifacts"]


def restore_artifacts(
    record: Record, folder: Path, root: Path | None, blobs: Blobs, freshness: Freshness
) -> tuple[list[str], list[str]]:
    """Put back the artifacts of ``record`` for a page in ``folder``: (restored paths,
    messages about the ones left alone)."""
    restored: list[str] = []
    notes: list[str] = []
    inside = (root or folder).resolve()
    for artifact in record.artifacts:
        target = (folder / artifact.path).resolve()
        if target != inside and inside not in target.parents:
            notes.append(f"artifact {artifact.path} would land outside the project: not restored")
            continue
        if target.exists():
            if freshness.file_hash(target) != artifact.blob:
                notes.append(
                    f"{artifact.path} differs from the file this notebook wrote when its cached "
                    "result was made; kept yours (delete it to get the cached one back, or "
                    "change the notebook to run it again)"
                )
            continue
        try:
            data = blobs.get(artifact.blob)
        except CorruptCacheError as exc:
            notes.append(f"artifact {artifact.path} cannot be restored: {exc.reason}")
            continue
        _write(target, data, artifact.mtime)
        restored.append(artifact.path)
    return restored, notes


def _write(target: Path, data: bytes, mtime: float) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, data, mtime=mtime)


def restore_all(
    states: Iterable[PageState],
    root: Path | None,
    blobs: Blobs,
    freshness: Freshness,
    warn: Callable[[str, str, str], Any],
) -> int:
    """Put back the artifacts of the results these pages show; returns how many files.
    What is left alone is told to ``warn(page, message, "artifact")``."""
    count = 0
    for state in states:
        record = state.record
        if record is None or not record.artifacts:
            continue
        restored, notes = restore_artifacts(record, state.page.path.parent, root, blobs, freshness)
        count += len(restored)
        for note in notes:
            warn(state.page.name, note, "artifact")
    return count
