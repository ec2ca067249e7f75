"""A damaged cache is detected, reported once with what happens next, and repaired by
executing only what was affected; the build always succeeds."""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from _reliability import keep_pages, warning_lines
from sphinx.errors import ConfigError

from sphinx_nbcache.records import Record
from sphinx_nbcache.store import Store, _schema
from sphinx_nbcache.store._schema import SCHEMA_VERSION

ALL = Counter({"p1": 1, "p2": 1, "p3": 1, "p4": 1})


def _blob_paths(cache: Path) -> dict[str, Path]:
    store = Store(cache)
    try:
        return {r.page: store.blobs.path(r.blob) for r in store.records() if r.blob}
    finally:
        store.close()


def test_damaged_blobs_re_execute_only_their_pages(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("reliability")
    assert project.build().executed == ALL
    blobs = _blob_paths(project.src / ".nbcache")
    blobs["p1"].unlink()  # missing
    data = blobs["p2"].read_bytes()
    blobs["p2"].write_bytes(data[: len(data) // 2])  # truncated
    blobs["p3"].write_bytes(blobs["p4"].read_bytes())  # valid JSON, not what its id says
    project.clear_build()

    repaired = project.build()
    assert repaired.executed == Counter({"p1": 1, "p2": 1, "p3": 1})
    warnings = warning_lines(repaired.warnings)
    assert len(warnings) == 3, repaired.warnings
    for page, reason in (("p1", "missing"), ("p2", "does not match"), ("p3", "does not match")):
        line = next(w for w in warnings if f"{page}.md" in w)
        assert reason in line
        assert "executing the notebook again" in line
    for page in ("p1", "p2", "p3", "p4"):
        assert f"output of {page}" in project.html(page)

    # the damaged blobs were replaced (same outputs, same id): nothing is left to repair
    project.clear_build()
    again = project.build()
    assert again.total == 0
    assert not warning_lines(again.warnings), again.warnings


def _truncate_db(cache: Path) -> None:
    db = cache / "nbcache.db"
    with open(db, "r+b") as handle:
        handle.truncate(db.stat().st_size // 2)


def _garbage_db(cache: Path) -> None:
    (cache / "nbcache.db").write_bytes(os.urandom(3000))


def _legacy_db(cache: Path) -> None:  # a layout from before versioning, like jupyter-cache's
    for name in cache.glob("nbcache.db*"):
        name.unlink()
    with sqlite3.connect(cache / "nbcache.db") as conn:
        conn.execute("CREATE TABLE results (key TEXT PRIMARY KEY, outputs BLOB)")
        conn.execute("INSERT INTO results VALUES ('k', 'x')")
    conn.close()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(_garbage_db, "was unreadable", id="garbage"),
        pytest.param(_truncate_db, "was unreadable", id="truncated"),
        pytest.param(_legacy_db, "older layout", id="schema-0"),
    ],
)
def test_damaged_database_is_set_aside_and_rebuilt(project_factory, damage, message) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("reliability")
    keep_pages(project.src, "p1", "p2")
    cache = project.src / ".nbcache"
    assert project.build(nbcache_max_entries=0).total == 2
    for i in range(200):  # enough rows that truncation cuts real pages
        Store(cache).put(Record(f"{i:064x}", "ok", None, page="x" * 300), None)
    Store(cache).close()
    damage(cache)

    rebuilt = project.build()
    assert rebuilt.executed == Counter({"p1": 1, "p2": 1})
    warnings = warning_lines(rebuilt.warnings)
    assert len(warnings) == 1, rebuilt.warnings
    assert message in warnings[0]
    assert "Traceback" not in rebuilt.warnings + rebuilt.status
    assert "output of p1" in project.html("p1")
    again = project.build()
    assert again.total == 0
    assert not warning_lines(again.warnings), again.warnings


def test_newer_schema_is_one_clear_error(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("reliability")
    cache = project.src / ".nbcache"
    cache.mkdir()
    with sqlite3.connect(cache / "nbcache.db") as conn:
        conn.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    conn.close()
    with pytest.raises(ConfigError, match=r"newer sphinx-nbcache .*upgrade sphinx-nbcache"):
        project.build()


def _schema2_cache(folder: Path, version: int = 2) -> None:
    """A cache folder as sphinx-nbcache 0.1.0 left it (schema 2; ``version`` 1: without the
    table schema 2 added), holding one result, its page and one remembered source."""
    folder.mkdir(parents=True, exist_ok=True)
    sql = (Path(__file__).parent / "data" / "schema2.sql").read_text()
    with sqlite3.connect(folder / "nbcache.db") as conn:
        conn.executescript(sql)
        conn.execute(
            "INSERT INTO results VALUES (?, 'ok', NULL, 0, 1.5, '[1.5]', 'python3', 30.0, "
            "NULL, 'p1', 100.0, 200.0)",
            ("a" * 64,),
        )
        conn.execute("INSERT INTO pages VALUES ('p1', ?, 150.0)", ("a" * 64,))
        conn.execute(
            "INSERT INTO sources VALUES (?, ?, 'cache', 0, 30.0, 120.0)", ("d" * 64, "a" * 64)
        )
        if version == 1:
            conn.execute("DROP TABLE sources")
            conn.execute("UPDATE meta SET value = '1' WHERE name = 'schema_version'")
    conn.close()


@pytest.mark.parametrize("version", [1, 2])
def test_older_schema_is_migrated_losing_nothing(tmp_path: Path, version: int) -> None:
    _schema2_cache(tmp_path, version)
    upgraded = Store(tmp_path)
    [record] = upgraded.records()
    assert (record.key, record.id, record.page, record.runtime) == ("a" * 64, "a" * 64, "p1", 1.5)
    assert (record.created, record.last_used, record.cell_times) == (100.0, 200.0, (1.5,))
    assert upgraded.get("a" * 64) == record
    assert upgraded.page_keys() == {"p1": "a" * 64}
    assert upgraded.page_results() == {"p1": "a" * 64}
    if version == 2:
        assert upgraded.sources(["d" * 64])["d" * 64]["key"] == "a" * 64
    assert upgraded.notices == [
        f"migrated the cache database from schema {version} to {SCHEMA_VERSION}"
    ]
    upgraded.close()
    with sqlite3.connect(tmp_path / "nbcache.db") as conn:
        assert conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert {"sources", "leases", "results", "pages"} <= tables
        assert not {t for t in tables if t.startswith("old_")}
    conn.close()
    again = Store(tmp_path)  # a second open finds it current: no notice, same rows
    assert [r.id for r in again.records()] == ["a" * 64]
    assert again.notices == []
    again.close()


def test_a_migration_step_runs_its_statements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path)
    store.put(Record("a" * 64, "ok", None, page="p1"), None)
    store.close()
    # pretend the next release adds a column
    future = SCHEMA_VERSION + 1
    monkeypatch.setattr(_schema, "SCHEMA_VERSION", future)
    monkeypatch.setattr("sphinx_nbcache.store._database.SCHEMA_VERSION", future)
    steps = {**_schema.MIGRATIONS, SCHEMA_VERSION: ["ALTER TABLE results ADD COLUMN note TEXT"]}
    monkeypatch.setattr(_schema, "MIGRATIONS", steps)
    upgraded = Store(tmp_path)
    assert [r.key for r in upgraded.records()] == ["a" * 64]
    assert upgraded.notices == [
        f"migrated the cache database from schema {SCHEMA_VERSION} to {future}"
    ]
    upgraded.close()
    with sqlite3.connect(tmp_path / "nbcache.db") as conn:
        version = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'")
        assert version.fetchone() == (str(future),)
        assert "note" in [row[1] for row in conn.execute("PRAGMA table_info(results)")]
    conn.close()
