"""The database schema, its version, and its migrations (any SQLAlchemy dialect).

Tables are created with ``IF NOT EXISTS`` inside one write transaction (no check-then-create
race). ``meta.schema_version`` records the layout; an older layout is migrated step by step, a
newer one is refused with a message saying what to do; a layout with no migration path is
rebuilt empty (a cache may always be dropped, never misread).

Schema 3: a result is identified by ``id`` (its cache key plus the dependencies
it recorded, :func:`~sphinx_nbcache.records.result_id`), so one key may have several results;
a page may have several variants (one per set of parameters); ``leases`` lets builds sharing
a store run each page once. Schema 4 (this one): each result keeps the kernel's CPU time
and peak memory (``cpu_time``, ``peak_memory``; NULL in rows from
before), and may carry its signature (``_signing``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    text,
)
from sqlalchemy.schema import CreateIndex, CreateTable

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ensure_schema",
    "leases",
    "meta",
    "pages",
    "results",
    "sources",
]

SCHEMA_VERSION = 4

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

results = Table(
    "results",
    metadata,
    Column("id", String(64), primary_key=True),  # key + recorded dependencies
    Column("key", String(64), nullable=False, index=True),  # code + options + parameters
    Column("status", String(8), nullable=False),
    Column("blob", String(64)),
    Column("size", Integer, nullable=False, default=0),
    Column("runtime", Float, nullable=False, default=0.0),
    Column("cell_times", Text, nullable=False, default="[]"),
    Column("kernel", String(256), nullable=False, default=""),
    Column("timeout", Float),
    Column("failure", Text),
    Column("page", Text, nullable=False, default=""),
    Column("created", Float, nullable=False),
    Column("last_used", Float, nullable=False, index=True),
    Column("allow_errors", Integer),  # what it ran with; NULL: not recorded
    Column("raised", Integer),  # a cell raised (allowed); NULL: not recorded
    Column("parameters", Text),  # JSON object; NULL: the page as written
    Column("dependencies", Text),  # JSON (records.Dependencies); NULL: not recorded
    Column("artifacts", Text),  # JSON list (records.Artifact); NULL: none
    Column("signature", String(80)),  # ``v1:`` + HMAC-SHA256 (store/_signing.py); NULL: none
    Column("cpu_time", Float),  # seconds of the kernel's CPU (schema 4); NULL: not known
    Column("peak_memory", BigInteger),  # bytes, the kernel's peak (schema 4); NULL: not known
)

pages = Table(
    "pages",
    metadata,
    Column("page", String(512), primary_key=True),
    Column("variant", String(64), primary_key=True, default=""),  # "" or a parameters hash
    Column("id", String(64), nullable=False, index=True),  # the result it last showed
    Column("key", String(64), nullable=False),
    Column("updated", Float, nullable=False),
)

#: What reading a file's exact bytes told us, so a fresh checkout (new mtimes, no Sphinx
#: environment) need not parse its notebooks again: digest of (options, format, bytes) ->
#: the notebook's key and execution settings.
sources = Table(
    "sources",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("key", String(64), nullable=False),
    Column("sibling", String(64)),  # the key with the other allow_errors (schema 3)
    Column("mode", String(8), nullable=False),
    Column("has_outputs", Integer, nullable=False),
    Column("timeout", Float),
    Column("used", Float, nullable=False, index=True),
)

#: A build executing a key holds its lease, renewed by a heartbeat; another build sharing the
#: store waits for the result instead of executing it again, or takes over an expired lease.
leases = Table(
    "leases",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires", Float, nullable=False),
)

Step = list[str] | Callable[[Connection], None]


def _results_2_to_3(conn: Connection) -> None:
    """Schema 2 -> 3: results gain an id (= key: nothing was recorded) and the new columns;
    pages gain a variant and the id of the result they show. Every row is kept."""
    for name in ("results", "pages"):
        conn.exec_driver_sql(f"ALTER TABLE {name} RENAME TO old_{name}")
    for index in ("ix_results_last_used", "ix_pages_key"):
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index}")
    for table in (results, pages):
        conn.execute(CreateTable(table))
    conn.exec_driver_sql(
        'INSERT INTO results (id, "key", status, blob, size, runtime, cell_times, kernel, '
        "timeout, failure, page, created, last_used) "
        'SELECT "key", "key", status, blob, size, runtime, cell_times, kernel, timeout, '
        "failure, page, created, last_used FROM old_results"
    )
    conn.exec_driver_sql(
        'INSERT INTO pages (page, variant, id, "key", updated) '
        'SELECT page, \'\', "key", "key", updated FROM old_pages'
    )
    for name in ("results", "pages"):
        conn.exec_driver_sql(f"DROP TABLE old_{name}")
    if inspect(conn).has_table("sources"):  # from schema 1 it is created afterwards, whole
        conn.exec_driver_sql("ALTER TABLE sources ADD COLUMN sibling VARCHAR(64)")


def _add_missing(conn: Connection, table: Table) -> None:
    """Add the columns of ``table`` its database table lacks (nullable ones only): an earlier
    step may have created it whole, from today's definition."""
    have = {column["name"] for column in inspect(conn).get_columns(table.name)}
    for column in table.columns:
        if column.name not in have:
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')


#: Each entry upgrades the schema from version N to N + 1: SQL statements run in order, or a
#: function given the connection, inside the opening transaction; tables new in the target
#: version are then created from the definitions above. A version with no path here is
#: rebuilt empty, with a notice.
MIGRATIONS: dict[int, Step] = {
    1: [],  # 1 -> 2: the sources table, created below
    2: _results_2_to_3,  # 2 -> 3: result ids, parameters, dependencies, variants, leases
    3: lambda conn: _add_missing(conn, results),  # 3 -> 4: figures, signatures (rows kept)
}


def read_version(connection: Connection) -> int | None:
    """The schema version a database says it has (None: no meta table or no version)."""
    if not inspect(connection).has_table("meta"):
        return None
    row = connection.execute(text("SELECT value FROM meta WHERE name = 'schema_version'")).first()
    return _version(row[0]) if row else None


def ensure_schema(connection: Connection) -> tuple[int, int, bool]:
    """Create, migrate or rebuild the schema; returns (version found, version now, rebuilt).

    Runs inside the caller's write transaction. A database that has tables but no ``meta``
    table (a layout from before versioning) or whose version has no migration path in
    :data:`MIGRATIONS` is emptied and recreated.
    """
    existing = set(inspect(connection).get_table_names())
    found = 0
    if "meta" in existing:
        version = read_version(connection)
        found = -1 if version is None else version
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
            step = MIGRATIONS[version]
            if callable(step):
                step(connection)
            else:
                for statement in step:
                    connection.exec_driver_sql(statement)
    for table in metadata.sorted_tables:
        connection.execute(CreateTable(table, if_not_exists=True))
        for index in table.indexes:
            connection.execute(CreateIndex(index, if_not_exists=True))
    connection.execute(text("DELETE FROM meta WHERE name = 'schema_version'"))
    connection.execute(
        text("INSERT INTO meta (name, value) VALUES ('schema_version', :v)"),
        {"v": str(SCHEMA_VERSION)},
    )
    return max(found, 0), SCHEMA_VERSION, rebuilt


def _version(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
