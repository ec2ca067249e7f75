"""The only door to storage: records in a SQL database, outputs and artifacts as blobs.

A store is made from two URLs (:func:`open_store`): ``nbcache_database``, any SQLAlchemy URL
(default: SQLite in the cache folder), and ``nbcache_blobs``, any fsspec URL (default: the
``blobs`` folder in the cache folder). The embedded default's layout::

    <cache>/nbcache.db        records (results, pages, sources, leases, meta)
    <cache>/generation        the change token (see ``_token``)
    <cache>/blobs/ab/ab…json  outputs and artifacts, content-addressed

One result is one transaction; blobs are written (atomically) before the row that names them,
so a crash at any point leaves either the old state or the new one. A damaged SQLite file is
moved aside and rebuilt (the notice says so); a damaged blob invalidates just its result; an
older schema is migrated, or rebuilt empty when no migration exists (never a traceback).

Modules: ``_store`` (:class:`Store`, the interface everything else uses), ``_database``
(any SQLAlchemy URL), ``_sqlite`` (what only SQLite needs), ``_schema`` (tables and
migrations), ``_blobs`` (:class:`Blobs`, the local folder), ``_fsspec`` (blobs anywhere
fsspec reaches), ``_housekeeping`` (eviction, pruning, garbage collection), ``_archive``
(export and import), ``_token`` (the SQLite change token).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._layout import BLOBS_DIR, DB_NAME
from ._location import StoreLocation

if TYPE_CHECKING:
    from ._archive import ImportReport, export_archive, import_archive, merge_record
    from ._blobs import Blobs
    from ._database import Database
    from ._housekeeping import GRACE_SECONDS
    from ._store import Store

__all__ = [
    "BLOBS_DIR",
    "DB_NAME",
    "GRACE_SECONDS",
    "ImportReport",
    "Store",
    "StoreLocation",
    "export_archive",
    "import_archive",
    "make_blobs",
    "make_database",
    "merge_record",
    "open_store",
]


def make_database(url: str | None, cache_path: str | Path) -> Database:
    """The database at ``url``; None or a ``sqlite:///`` URL of ``<cache>/nbcache.db``: the
    embedded SQLite back-end in ``cache_path``."""
    from ._sqlite import SqliteDatabase

    if url is None:
        return SqliteDatabase(Path(cache_path))
    if url.startswith("sqlite:///") and url.endswith(f"/{DB_NAME}"):
        return SqliteDatabase(Path(url[len("sqlite:///") : -len(DB_NAME)]))
    from ._database import Database

    return Database(url)


def make_blobs(
    url: str | None, cache_path: str | Path, options: Mapping[str, Any] | None = None
) -> Blobs:
    """The blobs at ``url``: None -> ``<cache>/blobs``; a local path or ``file://`` URL -> that
    folder; anything else -> fsspec with ``options`` (endpoint, credentials)."""
    from ._blobs import LocalBlobs

    if url is None:
        return LocalBlobs(Path(cache_path) / BLOBS_DIR)
    if url.startswith("file://"):
        return LocalBlobs(Path(url[len("file://") :]))
    if "://" not in url:
        return LocalBlobs(Path(os.path.expanduser(url)))
    from ._fsspec import FsspecBlobs

    return FsspecBlobs(url, options)


def open_store(
    cache_path: str | Path,
    database: str | None = None,
    blobs: str | None = None,
    blobs_options: Mapping[str, Any] | None = None,
    *,
    read_only: bool = False,
) -> Store:
    """A store from its URLs (nothing is connected until first use); ``read_only`` creates
    and repairs nothing (a store that is not there reads as empty)."""
    from ._store import Store

    root = Path(cache_path) if database is None and blobs is None else None
    return Store(
        root,
        database=make_database(database, cache_path),
        blobs=make_blobs(blobs, cache_path, blobs_options),
        read_only=read_only,
    )


def __getattr__(name: str) -> Any:
    if name == "Store":
        from ._store import Store

        return Store
    if name == "GRACE_SECONDS":
        from ._housekeeping import GRACE_SECONDS

        return GRACE_SECONDS
    if name in ("ImportReport", "export_archive", "import_archive", "merge_record"):
        from . import _archive

        return getattr(_archive, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
