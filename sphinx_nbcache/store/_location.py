"""Where a store is (its two URLs), and what can be known without opening it.

A no-op build needs only the change token and, after prose edits, a few blobs: both are
reachable here without importing the database layer (SQLAlchemy tables, the record schema),
which :meth:`StoreLocation.open` loads when a build does need the records.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._layout import BLOBS_DIR, DB_NAME

if TYPE_CHECKING:
    from ..config import Options
    from ..records import Record
    from ._blobs import Blobs
    from ._database import Database
    from ._signing import Signer
    from ._store import Store

__all__ = ["StoreLocation", "make_blobs", "make_database", "open_store"]


class StoreLocation:
    """A store's database URL and blobs URL (None: the embedded defaults in ``cache_path``)."""

    __slots__ = ("blobs", "blobs_options", "cache_path", "database", "signer")

    def __init__(
        self,
        cache_path: Path,
        database: str | None = None,
        blobs: str | None = None,
        blobs_options: Mapping[str, Any] | None = None,
        signer: Signer | None = None,
    ) -> None:
        self.cache_path = cache_path
        self.database = database
        self.blobs = blobs
        self.blobs_options = dict(blobs_options or {})  # credentials: never shown
        self.signer = signer  # signs what is stored; may require signatures of what is read

    def trusts(self, record: Record) -> bool:
        """Whether a result kept outside the store (the last build's) may be shown: always,
        unless signatures are required and its own does not verify."""
        signer = self.signer
        return signer is None or not signer.required or signer.verifies(record)

    @classmethod
    def of(cls, options: Options) -> StoreLocation:
        """Where the options say the store is, signing as they say."""
        o = options
        signer = None
        if o.signing_key is not None:
            from ._signing import Signer

            signer = Signer(o.signing_key, o.require_signatures)
        return cls(o.cache_path, o.database, o.blobs, o.blobs_options, signer)

    @property
    def sqlite_folder(self) -> Path | None:
        """The folder of the embedded SQLite database, if that is the database."""
        url = self.database
        if url is None:
            return self.cache_path
        if url.startswith("sqlite:///") and url.endswith(f"/{DB_NAME}"):
            return Path(url[len("sqlite:///") : -len(DB_NAME)])
        return None

    def describe(self) -> str:
        """Where the results are (no credentials)."""
        folder = self.sqlite_folder
        if folder is not None and self.blobs is None and folder == self.cache_path:
            return str(self.cache_path)
        from ._database import describe_url

        database = (
            str(folder / DB_NAME) if folder is not None else describe_url(self.database or "")
        )
        blobs = self.blobs or str(self.cache_path / BLOBS_DIR)
        return f"{database} + {blobs}"

    def open_blobs(self) -> Blobs:
        """The blobs (nothing is connected until first use)."""
        return make_blobs(self.blobs, self.cache_path, self.blobs_options)

    def local_token(self) -> str | None:
        """The change token of the embedded SQLite database, read without opening it;
        None when the database is another one (ask the opened store)."""
        folder = self.sqlite_folder
        if folder is None:
            return None
        from ._token import read_token

        return read_token(folder)

    def open(self, *, read_only: bool = False) -> Store:
        """The store (nothing is connected until first use)."""
        return open_store(
            self.cache_path,
            self.database,
            self.blobs,
            self.blobs_options,
            read_only=read_only,
            signer=self.signer,
        )


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
    signer: Signer | None = None,
) -> Store:
    """A store from its URLs (nothing is connected until first use); ``read_only`` creates
    and repairs nothing (a store that is not there reads as empty); ``signer`` signs what is
    stored (and may require signatures of what is read)."""
    from ._store import Store

    root = Path(cache_path) if database is None and blobs is None else None
    return Store(
        root,
        database=make_database(database, cache_path),
        blobs=make_blobs(blobs, cache_path, blobs_options),
        read_only=read_only,
        signer=signer,
    )
