"""The exceptions of sphinx-nbcache.

Every error we raise on purpose is one of these; each message says what went wrong *and*
what to do about it. All of them pickle (they cross process boundaries under
``sphinx-build -j`` and in the CLI's worker pool) because their state lives in ``args``.
Each knows how the REST endpoint answers it: :attr:`~NbcacheError.http_status` and
:meth:`~NbcacheError.to_json` (its class and message, plus its own fields).

::

    NbcacheError                      base class, never raised itself
    ├── ConfigError(ValueError)       an option has a value we cannot use
    │   └── ConfFileError             a docs folder's conf.py cannot be run (CLI, API)
    ├── ExecutorError                 an executor cannot run notebooks (its scheduler or
    │                                 server is unreachable, refuses the token, ...)
    ├── NotebookReadError(ValueError) a page cannot be read as a notebook
    ├── NotFoundError(LookupError)    no record, page or file matches what was asked (CLI, API)
    ├── NotebookExecutionError        a notebook failed and the caller asked for an error
    │                                 (nb_execution_raise_on_error), or no result could be had
    │   ├── NotebookCallError         a notebook called as a function raised (ename, evalue,
    │   │                             traceback)
    │   └── CallTimeoutError          ... or a cell of it ran past its timeout
    ├── ExpressionError               an inline expression ({eval}) has no value to show: it
    │                                 raised, or was never evaluated
    ├── SignatureError(ValueError)    a notebook cannot be called as a function like that:
    │   │                             a bad ``return`` cell, a non-Python kernel
    │   └── ParameterError            a parameter it does not declare, or a value that is
    │                                 not a literal
    └── StoreError                    the cache cannot be used
        ├── CorruptCacheError         a record or blob failed validation (key mismatch,
        │                             truncated file, unreadable database)
        └── ArchiveError              an archive or a jupyter-cache folder cannot be imported
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ArchiveError",
    "CallTimeoutError",
    "ConfFileError",
    "ConfigError",
    "CorruptCacheError",
    "ExecutorError",
    "ExpressionError",
    "NbcacheError",
    "NotFoundError",
    "NotebookCallError",
    "NotebookExecutionError",
    "NotebookReadError",
    "ParameterError",
    "SignatureError",
    "StoreError",
]


class NbcacheError(Exception):
    """Base class of every sphinx-nbcache error."""

    #: how an HTTP endpoint answers it
    http_status = 500

    def to_json(self) -> dict[str, Any]:
        """The JSON body an HTTP endpoint answers it with."""
        return {"error": type(self).__name__, "message": str(self)}


class ConfigError(NbcacheError, ValueError):
    """An option has a value sphinx-nbcache cannot use."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(option, message)
        self.option = option
        self.message = message

    def __str__(self) -> str:
        return f"invalid value for {self.option!r}: {self.message}"


class ConfFileError(ConfigError):
    """A docs folder's ``conf.py`` raised an error while it was run to read the options."""

    def __str__(self) -> str:
        return f"cannot run {self.option}: {self.message}"


class ExecutorError(NbcacheError):
    """An executor cannot run notebooks at all: the Dask scheduler or Jupyter server it was
    given cannot be reached, refuses the token, or lacks what it needs. Raised once, when the
    executor is made, instead of one failure per page."""

    http_status = 503

    def __init__(self, executor: str, message: str) -> None:
        super().__init__(executor, message)
        self.executor = executor
        self.message = message

    def __str__(self) -> str:
        return f"executor {self.executor!r}: {self.message}"


class NotFoundError(NbcacheError, LookupError):
    """Nothing matches what was asked for (a record id, a page, a file)."""

    http_status = 404

    def __init__(self, what: str, hint: str) -> None:
        super().__init__(what, hint)
        self.what = what
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.what}: {self.hint}"


class NotebookReadError(NbcacheError, ValueError):
    """A file could not be read as a notebook."""

    http_status = 404

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot read {self.path} as a notebook: {self.reason}"


class NotebookExecutionError(NbcacheError):
    """A notebook failed where failing is an error (``nb_execution_raise_on_error``), or no
    result could be obtained for it."""

    #: how Sphinx titles it when it stops a build
    category = "Notebook execution failed"

    def __init__(self, page: str, message: str) -> None:
        super().__init__(page, message)
        self.page = page
        self.message = message

    def __str__(self) -> str:
        return f"{self.page}: {self.message}"


class ExpressionError(NbcacheError):
    """An inline expression (``{eval}``) of a page has no value to show: evaluating it raised,
    or it was never evaluated (the run stopped before its place, the page is not executed)."""

    def __init__(self, expression: str, message: str) -> None:
        super().__init__(expression, message)
        self.expression = expression
        self.message = message

    def __str__(self) -> str:
        return f"{{eval}}`{self.expression}` {self.message}"


class NotebookCallError(NotebookExecutionError):
    """A notebook called as a function raised: its ``ename``, ``evalue`` and ``traceback``
    (text, colours stripped), and the code cell (counted from 1) that raised."""

    http_status = 422

    def to_json(self) -> dict[str, Any]:
        fields = {"ename": self.ename, "evalue": self.evalue, "traceback": self.traceback}
        return {**super().to_json(), **fields, "cell": self.cell}

    def __init__(
        self,
        page: str,
        ename: str,
        evalue: str,
        traceback: str = "",
        cell: int | None = None,
    ) -> None:
        Exception.__init__(self, page, ename, evalue, traceback, cell)
        self.page = page
        self.ename = ename
        self.evalue = evalue
        self.traceback = traceback
        self.cell = cell
        self.message = f"{ename}: {evalue}"

    def __str__(self) -> str:
        where = f" in code cell {self.cell}" if self.cell is not None else ""
        return f"{self.page}{where} raised {self.ename}: {self.evalue}"


class CallTimeoutError(NotebookCallError, TimeoutError):
    """A cell of a notebook called as a function did not finish within the timeout."""

    http_status = 504

    def __str__(self) -> str:
        where = f"code cell {self.cell}" if self.cell is not None else "a cell"
        return (
            f"{self.page}: {where} did not finish within the timeout; give a larger timeout "
            "(`timeout=`, `--timeout`, or the notebook's metadata.execution.timeout)"
        )


class SignatureError(NbcacheError, ValueError):
    """A notebook cannot be called as a function that way. ``cell`` counts code cells from
    1 and ``line`` lines of that cell from 1, where known."""

    http_status = 400

    def __init__(
        self, path: str, message: str, cell: int | None = None, line: int | None = None
    ) -> None:
        super().__init__(path, message, cell, line)
        self.path = path
        self.message = message
        self.cell = cell
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.cell is not None:
            where = f", code cell {self.cell}" + (f" line {self.line}" if self.line else "")
        return f"{self.path}{where}: {self.message}"


class ParameterError(SignatureError):
    """A parameter the notebook does not declare (in its ``parameters`` cell), or a value
    that cannot be written as a literal."""


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


class ArchiveError(StoreError):
    """An archive (``nbcache export``) or a jupyter-cache folder cannot be imported."""
