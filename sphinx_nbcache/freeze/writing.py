"""Frozen results written: one page's files, only where their bytes change.

Re-freezing a page whose result did not change rewrites nothing (not even a modification
time); images no longer shown are removed with the page's other files.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..config import Options
from ..records import Outputs, Record
from .files import frozen_form, images_folder, page_file
from .normalise import Normaliser

__all__ = ["frozen_pages", "remove_frozen", "write_frozen"]


def write_frozen(
    folder: Path, page: str, record: Record, outputs: Outputs, options: Options, root: Path | None
) -> list[Path]:
    """Freeze ``page``'s result into ``folder``; returns the files written or removed."""
    noise = Normaliser(options.freeze_normalise, root, record.created)
    text, images = frozen_form(record._replace(page=page), outputs, noise, options.freeze_stderr)
    changed = [path for path in [page_file(folder, page)] if _write(path, text)]
    pictures = images_folder(folder, page)
    changed += [
        pictures / n for n, content in sorted(images.items()) if _write(pictures / n, content)
    ]
    if pictures.is_dir():
        for old in sorted(pictures.iterdir()):
            if old.name not in images and old.is_file():
                old.unlink()
                changed.append(old)
        _remove_if_empty(pictures, folder)
    return changed


def remove_frozen(folder: Path, page: str) -> list[Path]:
    """Remove ``page``'s frozen files; returns those removed."""
    removed = []
    path = page_file(folder, page)
    if path.is_file():
        path.unlink()
        removed.append(path)
    pictures = images_folder(folder, page)
    if pictures.is_dir():
        for old in sorted(pictures.iterdir()):
            if old.is_file():
                old.unlink()
                removed.append(old)
        _remove_if_empty(pictures, folder)
    _remove_if_empty(path.parent, folder)
    return removed


def frozen_pages(folder: Path) -> list[str]:
    """The names of the pages frozen in ``folder``."""
    if not folder.is_dir():
        return []
    return sorted(
        path.relative_to(folder).with_suffix("").as_posix()
        for path in folder.rglob("*.json")
        if not any(part.endswith(".files") for part in path.relative_to(folder).parts[:-1])
    )


def _write(path: Path, data: bytes) -> bool:
    """Write ``data`` unless the file holds it already; True if written."""
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".freeze-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def _remove_if_empty(path: Path, folder: Path) -> None:
    """Remove ``path`` and its parents up to ``folder`` while they are empty."""
    while path != folder and path.is_dir() and not any(path.iterdir()):
        path.rmdir()
        path = path.parent
