"""The database schema, its version, and opening a database safely.

SQLite runs in WAL mode with a busy timeout, so any number of builds and forked readers can
read while one writes. Tables are created with ``IF NOT EXISTS`` inside one immediate
transaction (no check-then-create race). ``meta.schema_version`` records the layout; an older
layout is migrated step by step, a newer one is refused with a message saying what to do.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.schema import CreateIndex, CreateTable

__all__ = [
    "SCHEMA_VERSION",
    "ensure_schema",
    "make_engine",
    "meta",
    "pages",
    "results",
    "sources",
]

SCHEMA_VERSION = 2

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("name", String, primary_key=True),
    Column("value", String, nullable=False),
)

results = Table(
    "results",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("status", String(8), nullable=False),
    Column("blob", String(64)),
    Column("size", Integer, nullable=False, default=0),
    Column("runtime", Float, nullable=False, default=0.0),
    Column("cell_times", Text, nullable=False, default="[]"),
    Column("kernel", String, nullable=False, default=""),
    Column("timeout", Float),
    Column("failure", Text),
    Column("page", String, nullable=False, default=""),
    Column("created", Float, nullable=False),
    Column("last_used", Float, nullable=False, index=True),
)

pages = Table(
    "pages",
    metadata,
    Column("page", String, primary_key=True),
    Column("key", String(64), nullable=False, index=True),
    Column("updated", Float, nullable=False),
)

#: What reading a file's exact bytes told us, so a fresh checkout (new mtimes, no Sphinx
#: environment) need not parse its notebooks again: digest of (options, format, bytes) ->
#: the notebook's key and execution settings. Added in schema 2.
sources = Table(
    "sources",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("key", String(64), nullable=False),
    Column("mode", String(8), nullable=False),
    Column("has_outputs", Integer, nullable=False),
    Column("timeout", Float),
    Column("used", Float, nullable=False, index=True),
)

#: Each entry upgrades the schema from version N to N + 1 (SQL statements, run in order inside
#: the opening transaction; new tables are then created from the definitions above). A version
#: with no path here is rebuilt empty, with a notice.
MIGRATIONS: dict[int, list[str]] = {
    1: [],  # 1 -> 2: the sources table, created below
}


def make_engine(db_path: str, busy_timeout_s: float = 60.0) -> Engine:
    """An engine on the SQLite file at ``db_path``, in WAL mode with a busy timeout."""
    engine = create_engine(
        f"sqlite:///{db_path}",
        connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # let us issue BEGIN ourselves (pysqlite's implicit transactions fight WAL + IMMEDIATE)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        _enter_wal(cursor, busy_timeout_s)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.info.get("write") else "BEGIN")

    return engine


def _enter_wal(cursor: Any, within_s: float) -> None:
    """Switch the database to WAL mode (persistent: a no-op once done).

    The switch needs the database to itself, and SQLite answers "database is locked" at once
    instead of calling the busy handler when another connection holds it, which happens when
    builds race to create a new cache. So retry, backing off, until ``within_s`` has passed.
    """
    deadline = time.monotonic() + within_s
    pause = 0.001
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)  # SQLite offers no event to wait on for this lock
        pause = min(pause * 2, 0.1)


def ensure_schema(connection: Connection) -> tuple[int, int, bool]:
    """Create, migrate or rebuild the schema; returns (version found, version now, rebuilt).

    Runs inside the caller's (immediate) transaction. A database that has tables but no
    ``meta`` table (a layout from before versioning) or whose version has no migration path in
    :data:`MIGRATIONS` is emptied and recreated: a cache may always be dropped, never misread.
    """
    existing = {
        row[0]
        for row in connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
    }
    found = 0
    if "meta" in existing:
        row = connection.execute(
            text("SELECT value FROM meta WHERE name = 'schema_version'")
        ).first()
        found = _version(row[0]) if row else -1
    elif existing - {"sqlite_sequence"}:
        found = -1  # tables of some older layout, no version: unknown
    if found > SCHEMA_VERSION:
        return found, found, False
    rebuilt = found < 0 or any(v not in MIGRATIONS for v in range(max(found, 1), SCHEMA_VERSION))
    if rebuilt:
        for name in sorted(existing - {"sqlite_sequence"}):
            connection.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}"')
    elif found > 0:
        for version in range(found, SCHEMA_VERSION):
            for statement in MIGRATIONS[version]:
                connection.exec_driver_sql(statement)
    for table in metadata.sorted_tables:
        connection.execute(CreateTable(table, if_not_exists=True))
        for index in table.indexes:
            connection.execute(CreateIndex(index, if_not_exists=True))
    connection.execute(
        text("INSERT OR REPLACE INTO meta (name, value) VALUES ('schema_version', :v)"),
        {"v": str(SCHEMA_VERSION)},
    )
    return max(found, 0), SCHEMA_VERSION, rebuilt


def _version(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
