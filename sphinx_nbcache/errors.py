"""The exceptions of sphinx-nbcache.

Every error we raise on purpose is one of these; each message says what went wrong *and*
what to do about it. All of them pickle (they cross process boundaries under
``sphinx-build -j`` and in the CLI's worker pool) because their state lives in ``args``.

::

    NbcacheError                      base class, never raised itself
    ├── ConfigError(ValueError)       an option has a value we cannot use
    ├── NotebookReadError(ValueError) a page cannot be read as a notebook
    └── StoreError                    the cache folder cannot be used
        └── CorruptCacheError         a record or blob failed validation (key mismatch,
                                      truncated file, unreadable database)
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CorruptCacheError",
    "NbcacheError",
    "NotebookReadError",
    "StoreError",
]


class NbcacheError(Exception):
    """Base class of every sphinx-nbcache error."""


class ConfigError(NbcacheError, ValueError):
    """An option has a value sphinx-nbcache cannot use."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(option, message)
        self.option = option
        self.message = message

    def __str__(self) -> str:
        return f"invalid value for {self.option!r}: {self.message}"


class NotebookReadError(NbcacheError, ValueError):
    """A file could not be read as a notebook."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot read {self.path} as a notebook: {self.reason}"


class StoreError(NbcacheError):
    """The cache folder cannot be used."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"cache {self.path}: {self.reason}"


class CorruptCacheError(StoreError):
    """A cached record or blob is damaged; the affected notebooks will be re-executed."""
