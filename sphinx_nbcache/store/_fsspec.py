"""Blobs anywhere fsspec reaches (``s3://bucket/prefix``, ``gs://``, ``memory://``, ...).

Same layout as the local folder, ``<prefix>/<id[:2]>/<id>.json``. On object stores
(``s3``, ``gs``, ``az``...) a single PUT is atomic: a reader sees the whole object or none.
Elsewhere the bytes go to a temporary name first and are moved into place. Reads verify the
hash. Storage options (endpoint, keys) are passed to fsspec and never printed: the store
describes itself by its URL alone.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import secrets
import time
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import ConfigError, CorruptCacheError, StoreError
from ..notebooks.hashing import KEY_PATTERN
from ._blobs import blob_id

__all__ = ["FsspecBlobs"]

#: Protocols whose single PUT is atomic (no temporary object needed).
_OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"})


class FsspecBlobs:
    """Content-addressed blobs behind an fsspec URL."""

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self._options = dict(options or {})
        self._fs: Any = None
        self._root = ""
        self._pid = os.getpid()

    def describe(self) -> str:
        return self.url  # never the options: they may hold credentials

    @property
    def fs(self) -> Any:
        if self._pid != os.getpid():  # a forked reader (sphinx-build -j): a client of its own
            self._fs, self._pid = None, os.getpid()
            _after_fork()
        if self._fs is None:
            try:
                from fsspec.core import url_to_fs
            except ImportError:
                raise ConfigError(
                    "nbcache_blobs", f"{self.url} needs fsspec: pip install fsspec (and s3fs)"
                ) from None
            try:
                self._fs, self._root = url_to_fs(
                    self.url, skip_instance_cache=True, **self._options
                )
            except (ImportError, ValueError) as exc:
                raise ConfigError(
                    "nbcache_blobs", f"cannot use {self.url}: {exc} (install its fsspec driver)"
                ) from None
        return self._fs

    def _protocols(self) -> set[str]:
        protocol = self.fs.protocol
        return set(protocol) if isinstance(protocol, tuple | list) else {protocol}

    def path(self, stored: str) -> str:
        if not KEY_PATTERN.fullmatch(stored):
            raise CorruptCacheError(self.url, f"invalid blob id {stored[:80]!r}")
        self.fs  # noqa: B018 (connects, which sets the root)
        return f"{self._root}/{stored[:2]}/{stored}.json"

    def put(self, data: bytes) -> str:
        new_id = blob_id(data)
        target = self.path(new_id)
        try:
            if self.fs.exists(target) and self._size(target) == len(data):
                self._refresh(target, data)
                return new_id
            if self._protocols() & _OBJECT_STORES:
                self.fs.pipe_file(target, data)
            else:
                self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
                tmp = f"{target}.{secrets.token_hex(6)}.tmp"
                self.fs.pipe_file(tmp, data)
                self.fs.mv(tmp, target)
        except OSError as exc:
            raise StoreError(self.url, f"cannot write a blob: {exc}") from None
        return new_id

    def _refresh(self, target: str, data: bytes) -> None:
        """A blob re-stored counts as new for garbage collection (object stores: PUT again,
        which also repairs a damaged copy; elsewhere only when its content is wrong)."""
        if self._protocols() & _OBJECT_STORES or self._damaged(target, data):
            self.fs.pipe_file(target, data)
            return
        with contextlib.suppress(NotImplementedError, ValueError, TypeError):
            self.fs.touch(target, truncate=False)

    def _damaged(self, target: str, data: bytes) -> bool:
        return hashlib.sha256(self.fs.cat_file(target)).hexdigest() != blob_id(data)

    def get(self, stored: str) -> bytes:
        path = self.path(stored)
        try:
            data: bytes = self.fs.cat_file(path)
        except FileNotFoundError:
            raise CorruptCacheError(f"{self.url}: blob {stored[:12]}", "blob is missing") from None
        except OSError as exc:
            raise CorruptCacheError(
                f"{self.url}: blob {stored[:12]}", f"cannot read: {exc}"
            ) from None
        if hashlib.sha256(data).hexdigest() != stored:
            raise CorruptCacheError(
                f"{self.url}: blob {stored[:12]}", "blob content does not match its id"
            )
        return data

    def _size(self, path: str) -> int:
        return int(self.fs.info(path).get("size") or 0)

    def age(self, stored: str) -> float:
        try:
            info = self.fs.info(self.path(stored))
        except (FileNotFoundError, OSError):
            return float("inf")
        return time.time() - _modified(info)

    def delete(self, stored: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.path(stored))

    def ids(self) -> Iterator[str]:
        try:
            found = self.fs.find(self._root) if self.fs.exists(self._root) else []
        except FileNotFoundError:
            return
        for path in found:
            name = str(path).rsplit("/", 1)[-1]
            if name.endswith(".json") and KEY_PATTERN.fullmatch(name[:-5]):
                yield name[:-5]

    def size(self, stored: str) -> int:
        try:
            return self._size(self.path(stored))
        except (FileNotFoundError, OSError):
            return 0

    def sweep(self, older_than: float = 3600.0) -> int:
        removed = 0
        try:
            found = self.fs.find(self._root, detail=True) if self.fs.exists(self._root) else {}
        except FileNotFoundError:
            return 0
        limit = time.time() - older_than
        for path, info in found.items():
            if str(path).endswith(".tmp") and _modified(info) < limit:
                try:
                    self.fs.rm_file(path)
                    removed += 1
                except FileNotFoundError:
                    pass
        return removed


def _modified(info: Mapping[str, Any]) -> float:
    """A file's modification time from fsspec's ``info`` (spelled differently per backend)."""
    for name in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(name)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime.datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0


_forked_in: set[int] = set()


def _after_fork() -> None:
    """fsspec's async clients share one event loop thread, which a forked process does not
    have: give this process its own (once), as fsspec asks of forked processes."""
    pid = os.getpid()
    if pid in _forked_in:
        return
    _forked_in.add(pid)
    import sys

    asyn = sys.modules.get("fsspec.asyn")
    if asyn is not None:
        asyn.reset_lock()
