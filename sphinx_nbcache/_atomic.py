"""Files written whole or not at all: the one way this package replaces a file.

The bytes go to a temporary file beside the target (``.<name>.<random>.tmp``), which is then
renamed over it: a reader sees the old file or the new one, never half of either, and two
writers leave one whole file (the last). A crash leaves at most a stray ``*.tmp``. Unlike
``mkstemp``'s private 0600, the file gets the permissions the umask gives a new file: a cache
folder is often shared by a team or a CI runner's users.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["umask", "write_atomically"]


def write_atomically(
    target: Path,
    data: bytes | Callable[[IO[bytes]], object],
    *,
    sync: bool = False,
    mtime: float | None = None,
) -> None:
    """Replace ``target`` with ``data`` (bytes, or a function writing to the open file).
    ``sync``: on disk before the rename (a crash cannot leave an empty file named as whole);
    ``mtime``: the modification time to give it. The folder must exist. Raises ``OSError``
    (nothing replaced, no temporary file left) or whatever ``data`` raises."""
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, bytes):
                handle.write(data)
            else:
                data(handle)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        if mtime is not None:
            os.utime(temporary, (mtime, mtime))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def umask() -> int:
    """The process's umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
