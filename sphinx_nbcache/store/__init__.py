"""The only door to storage: records in SQLite (through SQLAlchemy), outputs as blobs.

Layout of a cache folder::

    <cache>/nbcache.db        records (results, pages, sources, meta)
    <cache>/blobs/ab/ab…json  outputs, content-addressed

One result is one transaction; blobs are written (atomically) before the row that names them,
so a crash at any point leaves either the old state or the new one. A damaged database is moved
aside and rebuilt (the notice says so); a damaged blob invalidates just its record; an older
schema is migrated, or rebuilt empty when no migration exists (never a traceback).

Public methods (the CLI and the Sphinx glue use only these): ``open``, ``lookup``, ``get``,
``records``, ``put``, ``load_outputs``, ``touch`` (``pages_by_key`` maps key -> page),
``remove``, ``collect_garbage``, ``evict`` (LRU limits), ``prune`` (forget pages gone from the
project and the results no kept page uses), ``page_keys``, ``forget_pages``, ``add_raw``,
``close``, ``token`` (has any result changed? without opening the database); ``notices`` holds
one-line messages for the caller to show once.
Housekeeping (``evict``, ``prune``, ``collect_garbage``) never deletes anything used or written
in the last :data:`GRACE_SECONDS`, so it is safe while other builds run on the same folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._blobs import BlobStore, read_outputs
from ._layout import BLOBS_DIR, DB_NAME
from ._token import read_token

if TYPE_CHECKING:  # imported on first use: a no-op build never loads SQLAlchemy's dialect
    from ..records import Outputs
    from ._store import GRACE_SECONDS, Store

__all__ = ["DB_NAME", "GRACE_SECONDS", "Store", "load_blob", "read_token"]


def load_blob(root: Path, blob_id: str | None) -> Outputs:
    """Outputs straight from a cache folder's blob, without opening the database
    (:class:`CorruptCacheError` if the blob is missing or damaged)."""
    return read_outputs(BlobStore(Path(root) / BLOBS_DIR), blob_id)


def __getattr__(name: str) -> Any:
    if name in ("GRACE_SECONDS", "Store"):
        from . import _store

        return getattr(_store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
