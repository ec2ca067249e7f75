"""Bring over the executed notebooks of a jupyter-cache folder (myst-nb / jupyter-book's cache).

A jupyter-cache folder holds ``global.db`` (SQLite; table ``nbcache``: ``pk, hashkey, uri,
description, data, created, accessed``) and ``executed/<hashkey>/base.ipynb``, the executed
code cells of each cached notebook. jupyter-cache keys by an md5 of its own making; we re-key
each notebook with :func:`.notebook_key`, so a result is found again
exactly when its code still matches a page. Read with plain ``sqlite3`` (read-only) and JSON:
jupyter-cache itself is not needed.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat

from ..errors import ArchiveError
from ..notebooks.merge import result_of
from ..notebooks.pages import Page
from ..notebooks.runnable import runnable
from ._archive import ImportReport, merge_record

if TYPE_CHECKING:
    from ..config import Options
    from ._store import Store

__all__ = ["find_jupyter_cache", "import_jupyter_cache"]

_HASHKEY = re.compile(r"[0-9a-f]{32}")
DB = "global.db"


def find_jupyter_cache(path: str | Path) -> Path:
    """The jupyter-cache folder at ``path``, or in its ``.jupyter_cache`` or
    ``_build/.jupyter_cache``."""
    folder = Path(path)
    for candidate in (folder, folder / ".jupyter_cache", folder / "_build" / ".jupyter_cache"):
        if (candidate / DB).is_file():
            return candidate
    raise ArchiveError(
        str(folder),
        f"not a jupyter-cache folder (no {DB}); give the folder myst-nb's nb_execution_cache_path "
        "names, by default _build/.jupyter_cache",
    )


def import_jupyter_cache(
    store: Store,
    path: str | Path,
    options: Options,
    page_name: Callable[[str], str] = lambda uri: Path(uri).stem,
) -> ImportReport:
    """Store every executed notebook of the jupyter-cache folder at ``path``, re-keyed.

    ``options`` are the ones the pages are built with (kernel aliases, ``allow_errors``);
    ``page_name`` turns jupyter-cache's ``uri`` (the source file) into a page name.
    """
    folder = find_jupyter_cache(path)
    report = ImportReport()
    for row in _rows(folder / DB):
        hashkey = str(row["hashkey"])
        if not _HASHKEY.fullmatch(hashkey):
            report.rejected.append((hashkey[:80], "invalid jupyter-cache hash key"))
            continue
        file = folder / "executed" / hashkey / "base.ipynb"
        try:
            notebook = nbformat.reads(file.read_text(encoding="utf-8"), as_version=4)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            report.rejected.append((hashkey, f"cannot read {file.name}: {exc}"))
            continue
        name = page_name(str(row["uri"]))
        run = runnable(notebook, Page(name, Path(str(row["uri"]))), options)
        created = _timestamp(row["created"])
        record, outputs = result_of(
            notebook,
            run.key,
            run.options,
            runtime=_seconds(row["data"]),
            page=name,
            created=created,
            last_used=max(created, _timestamp(row["accessed"])),
        )
        merge_record(store, record, outputs, report)
    return report


def _rows(db: Path) -> list[dict[str, Any]]:
    try:
        connection = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ArchiveError(str(db), f"cannot open the database: {exc}") from None
    try:
        connection.row_factory = sqlite3.Row
        cursor = connection.execute(
            "SELECT hashkey, uri, data, created, accessed FROM nbcache ORDER BY pk"
        )
        return [dict(row) for row in cursor]
    except sqlite3.Error as exc:
        raise ArchiveError(
            str(db), f"not a jupyter-cache database ({exc}); is it jupyter-cache 0.5 or newer?"
        ) from None
    finally:
        connection.close()


def _timestamp(value: Any) -> float:
    """jupyter-cache's naive UTC ``DATETIME`` text as a Unix time (now if unreadable)."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.now(timezone.utc).timestamp()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _seconds(data: Any) -> float:
    try:
        value = json.loads(data) if isinstance(data, str) else data
        return float(value.get("execution_seconds") or 0.0)
    except (ValueError, TypeError, AttributeError):
        return 0.0
