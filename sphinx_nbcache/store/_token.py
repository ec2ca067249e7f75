"""The cache folder's change token: tells a build, without opening the database, whether any
result was added, replaced or deleted since it last looked.

``<cache>/generation`` holds a random value, replaced (atomically) after every committed
transaction that changes results. A build that finds the value it recorded last time, and no
changed page, knows every verdict it made then still holds: a no-op build never opens the
database. The database file's identity is part of the token, so a deleted, replaced or
moved-aside database never matches an old token.

Writers replace the value *after* they commit and readers read it *before* they look, so a
change is never hidden: at worst a build looks once more than it had to.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

from ._layout import DB_NAME, TOKEN_NAME

__all__ = ["bump_token", "read_token"]


def read_token(root: Path) -> str | None:
    """The folder's current token; None when there is no database or no token yet."""
    try:
        db = os.stat(root / DB_NAME)
        value = (root / TOKEN_NAME).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not value:
        return None
    return f"{value}:{db.st_dev}:{db.st_ino}"


def bump_token(root: Path) -> None:
    """Replace the folder's token with a new random value (after a committed change)."""
    import secrets  # here: a build that only reads the token (nothing changed) needs none

    from .._atomic import write_atomically

    try:
        write_atomically(root / TOKEN_NAME, secrets.token_hex(16).encode("ascii"))
    except OSError:  # no new token: then no token at all, so nobody trusts the old one
        with suppress(OSError):
            (root / TOKEN_NAME).unlink(missing_ok=True)
