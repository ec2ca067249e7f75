"""Content-addressed blobs: ``<root>/<id[:2]>/<id>.json`` where ``id`` = sha256 of the bytes.

:class:`Blobs` is the interface (any place that can hold immutable named bytes);
:class:`LocalBlobs` is the embedded default, a folder. Writes go to a temporary file in the
same folder and are renamed into place, so a reader sees a whole blob or none; a crash leaves
at most a stray ``*.tmp`` that :meth:`LocalBlobs.sweep` removes. Reads verify the hash, so a
truncated or altered blob is detected, never served. Other places (S3, ...) are reached
through fsspec (``_fsspec``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .._atomic import write_atomically
from ..errors import CorruptCacheError
from ..notebooks.hashing import KEY_PATTERN

if TYPE_CHECKING:
    from ..records import Outputs

__all__ = ["Blobs", "LocalBlobs", "blob_id", "outputs_bytes", "read_outputs"]


def blob_id(data: bytes) -> str:
    """The id of a blob holding ``data``."""
    return hashlib.sha256(data).hexdigest()


def outputs_bytes(outputs: Outputs) -> bytes:
    """How outputs are serialised into a blob (their blob id is ``blob_id`` of this)."""
    return json.dumps(outputs.to_json(), ensure_ascii=False).encode("utf-8")


class Blobs(Protocol):
    """Immutable content-addressed blobs somewhere (a folder, a bucket, ...)."""

    def describe(self) -> str:
        """Where the blobs are, safe to print (no credentials)."""
        ...

    def put(self, data: bytes) -> str:
        """Store ``data`` (atomically: whole or not at all); returns its id."""
        ...

    def get(self, blob_id: str) -> bytes:
        """The bytes; :class:`CorruptCacheError` if missing or not matching the id."""
        ...

    def age(self, blob_id: str) -> float:
        """Seconds since written or last re-stored (infinite if missing)."""
        ...

    def delete(self, blob_id: str) -> None: ...

    def ids(self) -> Iterator[str]:
        """Every blob id stored."""
        ...

    def size(self, blob_id: str) -> int:
        """Bytes (0 if missing)."""
        ...

    def sweep(self, older_than: float = 3600.0) -> int:
        """Remove what crashed writers left; returns how many."""
        ...


class LocalBlobs:
    """A folder of immutable, content-addressed files."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    def path(self, blob_id: str) -> Path:
        """Where a blob lives; refuses ids that are not hex digests (no path tricks)."""
        if not KEY_PATTERN.fullmatch(blob_id):
            raise CorruptCacheError(str(self.root), f"invalid blob id {blob_id[:80]!r}")
        return self.root / blob_id[:2] / f"{blob_id}.json"

    def put(self, data: bytes) -> str:
        """Store ``data``; returns its id. Writing the same bytes twice is harmless."""
        new_id = blob_id(data)
        target = self.path(new_id)
        if self._intact(target, new_id, len(data)):
            with suppress(OSError):
                os.utime(target)  # fresh again: garbage collection spares recent blobs
            return new_id
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, data, sync=True)
        return new_id

    def get(self, blob_id: str) -> bytes:
        """The bytes of a blob; :class:`CorruptCacheError` if missing or not matching its id."""
        path = self.path(blob_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CorruptCacheError(str(path), "blob is missing") from None
        if hashlib.sha256(data).hexdigest() != blob_id:
            raise CorruptCacheError(str(path), "blob content does not match its id")
        return data

    @staticmethod
    def _intact(path: Path, blob_id: str, size: int) -> bool:
        """True if ``path`` holds exactly the blob (a damaged copy is rewritten, not reused)."""
        try:
            if path.stat().st_size != size:
                return False
            return hashlib.sha256(path.read_bytes()).hexdigest() == blob_id
        except OSError:
            return False

    def age(self, blob_id: str) -> float:
        """Seconds since the blob was written or last re-stored (infinite if missing)."""
        try:
            return time.time() - self.path(blob_id).stat().st_mtime
        except FileNotFoundError:
            return float("inf")

    def delete(self, blob_id: str) -> None:
        self.path(blob_id).unlink(missing_ok=True)

    def ids(self) -> Iterator[str]:
        """Every blob id on disk."""
        if not self.root.is_dir():
            return
        for sub in self.root.iterdir():
            if sub.is_dir():
                for file in sub.glob("*.json"):
                    if KEY_PATTERN.fullmatch(file.stem):
                        yield file.stem

    def size(self, blob_id: str) -> int:
        try:
            return self.path(blob_id).stat().st_size
        except FileNotFoundError:
            return 0

    def sweep(self, older_than: float = 3600.0) -> int:
        """Remove temporary files left by crashed writers (older than ``older_than`` s)."""
        removed = 0
        if not self.root.is_dir():
            return 0
        limit = time.time() - older_than
        for tmp in self.root.glob("*/.*.tmp"):
            try:
                if tmp.stat().st_mtime < limit:
                    tmp.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed


def read_outputs(blobs: Blobs, stored: str | None) -> Outputs:
    """The outputs stored in a blob; :class:`CorruptCacheError` if it is missing or bad."""
    from ..records import Outputs

    if stored is None:
        return Outputs(())
    data = blobs.get(stored)
    try:
        return Outputs.from_json(json.loads(data))
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptCacheError(f"{blobs.describe()}: blob {stored[:12]}", str(exc)) from None
