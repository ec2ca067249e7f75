"""The :class:`Store` (see the package docstring for the layout and guarantees)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, or_, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DatabaseError, OperationalError

from ..errors import StoreError
from ..hashing import KEY_PATTERN
from ..records import Failure, Outputs, Record
from ._blobs import BlobStore, read_outputs
from ._layout import BLOBS_DIR, DB_NAME
from ._schema import SCHEMA_VERSION, ensure_schema, make_engine, pages, results, sources
from ._token import bump_token, read_token

__all__ = ["GRACE_SECONDS", "Store"]

#: Records used (or stored) more recently than this are never evicted or pruned, and blobs
#: younger than this are never garbage-collected: a concurrent build may be reading them.
GRACE_SECONDS = 600.0
_CHUNK = 500  # keys per IN (...) query, well under SQLite's variable limit


class Store:
    """A cache folder. Safe to share between threads, forked processes and concurrent builds."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.blobs = BlobStore(self.root / BLOBS_DIR)
        self.notices: list[str] = []  # one line each, for the caller to show once
        self._engine: Engine | None = None
        self._pid = -1
        self._lock = threading.Lock()

    # -- connection ---------------------------------------------------------------------------

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    def _get_engine(self) -> Engine:
        with self._lock:
            if self._engine is not None and self._pid == os.getpid():
                return self._engine
            if self._engine is not None:  # inherited through fork: never touch its pool
                self._engine.dispose(close=False)
            self._engine = self._open()
            self._pid = os.getpid()
            if read_token(self.root) is None:  # a cache from before change tokens
                bump_token(self.root)
            return self._engine

    def _open(self) -> Engine:
        try:
            self.root.mkdir(parents=True, exist_ok=True)  # mode from the user's umask
        except OSError as exc:
            raise StoreError(str(self.root), f"cannot create the cache folder: {exc}") from None
        engine = make_engine(str(self.db_path))
        try:
            found, now, rebuilt = self._migrate(engine)
        except (DatabaseError, ValueError) as exc:
            if isinstance(exc, OperationalError) and "locked" in str(exc):
                raise StoreError(str(self.db_path), f"database stayed locked: {exc}") from None
            engine.dispose()
            from filelock import FileLock  # only on this rare path: keep start-up light

            with FileLock(str(self.root / ".nbcache.lock")):
                engine = make_engine(str(self.db_path))
                try:  # another build may have replaced the damaged file meanwhile
                    found, now, rebuilt = self._migrate(engine)
                except (DatabaseError, ValueError):
                    engine.dispose()
                    aside: Path | None = self._move_aside()
                    engine = make_engine(str(self.db_path))
                    found, now, rebuilt = self._migrate(engine)
                else:
                    aside = None
            if aside is None:
                return engine
            self.notices.append(
                f"the cache database {self.db_path} was unreadable ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:120]}); moved it to {aside.name} and started a "
                "new one: the notebooks it held will be executed again (delete the "
                f"{aside.name} file once you no longer need it)"
            )
        if rebuilt:
            self.notices.append(
                f"the cache database {self.db_path} had an older layout (schema {found}) that "
                f"cannot be migrated; started it afresh at schema {now}: its notebooks will be "
                "executed again"
            )
        elif 0 < found < now:
            self.notices.append(f"migrated the cache database from schema {found} to {now}")
        return engine

    def _migrate(self, engine: Engine) -> tuple[int, int, bool]:
        with engine.connect() as conn:
            check = conn.exec_driver_sql("PRAGMA quick_check").scalar()
            if check != "ok":  # a truncated or overwritten file can open fine, then fail later
                raise DatabaseError("PRAGMA quick_check", None, ValueError(str(check)))
            current = _schema_version(conn)
            conn.rollback()
            if current == SCHEMA_VERSION:  # the common case: no write transaction at all
                return current, current, False
            conn.info["write"] = True
            try:
                with conn.begin():
                    found, now, rebuilt = ensure_schema(conn)
            finally:
                conn.info.pop("write", None)
        if found > SCHEMA_VERSION:
            engine.dispose()
            raise StoreError(
                str(self.db_path),
                f"written by a newer sphinx-nbcache (schema {found}, this one knows "
                f"{SCHEMA_VERSION}): upgrade sphinx-nbcache or point nbcache_path elsewhere",
            )
        bump_token(self.root)  # created, migrated or rebuilt
        return found, now, rebuilt

    def _move_aside(self) -> Path:
        aside = self.db_path.with_name(f"{DB_NAME}.damaged-{int(time.time())}-{os.getpid()}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.db_path}{suffix}")
            if source.exists():
                os.replace(source, f"{aside}{suffix}")
        return aside

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._get_engine().connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self, changes_results: bool = True) -> Iterator[Connection]:
        """One write transaction; if it may change results, the change token is replaced
        after it commits (see ``_token``)."""
        with self._get_engine().connect() as conn:
            conn.info["write"] = True
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info.pop("write", None)
        if changes_results:
            bump_token(self.root)

    def token(self) -> str | None:
        """The change token (no database access): equal tokens mean no result changed."""
        return read_token(self.root)

    def open(self) -> None:
        """Open the database now (create, migrate or repair it); :class:`StoreError` if the
        folder cannot be used. Otherwise it is opened on first use."""
        self._get_engine()

    def close(self) -> None:
        with self._lock:
            if self._engine is not None and self._pid == os.getpid():
                self._engine.dispose()
            self._engine = None

    # -- records ------------------------------------------------------------------------------

    def lookup(self, keys: Iterable[str]) -> dict[str, Record]:
        """The stored records of these keys (absent keys are simply missing)."""
        wanted = sorted({k for k in keys if KEY_PATTERN.fullmatch(k)})
        found: dict[str, Record] = {}
        with self._read() as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                for row in conn.execute(select(results).where(results.c.key.in_(chunk))):
                    record = _to_record(row._mapping)
                    if record is not None:
                        found[record.key] = record
        return found

    def get(self, key: str) -> Record | None:
        return self.lookup([key]).get(key)

    def records(self) -> list[Record]:
        """Every record, most recently used first."""
        with self._read() as conn:
            rows = conn.execute(select(results).order_by(results.c.last_used.desc()))
            return [r for r in (_to_record(row._mapping) for row in rows) if r is not None]

    def put(self, record: Record, outputs: Outputs | None) -> Record:
        """Store a result: its outputs blob first, then its row, in one transaction."""
        if not KEY_PATTERN.fullmatch(record.key):
            raise StoreError(str(self.root), f"refusing to store invalid key {record.key!r}")
        blob_id, size = None, 0
        if outputs is not None:
            data = json.dumps(outputs.to_json(), ensure_ascii=False).encode("utf-8")
            blob_id, size = self.blobs.put(data), len(data)
        row = _to_row(record, blob_id, size)
        statement = sqlite_insert(results).values(**row)
        statement = statement.on_conflict_do_update(
            index_elements=[results.c.key], set_={k: v for k, v in row.items() if k != "key"}
        )
        with self._write() as conn:
            conn.execute(statement)
            if record.page:
                _upsert_page(conn, record.page, record.key)
        return Record(**{**record.__dict__, "blob": blob_id})

    def load_outputs(self, record: Record) -> Outputs:
        """The outputs of a record; :class:`CorruptCacheError` if its blob is bad."""
        return read_outputs(self.blobs, record.blob)

    def touch(self, keys: Iterable[str], pages_by_key: Mapping[str, str] | None = None) -> None:
        """Mark records as used now (for LRU eviction) and remember which page uses which."""
        keys = sorted(set(keys))
        if not keys and not pages_by_key:
            return
        now = time.time()
        with self._write(changes_results=False) as conn:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                conn.execute(update(results).where(results.c.key.in_(chunk)).values(last_used=now))
            changed = dict(pages_by_key or {})
            names = sorted(changed.values())
            for start in range(0, len(names), _CHUNK):  # rows already right need no write
                query = select(pages).where(pages.c.page.in_(names[start : start + _CHUNK]))
                for row in conn.execute(query):
                    if changed.get(row.key) == row.page:
                        del changed[row.key]
            for key, page in changed.items():
                _upsert_page(conn, page, key)

    def remove(self, keys: Iterable[str]) -> int:
        """Delete records (and blobs no other record uses); returns how many were deleted."""
        keys = sorted(set(keys))
        removed = 0
        with self._write() as conn:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                removed += conn.execute(delete(results).where(results.c.key.in_(chunk))).rowcount
        self.collect_garbage()
        return removed

    def collect_garbage(self, grace: float = GRACE_SECONDS) -> int:
        """Delete blobs no record refers to and older than ``grace`` s; returns how many.

        The grace period protects a concurrent build that has written a blob and not yet
        committed the row naming it (re-storing an existing blob refreshes its age).
        """
        with self._read() as conn:
            used = {row[0] for row in conn.execute(select(results.c.blob)) if row[0]}
        removed = 0
        for blob_id in list(self.blobs.ids()):
            if blob_id not in used and self.blobs.age(blob_id) >= grace:
                self.blobs.delete(blob_id)
                removed += 1
        self.blobs.sweep()
        return removed

    def evict(
        self, max_entries: int = 0, max_size: int = 0, grace: float = GRACE_SECONDS
    ) -> list[str]:
        """Delete least-recently-used records beyond ``max_entries`` records or ``max_size``
        bytes of outputs (0: no limit); returns the deleted keys.

        A record used or stored in the last ``grace`` seconds is never deleted, even over the
        limits: a build plans (and marks as used) every record it will read, so a build running
        concurrently never loses a result it is about to read.
        """
        if max_entries <= 0 and max_size <= 0:
            return []
        cutoff = time.time() - grace
        with self._read() as conn:
            rows = conn.execute(
                select(
                    results.c.key, results.c.size, results.c.last_used, results.c.created
                ).order_by(results.c.last_used.desc())
            ).all()
        count = size = 0
        victims = []
        for key, row_size, last_used, created in rows:
            count, size = count + 1, size + int(row_size or 0)
            over = (0 < max_entries < count) or (0 < max_size < size)
            if over and max(last_used, created) < cutoff:
                victims.append(key)
                count, size = count - 1, size - int(row_size or 0)
        evicted = self._delete_unused(victims, cutoff)
        if evicted:
            self.collect_garbage(grace)
        return evicted

    def prune(self, keep_pages: Iterable[str], grace: float = GRACE_SECONDS) -> list[str]:
        """Forget the pages not in ``keep_pages`` and delete every record no kept page uses
        now (results of deleted pages and older versions of kept ones); returns their keys.

        Meant for a cache folder used by one project (page names are per project). Records
        used or stored in the last ``grace`` seconds are kept, as in :meth:`evict`.
        """
        keep = set(keep_pages)
        cutoff = time.time() - grace
        with self._read() as conn:
            page_rows = conn.execute(select(pages.c.page, pages.c.key)).all()
            keys = [row[0] for row in conn.execute(select(results.c.key))]
        self.forget_pages(page for page, _ in page_rows if page not in keep)
        wanted = {key for page, key in page_rows if page in keep}
        pruned = self._delete_unused([k for k in keys if k not in wanted], cutoff)
        if pruned:
            self.collect_garbage(grace)
        return pruned

    def _delete_unused(self, keys: list[str], cutoff: float) -> list[str]:
        """Delete these records unless used or stored since ``cutoff`` (checked in SQL, so a
        concurrent :meth:`touch` wins)."""
        deleted: list[str] = []
        with self._write() as conn:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                fresh = or_(results.c.last_used >= cutoff, results.c.created >= cutoff)
                condition = results.c.key.in_(chunk) & ~fresh
                deleted.extend(
                    row[0] for row in conn.execute(select(results.c.key).where(condition))
                )
                conn.execute(delete(results).where(condition))
        return deleted

    def sources(self, digests: Iterable[str]) -> dict[str, dict[str, Any]]:
        """What earlier reads of these exact file contents found (see ``_schema.sources``)."""
        wanted = sorted(set(digests))
        found: dict[str, dict[str, Any]] = {}
        with self._read() as conn:
            for start in range(0, len(wanted), _CHUNK):
                query = select(sources).where(sources.c.digest.in_(wanted[start : start + _CHUNK]))
                found.update({row.digest: dict(row._mapping) for row in conn.execute(query)})
        return found

    def remember_sources(self, rows: Iterable[dict[str, Any]]) -> None:
        """Record what reading file contents found (one transaction); keys are validated."""
        now = time.time()
        rows = [
            {**row, "used": now}
            for row in rows
            if KEY_PATTERN.fullmatch(row["digest"]) and KEY_PATTERN.fullmatch(row["key"])
        ]
        if not rows:
            return
        with self._write(changes_results=False) as conn:
            conn.execute(sqlite_insert(sources).prefix_with("OR REPLACE"), rows)

    def page_keys(self) -> dict[str, str]:
        """The key each page had when last executed or rendered."""
        with self._read() as conn:
            return {row.page: row.key for row in conn.execute(select(pages))}

    def forget_pages(self, names: Iterable[str]) -> None:
        names = list(names)
        with self._write(changes_results=False) as conn:
            for start in range(0, len(names), _CHUNK):
                conn.execute(delete(pages).where(pages.c.page.in_(names[start : start + _CHUNK])))

    def add_raw(self, rows: Iterable[dict[str, Any]]) -> None:
        """Insert rows as they are (import); existing keys are kept."""
        with self._write() as conn:
            for row in rows:
                conn.execute(insert(results).prefix_with("OR IGNORE").values(**row))


