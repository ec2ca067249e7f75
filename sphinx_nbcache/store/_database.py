"""Records in a SQL database reached through SQLAlchemy: any URL (PostgreSQL is tested).

:class:`Database` is the generic back-end: one engine per process (a forked reader opens its
own), schema created or migrated on first use under a lock the database itself provides
(PostgreSQL: an advisory lock), upserts in the dialect's own syntax, and the change token
kept in the ``meta`` table and replaced inside every transaction that changes results.
:class:`~sphinx_nbcache.store._sqlite.SqliteDatabase` overrides what only SQLite needs.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, delete, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from ..errors import StoreError
from ._schema import SCHEMA_VERSION, ensure_schema, meta, read_version

__all__ = ["Database", "describe_url", "upsert"]

_ADVISORY_LOCK = 0x6E62_6361  # "nbca": serialises schema changes on PostgreSQL


def describe_url(url: str) -> str:
    """The URL without its password (safe to print or log)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


class Database:
    """A database of records behind an SQLAlchemy URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.notices: list[str] = []  # one line each, for the caller to show once
        self.read_only = False  # set by the Store: create nothing, repair nothing
        self._engine: Engine | None = None
        self._pid = -1
        self._lock = threading.Lock()

    def describe(self) -> str:
        return describe_url(self.url)

    def usable(self) -> bool:
        """Can this database be read without creating or repairing anything?"""
        return True

    # -- connecting ---------------------------------------------------------------------------

    def engine(self) -> Engine:
        """The engine of this process, opening (and migrating) the database on first use."""
        with self._lock:
            if self._engine is not None and self._pid == os.getpid():
                return self._engine
            if self._engine is not None:  # inherited through fork: never touch its pool
                self._engine.dispose(close=False)
            self._engine = self._open()
            self._pid = os.getpid()
            return self._engine

    def _create_engine(self) -> Engine:
        try:
            return create_engine(self.url, pool_pre_ping=True)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise StoreError(
                self.describe(),
                f"cannot use this database URL ({type(exc).__name__}: {exc}); check "
                "nbcache_database / NBCACHE_DATABASE and install the driver it names "
                "(e.g. pip install 'psycopg[binary]' for postgresql+psycopg://)",
            ) from None

    def _open(self) -> Engine:
        engine = self._create_engine()
        try:
            self.migrate(engine)
        except SQLAlchemyError as exc:
            engine.dispose()
            first = str(exc).splitlines()[0][:200]
            raise StoreError(
                self.describe(), f"cannot open the database ({type(exc).__name__}: {first})"
            ) from None
        return engine

    def migrate(self, engine: Engine) -> tuple[int, int, bool]:
        """Bring the schema up to date (a no-op read when it is current)."""
        with engine.connect() as conn:
            current = read_version(conn)
            conn.rollback()
            if current == SCHEMA_VERSION:
                return current, current, False
            with self.begin_write(conn):
                self.lock_schema(conn)
                found, now, rebuilt = ensure_schema(conn)
                if found <= SCHEMA_VERSION:
                    self.bump_in(conn)
        if found > SCHEMA_VERSION:
            raise StoreError(
                self.describe(),
                f"written by a newer sphinx-nbcache (schema {found}, this one knows "
                f"{SCHEMA_VERSION}): upgrade sphinx-nbcache or point the cache elsewhere",
            )
        if rebuilt:
            self.notices.append(
                f"the cache database {self.describe()} had an older layout (schema {found}) "
                f"that cannot be migrated; started it afresh at schema {now}: its notebooks "
                "will be executed again"
            )
        elif 0 < found < now:
            self.notices.append(f"migrated the cache database from schema {found} to {now}")
        self.after_change()
        return found, now, rebuilt

    def lock_schema(self, conn: Connection) -> None:
        """Keep concurrent openers from changing the schema at the same time."""
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})

    @contextmanager
    def begin_write(self, conn: Connection) -> Iterator[None]:
        """A write transaction on ``conn`` (SQLite takes its write lock at once)."""
        with conn.begin():
            yield

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine().connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self, changes_results: bool = True) -> Iterator[Connection]:
        """One write transaction; if it may change results, the change token is replaced."""
        with self.engine().connect() as conn, self.begin_write(conn):
            yield conn
            if changes_results:
                self.bump_in(conn)
        if changes_results:
            self.after_change()

    # -- the change token ---------------------------------------------------------------------

    def token(self) -> str | None:
        """Equal tokens mean no result changed in between (None: unknown)."""
        try:
            with self.read() as conn:
                row = conn.execute(select(meta.c.value).where(meta.c.name == "generation"))
                value = row.scalar()
        except (SQLAlchemyError, StoreError):
            return None
        return None if value is None else f"db:{value}"

    def bump_in(self, conn: Connection) -> None:
        """Replace the token inside the current write transaction."""
        conn.execute(delete(meta).where(meta.c.name == "generation"))
        conn.execute(insert(meta).values(name="generation", value=secrets.token_hex(16)))

    def after_change(self) -> None:
        """Called after a transaction that changed results has committed."""

    def close(self) -> None:
        with self._lock:
            if self._engine is not None and self._pid == os.getpid():
                self._engine.dispose()
            self._engine = None


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    update: bool = True,
) -> None:
    """Insert ``rows``; a row whose ``keys`` exist already replaces it (``update``) or is
    left out. One statement per batch where the dialect has ``ON CONFLICT``."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        statement: Any
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            statement = sqlite_insert(table)
        else:
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            statement = postgresql_insert(table)
        if update:
            columns = [c for c in rows[0] if c not in keys]
            conflict = statement.on_conflict_do_update(
                index_elements=list(keys), set_={c: statement.excluded[c] for c in columns}
            )
        else:
            conflict = statement.on_conflict_do_nothing(index_elements=list(keys))
        conn.execute(conflict, list(rows))
        return
    for row in rows:  # any other dialect: one row at a time, inside the caller's transaction
        match = [table.c[k] == row[k] for k in keys]
        exists = conn.execute(select(table.c[keys[0]]).where(*match)).first() is not None
        if exists and not update:
            continue
        if exists:
            conn.execute(delete(table).where(*match))
        try:
            conn.execute(insert(table).values(**row))
        except DBAPIError:
            if update:
                raise
