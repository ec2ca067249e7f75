"""The :class:`Store`: records in a :class:`Database`, outputs in :class:`Blobs`.

See the package docstring for the guarantees. Everything here works on any SQLAlchemy
dialect; what only SQLite needs lives in ``_sqlite``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update

from ..errors import StoreError
from ..notebooks.hashing import KEY_PATTERN
from ..notebooks.runnable import variant_of
from ..records import Artifact, Outputs, Record
from ._blobs import Blobs, LocalBlobs, outputs_bytes, read_outputs
from ._database import Database, upsert
from ._layout import BLOBS_DIR, CHUNK
from ._rows import to_record, to_row
from ._schema import pages, results, sources
from ._signing import Signer
from ._sqlite import SqliteDatabase

__all__ = ["Store"]


class Store:
    """A cache: safe to share between threads, forked processes and concurrent builds.

    ``Store(folder)`` is the embedded default (SQLite and blobs in ``folder``); give
    ``database`` and ``blobs`` for anything else (:func:`~sphinx_nbcache.store.open_store`
    makes them from URLs).
    """

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        database: Database | None = None,
        blobs: Blobs | None = None,
        read_only: bool = False,
        signer: Signer | None = None,
    ) -> None:
        if root is None and (database is None or blobs is None):
            raise StoreError("<store>", "give a cache folder, or both a database and blobs")
        self.root = Path(root) if root is not None else None
        self.db: Database = database or SqliteDatabase(Path(str(root)))
        self.blobs: Blobs = blobs or LocalBlobs(Path(str(root)) / BLOBS_DIR)
        #: read-only: nothing is created or repaired, bookkeeping writes are skipped, and a
        #: store that does not exist (or is damaged) reads as empty
        self.read_only = read_only
        self.db.read_only = read_only
        #: signs what is stored; with ``signer.required``, what is read must verify
        self.signer = signer
        self._refused: set[str] = set()  # ids of results whose signature did not verify
        self._told = 0  # how many of them a notice has told of

    # -- opening ------------------------------------------------------------------------------

    @property
    def notices(self) -> list[str]:
        """One-line messages (damage repaired, migrations, results refused) for the caller to
        show once."""
        if len(self._refused) > self._told:
            self._told = len(self._refused)
            self.db.notices.append(
                f"{self._told} cached result(s) refused: their signature does not verify "
                "under NBCACHE_SIGNING_KEY (nbcache_require_signatures), so they are treated "
                "as absent and their pages run here"
            )
        return self.db.notices

    def _trusted(self, record: Record | None) -> Record | None:
        """``record``, unless signatures are required and its own does not verify."""
        signer = self.signer
        if record is None or signer is None or not signer.required or signer.verifies(record):
            return record
        self._refused.add(record.id)
        return None

    def describe(self) -> str:
        """Where the records and blobs are (no credentials)."""
        database, blobs = self.db.describe(), self.blobs.describe()
        root = self.root
        local = isinstance(self.db, SqliteDatabase) and isinstance(self.blobs, LocalBlobs)
        if root is not None and local and getattr(self.blobs, "root", None) == root / BLOBS_DIR:
            return str(root)
        return f"{database} + {blobs}"

    def open(self) -> None:
        """Open the database now (create, migrate or repair it); :class:`StoreError` if it
        cannot be used. Otherwise it is opened on first use."""
        if not self._absent():
            self.db.engine()

    def _absent(self) -> bool:
        """True for a read-only store that does not exist (it reads as empty)."""
        return self.read_only and not self.db.usable()

    def token(self) -> str | None:
        """The change token: equal tokens mean no result changed (SQLite: no database
        access at all)."""
        return self.db.token()

    def close(self) -> None:
        self.db.close()

    # -- records ------------------------------------------------------------------------------

    def lookup(self, keys: Iterable[str]) -> dict[str, list[Record]]:
        """Every stored result of these keys, newest first (absent keys are missing)."""
        if self._absent():
            return {}
        wanted = sorted({k for k in keys if KEY_PATTERN.fullmatch(k)})
        found: dict[str, list[Record]] = {}
        with self.db.read() as conn:
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start : start + CHUNK]
                query = select(results).where(results.c.key.in_(chunk))
                for row in conn.execute(query.order_by(results.c.created.desc())):
                    record = self._trusted(to_record(row._mapping))
                    if record is not None:
                        found.setdefault(record.key, []).append(record)
        return found

    def get(self, key: str) -> Record | None:
        """The newest result of ``key``."""
        return next(iter(self.lookup([key]).get(key, ())), None)

    def by_id(self, result_id: str) -> Record | None:
        """The result with this id."""
        if self._absent():
            return None
        if not KEY_PATTERN.fullmatch(result_id):
            return None
        with self.db.read() as conn:
            row = conn.execute(select(results).where(results.c.id == result_id)).first()
        return None if row is None else self._trusted(to_record(row._mapping))

    def records(self) -> list[Record]:
        """Every record, most recently used first."""
        if self._absent():
            return []
        with self.db.read() as conn:
            rows = conn.execute(select(results).order_by(results.c.last_used.desc()))
            found = (self._trusted(to_record(row._mapping)) for row in rows)
            return [r for r in found if r is not None]

    def put(
        self,
        record: Record,
        outputs: Outputs | None,
        artifacts: Mapping[str, tuple[bytes, float]] | None = None,
        variant: str | None = None,
    ) -> Record:
        """Store a result: its outputs and artifacts (files the notebook wrote: relative path
        -> content, mtime) as blobs first, then its row, in one transaction. The page shows
        it as ``variant`` (default: the variant its parameters make)."""
        if not KEY_PATTERN.fullmatch(record.key):
            raise StoreError(self.describe(), f"refusing to store invalid key {record.key!r}")
        problem = record.problem()
        if problem is not None:
            what = record.page or record.key[:12]
            raise StoreError(self.describe(), f"refusing a result of {what}: {problem}")
        stored, size = None, 0
        if outputs is not None:
            data = outputs_bytes(outputs)
            stored, size = self.blobs.put(data), len(data)
        kept = record.artifacts
        if artifacts:
            kept = tuple(
                Artifact(path, self.blobs.put(content), len(content), mtime)
                for path, (content, mtime) in sorted(artifacts.items())
            )
        now = time.time()
        created = record.created or now
        record = record._replace(
            blob=stored, artifacts=kept, created=created, last_used=record.last_used or created
        )
        if self.signer is not None:
            record = record._replace(signature=self.signer.sign(record))
        with self.db.write() as conn:
            upsert(conn, results, [to_row(record, size)], ["id"])
            if record.page:
                shown = variant_of(record.parameters) if variant is None else variant
                _set_page(conn, record.page, shown, record)
        return record

    def load_outputs(self, record: Record) -> Outputs:
        """The outputs of a record; :class:`CorruptCacheError` if its blob is bad."""
        return read_outputs(self.blobs, record.blob)

    def touch(self, ids: Iterable[str], pages_by_id: Mapping[str, str] | None = None) -> None:
        """Mark results as used now (for LRU eviction) and remember which page shows which."""
        if self.read_only:
            return  # bookkeeping: skipped when only looking
        ids = sorted(set(ids))
        if not ids and not pages_by_id:
            return
        now = time.time()
        with self.db.write(changes_results=False) as conn:
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                conn.execute(update(results).where(results.c.id.in_(chunk)).values(last_used=now))
            changed = dict(pages_by_id or {})
            names = sorted(set(changed.values()))
            for start in range(0, len(names), CHUNK):  # rows already right need no write
                query = select(pages.c.page, pages.c.id).where(
                    pages.c.page.in_(names[start : start + CHUNK]), pages.c.variant == ""
                )
                for page, shown in conn.execute(query):
                    if changed.get(shown) == page:
                        del changed[shown]
            if changed:
                keys = dict(
                    conn.execute(
                        select(results.c.id, results.c.key).where(results.c.id.in_(list(changed)))
                    ).all()
                )
                rows = [
                    {
                        "page": page,
                        "variant": "",
                        "id": rid,
                        "key": keys.get(rid, rid),
                        "updated": now,
                    }
                    for rid, page in changed.items()
                ]
                upsert(conn, pages, rows, ["page", "variant"])

    def remove(self, ids: Iterable[str]) -> int:
        """Delete results by id (and blobs no other result uses); returns how many."""
        ids = sorted(set(ids))
        removed = 0
        with self.db.write() as conn:
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                removed += conn.execute(delete(results).where(results.c.id.in_(chunk))).rowcount
        from ._housekeeping import collect_garbage

        collect_garbage(self)
        return removed

    # -- pages and sources --------------------------------------------------------------------

    def page_keys(self) -> dict[str, str]:
        """The key of the result each page (as written) last executed or showed."""
        if self._absent():
            return {}
        with self.db.read() as conn:
            query = select(pages.c.page, pages.c.key).where(pages.c.variant == "")
            return dict(conn.execute(query).all())

    def page_results(self) -> dict[str, str]:
        """The id of the result each page (as written) last executed or showed."""
        if self._absent():
            return {}
        with self.db.read() as conn:
            query = select(pages.c.page, pages.c.id).where(pages.c.variant == "")
            return dict(conn.execute(query).all())

    def variants(self, page: str) -> list[Record]:
        """Every stored result of ``page``'s variants (one per set of parameters)."""
        if self._absent():
            return []
        with self.db.read() as conn:
            query = select(results).where(results.c.page == page, results.c.parameters.is_not(None))
            rows = conn.execute(query.order_by(results.c.created.desc()))
            found = (self._trusted(to_record(row._mapping)) for row in rows)
            return [r for r in found if r is not None]

    def forget_pages(self, names: Iterable[str]) -> None:
        names = sorted(set(names))
        with self.db.write(changes_results=False) as conn:
            for start in range(0, len(names), CHUNK):
                conn.execute(delete(pages).where(pages.c.page.in_(names[start : start + CHUNK])))

    def sources(self, digests: Iterable[str]) -> dict[str, dict[str, Any]]:
        """What earlier reads of these exact file contents found (see ``_schema.sources``)."""
        if self._absent():
            return {}
        wanted = sorted(set(digests))
        found: dict[str, dict[str, Any]] = {}
        with self.db.read() as conn:
            for start in range(0, len(wanted), CHUNK):
                query = select(sources).where(sources.c.digest.in_(wanted[start : start + CHUNK]))
                found.update({row.digest: dict(row._mapping) for row in conn.execute(query)})
        return found

    def remember_sources(self, rows: Iterable[dict[str, Any]]) -> None:
        """Record what reading file contents found (one transaction); keys are validated."""
        if self.read_only:
            return  # bookkeeping: skipped when only looking
        now = time.time()
        kept = {
            row["digest"]: {**row, "used": now}
            for row in rows
            if KEY_PATTERN.fullmatch(row["digest"]) and KEY_PATTERN.fullmatch(row["key"])
        }
        if kept:
            with self.db.write(changes_results=False) as conn:
                upsert(conn, sources, list(kept.values()), ["digest"])

    # -- leases: one execution per key across builds sharing the store ------------------------

    def acquire(
        self, keys: Iterable[str], holder: str, seconds: float, replacing: Iterable[str] = ()
    ) -> set[str]:
        """Take the leases of ``keys`` for ``holder`` (held by nobody, expired, already ours,
        or held by one of the ``replacing`` holders, known dead) for ``seconds``; returns the
        keys now ours. Others are being executed by another build: wait for their results (or
        for their leases to expire)."""
        from ._leases import acquire

        if self.read_only:
            return set(keys)
        return acquire(self, sorted(set(keys)), holder, seconds, sorted(set(replacing)))

    def renew(self, keys: Iterable[str], holder: str, seconds: float) -> None:
        """Extend ``holder``'s leases of ``keys`` (the heartbeat of a running build)."""
        from ._leases import renew

        renew(self, sorted(set(keys)), holder, seconds)

    def release(self, keys: Iterable[str], holder: str) -> None:
        """Give up ``holder``'s leases of ``keys`` (stored, cancelled or finished)."""
        from ._leases import release

        release(self, sorted(set(keys)), holder)

    def leases(self, keys: Iterable[str]) -> dict[str, tuple[str, float]]:
        """key -> (holder, expiry time) of the leases of ``keys`` that exist."""
        from ._leases import held

        return held(self, sorted(set(keys)))

    # -- housekeeping (``_housekeeping``) -----------------------------------------------------

    def collect_garbage(self, grace: float | None = None) -> int:
        """Delete blobs no result refers to, older than ``grace`` s; returns how many."""
        from ._housekeeping import GRACE_SECONDS, collect_garbage

        return collect_garbage(self, GRACE_SECONDS if grace is None else grace)

    def evict(
        self, max_entries: int = 0, max_size: int = 0, grace: float | None = None
    ) -> list[str]:
        """Delete least-recently-used results beyond the limits; returns their ids."""
        from ._housekeeping import GRACE_SECONDS, evict

        return evict(self, max_entries, max_size, GRACE_SECONDS if grace is None else grace)

    def prune(self, keep_pages: Iterable[str], grace: float | None = None) -> list[str]:
        """Forget pages not in ``keep_pages`` and delete results no kept page shows."""
        from ._housekeeping import GRACE_SECONDS, prune

        return prune(self, keep_pages, GRACE_SECONDS if grace is None else grace)


def _set_page(conn: Any, page: str, variant: str, record: Record) -> None:
    row = {"page": page, "variant": variant, "id": record.id, "key": record.key}
    upsert(conn, pages, [{**row, "updated": time.time()}], ["page", "variant"])
