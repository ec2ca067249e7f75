"""The embedded default: an SQLite file in the cache folder (what only SQLite needs).

WAL mode with a busy timeout, so any number of builds and forked readers can read while one
writes; writes take the write lock at once (``BEGIN IMMEDIATE``). A damaged file is moved
aside (under a file lock, so concurrent builds agree) and a new one is started, with a notice.
The change token is a file beside the database (see ``_token``): a build that finds it
unchanged need not open the database at all.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DatabaseError, OperationalError

from ..errors import StoreError
from ._database import Database
from ._layout import DB_NAME
from ._token import bump_token, read_token

__all__ = ["GITIGNORE", "SqliteDatabase", "ignore_everything", "make_engine"]


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


#: what a new cache folder's ``.gitignore`` says (as pytest does for its cache folder): the
#: cache is never committed by accident; delete the file to commit it on purpose
GITIGNORE = "# created by sphinx-nbcache; delete this file to commit the cache\n*\n"


def ignore_everything(folder: Path) -> None:
    """Give a cache folder just created its ``.gitignore`` (a failure only loses it)."""
    with contextlib.suppress(OSError), open(folder / ".gitignore", "x", encoding="utf-8") as f:
        f.write(GITIGNORE)


class SqliteDatabase(Database):
    """``<folder>/nbcache.db``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        super().__init__(f"sqlite:///{self.path}")
        self._damaged: bool | None = None  # read-only use: known to be damaged?
        self._damage = "it fails its integrity check"

    @property
    def path(self) -> Path:
        return self.folder / DB_NAME

    def describe(self) -> str:
        return str(self.path)

    def usable(self) -> bool:
        if not self.path.is_file():
            return False
        if self._damaged is None:
            try:
                engine = self._create_engine()
                try:
                    with engine.connect() as conn:
                        self._damaged = conn.exec_driver_sql("PRAGMA quick_check").scalar() != "ok"
                finally:
                    engine.dispose()
            except DatabaseError as exc:
                self._damaged = True
                self._damage = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
            if self._damaged:
                self.notices.append(
                    f"the cache database {self.path} is damaged ({self._damage}); it reads as "
                    "empty here, and the next build or `nbcache execute` will move it aside "
                    "and execute its notebooks again"
                )
        return not self._damaged

    def _create_engine(self) -> Engine:
        return make_engine(str(self.path))

    def _open(self) -> Engine:
        try:
            created = not self.folder.is_dir()
            self.folder.mkdir(parents=True, exist_ok=True)  # mode from the user's umask
        except OSError as exc:
            raise StoreError(str(self.folder), f"cannot create the cache folder: {exc}") from None
        if created:
            ignore_everything(self.folder)
        engine = self._create_engine()
        try:
            self.migrate(engine)
        except (DatabaseError, ValueError) as exc:
            if isinstance(exc, OperationalError) and "locked" in str(exc):
                raise StoreError(str(self.path), f"database stayed locked: {exc}") from None
            engine.dispose()
            engine = self._repair(exc)
        if read_token(self.folder) is None:  # a cache from before change tokens
            bump_token(self.folder)
        return engine

    def _repair(self, exc: Exception) -> Engine:
        from filelock import FileLock  # only on this rare path: keep start-up light

        with FileLock(str(self.folder / ".nbcache.lock")):
            engine = self._create_engine()
            try:  # another build may have replaced the damaged file meanwhile
                self.migrate(engine)
                return engine
            except (DatabaseError, ValueError):
                engine.dispose()
                aside = self._move_aside()
                engine = self._create_engine()
                self.migrate(engine)
        self.notices.append(
            f"the cache database {self.path} was unreadable ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:120]}); moved it to {aside.name} and started a "
            "new one: the notebooks it held will be executed again (delete the "
            f"{aside.name} file once you no longer need it)"
        )
        return engine

    def migrate(self, engine: Engine) -> tuple[int, int, bool]:
        with engine.connect() as conn:
            check = conn.exec_driver_sql("PRAGMA quick_check").scalar()
            conn.rollback()
        if check != "ok":  # a truncated or overwritten file can open fine, then fail later
            raise DatabaseError("PRAGMA quick_check", None, ValueError(str(check)))
        return super().migrate(engine)

    def _move_aside(self) -> Path:
        aside = self.path.with_name(f"{DB_NAME}.damaged-{int(time.time())}-{os.getpid()}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                os.replace(source, f"{aside}{suffix}")
        return aside

    @contextmanager
    def begin_write(self, conn: Connection) -> Iterator[None]:
        conn.info["write"] = True
        try:
            with conn.begin():
                yield
        finally:
            conn.info.pop("write", None)

    def token(self) -> str | None:
        return read_token(self.folder)  # the file: no database access

    def bump_in(self, conn: Connection) -> None:
        pass  # the token is a file, replaced once the transaction has committed

    def after_change(self) -> None:
        bump_token(self.folder)
