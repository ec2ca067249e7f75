"""Names inside a cache folder, shared by the store and its change token."""

from __future__ import annotations

__all__ = ["BLOBS_DIR", "CHUNK", "DB_NAME", "TOKEN_NAME"]

DB_NAME = "nbcache.db"  # records: results, pages, sources, meta
TOKEN_NAME = "generation"  # the change token (see ``_token``)
BLOBS_DIR = "blobs"  # outputs, content-addressed
CHUNK = 500  # values per IN (...) query, well under every database's variable limit
