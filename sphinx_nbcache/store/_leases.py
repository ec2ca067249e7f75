"""Leases: builds sharing a store execute each key once.

A build about to execute a key takes its lease (a row: key, holder, expiry) in one statement
that succeeds only where no lease exists, the lease expired, or it is already the build's own
(``INSERT ... ON CONFLICT DO UPDATE ... WHERE``, atomic on SQLite and PostgreSQL). It renews
its leases while their notebooks run (a heartbeat) and releases each once the result is
stored. Another build that finds a key leased waits for the result instead of executing it;
if the holder dies, its lease expires and the waiting build takes the key over (at once when
the waiting build knows the holder is dead: ``replacing``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, or_, select, update

from ._schema import leases

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["acquire", "held", "release", "renew"]


def acquire(
    store: Store, keys: list[str], holder: str, seconds: float, replacing: list[str]
) -> set[str]:
    if not keys:
        return set()
    now = time.time()
    rows = [{"key": k, "holder": holder, "expires": now + seconds} for k in keys]
    with store.db.write(changes_results=False) as conn:
        if replacing:  # the leases of holders known dead go first
            gone = leases.c.holder.in_(replacing)
            conn.execute(delete(leases).where(leases.c.key.in_(keys), gone))
        dialect = conn.dialect.name
        if dialect in ("sqlite", "postgresql"):
            statement: Any
            if dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            else:
                from sqlalchemy.dialects.postgresql import insert as dialect_insert  # type: ignore[assignment]
            statement = dialect_insert(leases)
            statement = statement.on_conflict_do_update(
                index_elements=["key"],
                set_={"holder": statement.excluded.holder, "expires": statement.excluded.expires},
                where=or_(leases.c.expires < now, leases.c.holder == holder),
            )
            conn.execute(statement, rows)
        else:  # elsewhere: clear expired leases, then insert where there is none
            conn.execute(delete(leases).where(leases.c.key.in_(keys), leases.c.expires < now))
            taken = {r[0] for r in conn.execute(select(leases.c.key).where(leases.c.key.in_(keys)))}
            for row in rows:
                if row["key"] not in taken:
                    conn.execute(insert(leases).values(**row))
        query = select(leases.c.key).where(leases.c.key.in_(keys), leases.c.holder == holder)
        return {row[0] for row in conn.execute(query)}


def renew(store: Store, keys: list[str], holder: str, seconds: float) -> None:
    if not keys:
        return
    with store.db.write(changes_results=False) as conn:
        conn.execute(
            update(leases)
            .where(leases.c.key.in_(keys), leases.c.holder == holder)
            .values(expires=time.time() + seconds)
        )


def release(store: Store, keys: list[str], holder: str) -> None:
    if not keys:
        return
    with store.db.write(changes_results=False) as conn:
        conn.execute(delete(leases).where(leases.c.key.in_(keys), leases.c.holder == holder))


def held(store: Store, keys: list[str]) -> dict[str, tuple[str, float]]:
    if not keys:
        return {}
    with store.db.read() as conn:
        query = select(leases.c.key, leases.c.holder, leases.c.expires)
        rows = conn.execute(query.where(leases.c.key.in_(keys)))
        return {key: (holder, float(expires)) for key, holder, expires in rows}
