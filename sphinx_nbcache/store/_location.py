"""Where a store is (its two URLs), and what can be known without opening it.

A no-op build needs only the change token and, after prose edits, a few blobs: both are
reachable here without importing the database layer (SQLAlchemy tables, the record schema),
which :meth:`StoreLocation.open` loads when a build does need the records.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._layout import BLOBS_DIR, DB_NAME

if TYPE_CHECKING:
    from ._blobs import Blobs
    from ._store import Store

__all__ = ["StoreLocation"]


class StoreLocation:
    """A store's database URL and blobs URL (None: the embedded defaults in ``cache_path``)."""

    __slots__ = ("blobs", "blobs_options", "cache_path", "database")

    def __init__(
        self,
        cache_path: Path,
        database: str | None = None,
        blobs: str | None = None,
        blobs_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.cache_path = cache_path
        self.database = database
        self.blobs = blobs
        self.blobs_options = dict(blobs_options or {})  # credentials: never shown

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
        from . import make_blobs

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
        from . import open_store

        return open_store(
            self.cache_path, self.database, self.blobs, self.blobs_options, read_only=read_only
        )
