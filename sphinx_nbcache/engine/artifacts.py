"""Files a notebook wrote inside the project, put back when its cached result is used.

A result keeps the files its notebook wrote (``Record.artifacts``, bounded by
``nbcache_artifact_limit``), so that a build from the cache alone (a fresh checkout, ``_build``
deleted) still has them for the pages and notebooks that read them. A missing file is
restored with the content and modification time it had; a file that is there with other
content is the user's and is never overwritten (the caller warns instead). Nothing is written
outside the project.

A result may come from someone else (a shared store, an imported archive), so a file that
changes what runs is never restored unless the project allows it by pattern
(``nbcache_artifact_patterns``): Python code (``*.py``, ``*.pyc``, ``*.pth``, compiled
extensions), a ``conf.py`` or jupyter-book configuration, anything under a dot-folder or named
with a dot (``.git/hooks/...``, ``.env``) or under ``__pycache__``. A file a notebook writes
and then imports (``%%file helpers.py``) is its output, not its input: the result stays valid
without it; allow its name to have it put back too.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .._atomic import write_atomically
from ..errors import CorruptCacheError

if TYPE_CHECKING:
    from ..plan.freshness import Freshness
    from ..plan.verdicts import PageState
    from ..records import Record
    from ..store import Blobs

__all__ = ["RISKY", "restore_all", "restore_artifacts", "risky"]

#: file names that change what runs when they appear in a project
RISKY = (
    "*.py", "*.pyc", "*.pyo", "*.pyd", "*.so", "*.pth", "*.dll", "*.dylib",
    "conf.py", "_config.yml", "_toc.yml", "sitecustomize*", "usercustomize*",
)  # fmt: skip


def risky(relative: str) -> bool:
    """True if a file at this project-relative path could change what runs."""
    parts = PurePosixPath(relative).parts
    if any(part.startswith(".") or part == "__pycache__" for part in parts):
        return True
    return any(fnmatch.fnmatchcase(parts[-1], pattern) for pattern in RISKY) if parts else True


def restore_artifacts(
    record: Record,
    folder: Path,
    root: Path | None,
    blobs: Blobs,
    freshness: Freshness,
    allowed: Iterable[str] = (),
) -> tuple[list[str], list[str]]:
    """Put back the artifacts of ``record`` for a page in ``folder``: (restored paths,
    messages about the ones left alone). ``allowed``: project-relative globs of files that
    change what runs and may be put back all the same (``nbcache_artifact_patterns``)."""
    restored: list[str] = []
    notes: list[str] = []
    inside = (root or folder).resolve()
    allowed = tuple(allowed)
    for artifact in record.artifacts:
        target = (folder / artifact.path).resolve()
        if target != inside and inside not in target.parents:
            notes.append(f"artifact {artifact.path} would land outside the project: not restored")
            continue
        relative = target.relative_to(inside).as_posix()
        if risky(relative) and not any(fnmatch.fnmatchcase(relative, p) for p in allowed):
            if not target.exists():
                notes.append(
                    f"artifact {relative} would change what runs (code, configuration or a "
                    "dot-file): not restored from the cache; allow it in "
                    "nbcache_artifact_patterns if this project's results are trusted"
                )
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
        if len(data) != artifact.size:
            notes.append(f"artifact {artifact.path} is not the size recorded: not restored")
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
    allowed: Iterable[str] = (),
) -> int:
    """Put back the artifacts of the results these pages show; returns how many files.
    What is left alone is told to ``warn(page, message, "artifact")``."""
    count = 0
    for state in states:
        record = state.record
        if record is None or not record.artifacts:
            continue
        folder = state.page.path.parent
        restored, notes = restore_artifacts(record, folder, root, blobs, freshness, allowed)
        count += len(restored)
        for note in notes:
            warn(state.page.name, note, "artifact")
    return count
