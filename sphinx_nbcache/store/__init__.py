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

from typing import TYPE_CHECKING, Any

from ._layout import BLOBS_DIR, DB_NAME
from ._location import StoreLocation, make_blobs, make_database, open_store

if TYPE_CHECKING:
    from ._archive import ImportReport, export_archive, import_archive, merge_record
    from ._blobs import Blobs, read_outputs
    from ._database import describe_url
    from ._housekeeping import GRACE_SECONDS
    from ._store import Store
    from .jupyter_cache import import_jupyter_cache

__all__ = [
    "BLOBS_DIR",
    "DB_NAME",
    "GRACE_SECONDS",
    "Blobs",
    "ImportReport",
    "Store",
    "StoreLocation",
    "describe_url",
    "export_archive",
    "import_archive",
    "import_jupyter_cache",
    "make_blobs",
    "make_database",
    "merge_record",
    "open_store",
    "read_outputs",
]


def __getattr__(name: str) -> Any:
    if name == "Store":
        from ._store import Store

        return Store
    if name == "GRACE_SECONDS":
        from ._housekeeping import GRACE_SECONDS

        return GRACE_SECONDS
    if name == "import_jupyter_cache":
        from .jupyter_cache import import_jupyter_cache

        return import_jupyter_cache
    if name == "describe_url":
        from ._database import describe_url

        return describe_url
    if name in ("Blobs", "read_outputs"):
        from . import _blobs

        return getattr(_blobs, name)
    if name in ("ImportReport", "export_archive", "import_archive", "merge_record"):
        from . import _archive

        return getattr(_archive, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