def _schema_version(conn: Connection) -> int | None:
    """The schema version a database says it has (None: no meta table or no version)."""
    try:
        row = conn.exec_driver_sql("SELECT value FROM meta WHERE name = 'schema_version'").first()
    except OperationalError:  # no meta table: a new or pre-versioning database
        return None
    try:
        return int(row[0]) if row else None
    except (TypeError, ValueError):
        return None


def _upsert_page(conn: Connection, page: str, key: str) -> None:
    statement = sqlite_insert(pages).values(page=page, key=key, updated=time.time())
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[pages.c.page], set_={"key": key, "updated": time.time()}
        )
    )


def _to_row(record: Record, blob_id: str | None, size: int) -> dict[str, Any]:
    return {
        "key": record.key,
        "status": record.status,
        "blob": blob_id,
        "size": size,
        "runtime": record.runtime,
        "cell_times": json.dumps(list(record.cell_times)),
        "kernel": record.kernel,
        "timeout": record.timeout,
        "failure": json.dumps(record.failure.to_json()) if record.failure else None,
        "page": record.page,
        "created": record.created,
        "last_used": record.last_used,
    }


def _to_record(row: Any) -> Record | None:
    """A row as a Record; None for a row that fails validation (treated as absent)."""
    try:
        if not KEY_PATTERN.fullmatch(row["key"]) or row["status"] not in ("ok", "failed", "error"):
            return None
        if row["blob"] is not None and not KEY_PATTERN.fullmatch(row["blob"]):
            return None
        failure = Failure.from_json(json.loads(row["failure"])) if row["failure"] else None
        return Record(
            key=row["key"],
            status=row["status"],
            blob=row["blob"],
            runtime=float(row["runtime"]),
            cell_times=tuple(json.loads(row["cell_times"] or "[]")),
            kernel=row["kernel"],
            timeout=row["timeout"],
            failure=failure,
            page=row["page"],
            created=float(row["created"]),
            last_used=float(row["last_used"]),
        )
    except (ValueError, TypeError, KeyError):
        return None
