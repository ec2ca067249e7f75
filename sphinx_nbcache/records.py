"""The plain data that flows between the executor, the store and the renderers.

Nothing here does I/O; everything is immutable, JSON-serialisable through ``to_json`` /
``from_json`` and picklable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from ._json import canonical_json
from .dependencies import MAX_TARGET, Dependencies

__all__ = [
    "Artifact",
    "Dependencies",
    "Failure",
    "FailureKind",
    "Outputs",
    "Record",
    "Status",
    "canonical_json",
    "result_id",
]

Status = Literal["ok", "failed", "error"]
"""``ok``: ran to the end. ``failed``: the notebook's code failed (a cell raised, timed out or
killed its kernel); cached like a success. ``error``: the environment failed (no such kernel,
the notebook could not be read); kept for this build's report only and retried next build."""

#: dependency entries a record may hold at most (a run records a few hundred)
MAX_ENTRIES = 100_000

FailureKind = Literal["cell", "timeout", "dead_kernel", "no_kernel", "read", "internal"]


class Failure(NamedTuple):
    """Why a notebook did not run to the end, and where."""

    kind: FailureKind
    ename: str
    evalue: str
    traceback: str = ""  # plain text, kernel-side frames only, no ANSI colour codes
    cell_index: int | None = None  # index among all cells of the notebook
    code_cell: int | None = None  # which code cell, counted from 1 (what users are told)

    def summary(self) -> str:
        """One line: ``ZeroDivisionError: division by zero``."""
        return f"{self.ename}: {self.evalue}" if self.evalue else self.ename

    def to_json(self) -> dict[str, Any]:
        return self._asdict()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Failure:
        known = {"kind", "ename", "evalue", "traceback", "cell_index", "code_cell"}
        return cls(**{k: v for k, v in data.items() if k in known})


#: the default of ``Outputs.metadata`` (never mutated: Outputs is immutable)
_NO_METADATA: dict[str, Any] = {}


class Outputs(NamedTuple):
    """The executed state of a notebook's code cells, in order, plus notebook metadata."""

    cells: tuple[dict[str, Any], ...]  # per code cell: {"execution_count": n, "outputs": [...]}
    metadata: dict[str, Any] = _NO_METADATA  # language_info, widgets
    #: the normalised source of each code cell as executed (``hashing.code_sources``), so a
    #: page can be diffed against its cached result; None in blobs written without it
    sources: tuple[str, ...] | None = None
    #: the value of each inline expression (``{eval}``) of the page, in document order:
    #: ``{"after": code cells above it, "source": its text, "outputs": [one output]}``;
    #: None for a page without expressions, and in blobs written before they were kept
    expressions: tuple[dict[str, Any], ...] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"v": 1, "cells": list(self.cells), "metadata": self.metadata}
        if self.sources is not None:
            data["sources"] = list(self.sources)
        if self.expressions is not None:
            data["expressions"] = list(self.expressions)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outputs:
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("unknown outputs layout")
        sources = data.get("sources")
        if sources is not None and not (
            isinstance(sources, list) and all(isinstance(s, str) for s in sources)
        ):
            raise ValueError("'sources' must be a list of strings")
        expressions = data.get("expressions")
        if expressions is not None and not (
            isinstance(expressions, list)
            and all(
                isinstance(e, dict)
                and isinstance(e.get("source"), str)
                and isinstance(e.get("after"), int)
                and isinstance(e.get("outputs"), list)
                for e in expressions
            )
        ):
            raise ValueError("'expressions' must be a list of {after, source, outputs}")
        return cls(
            tuple(data["cells"]),
            dict(data.get("metadata") or {}),
            None if sources is None else tuple(sources),
            None if expressions is None else tuple(expressions),
        )


class Artifact(NamedTuple):
    """A file the notebook wrote inside the project, kept with its result."""

    path: str  # POSIX, relative to the page's folder
    blob: str  # id of the stored bytes
    size: int
    mtime: float  # when the run wrote it

    def to_json(self) -> dict[str, Any]:
        return self._asdict()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Artifact:
        return cls(str(data["path"]), str(data["blob"]), int(data["size"]), float(data["mtime"]))


def result_id(key: str, dependencies: Dependencies | None) -> str:
    """A result's identity: its cache key, plus what it depended on when it ran.

    A result with no recorded dependencies is identified by its key alone (so results stored
    before dependencies were recorded keep their identity)."""
    if dependencies is None or dependencies.empty:
        return key
    text = f"{key}\0{dependencies.fingerprint()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Record(NamedTuple):
    """One stored execution result.

    ``key`` is the cache key of what ran (code, execution options, parameters: see
    :mod:`.hashing`); ``id`` adds the dependencies recorded while it ran, so one
    key may have several results (the same code run against different data), and one page
    several keys (variants run with different parameters).
    """

    key: str
    status: Status
    blob: str | None  # id of the stored Outputs (None when nothing ran)
    #: seconds from its first cell's execution to its last reply (not the kernel's start:
    #: a kernel started ahead of its page idles meanwhile)
    runtime: float = 0.0
    cell_times: tuple[float | None, ...] = ()  # seconds per code cell (None: not run)
    kernel: str = ""
    timeout: float | None = None  # the per-cell timeout it ran with
    failure: Failure | None = None
    page: str = ""  # the page (path relative to the project) that produced it
    #: when it was made (0: not stored yet; :meth:`Store.put` stamps the time it stores it)
    created: float = 0.0
    last_used: float = 0.0  # (0: as ``created``)
    allow_errors: bool | None = None  # what it ran with (None: not recorded)
    parameters: Mapping[str, Any] | None = None  # injected parameters (None: as written)
    dependencies: Dependencies | None = None  # None: not recorded
    artifacts: tuple[Artifact, ...] = ()
    #: True if a cell raised (allowed or tagged ``raises-exception``); None: not recorded
    raised: bool | None = None
    #: the store's signature of it (``store/_signing.py``; None: not signed)
    signature: str | None = None
    #: seconds of CPU the kernel (and the processes it waited for) used meanwhile; None: the
    #: kernel could not say (not a Python kernel, no ``resource`` module, or before 0.3)
    cpu_time: float | None = None
    #: the kernel process's peak resident memory, in bytes (None: not known)
    peak_memory: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def id(self) -> str:
        """The result's identity (see :func:`result_id`)."""
        return result_id(self.key, self.dependencies)

    @property
    def failed_code_cell(self) -> int | None:
        """The failing code cell, counted from 1 among code cells (None: not in a cell)."""
        failure = self.failure
        if failure is None or failure.cell_index is None:
            return None
        if failure.code_cell is not None:
            return failure.code_cell
        ran = sum(1 for t in self.cell_times if t is not None)  # results stored before 0.2
        return ran or None

    def where(self) -> str:
        """Where it failed, the way every message says it: ``code cell 2`` or ``the kernel``."""
        cell = self.failed_code_cell
        return f"code cell {cell}" if cell is not None else "the kernel"

    def problem(self) -> str | None:
        """Why this record cannot be trusted as a result (None: it can). A record from a
        shared store or an archive is someone else's writing: every dependency entry must be
        a relative path inside a project, every artifact a relative path, and no more entries
        than a run records."""
        deps = self.dependencies
        if deps is not None:
            if len(deps.files) > MAX_ENTRIES:
                return f"{len(deps.files):,} dependencies (at most {MAX_ENTRIES:,} are kept)"
            for entry, _digest in deps.entries():
                found = entry.problem()
                if found is not None:
                    return found
        for artifact in self.artifacts:
            path = artifact.path
            if (
                not path
                or len(path) > MAX_TARGET
                or "\0" in path
                or path.startswith("/")
                or artifact.size < 0
            ):
                return f"artifact {path[:80]!r} is not a relative path"
        return None

    def explain(self, where: str | None = None) -> str:
        """What happened, in one line, the way every message says it: ``ok``, ``failed in
        code cell 2: ZeroDivisionError: division by zero``, ``could not start: NoSuchKernel:
        ...`` (the CLI, the build's warnings and the REST endpoint all use it); ``where``
        replaces :meth:`where` when the caller knows better."""
        if self.status == "ok":
            return "ok"
        summary = self.failure.summary() if self.failure is not None else "no reason recorded"
        if self.status == "failed":
            return f"failed in {where or self.where()}: {summary}"
        return f"could not start: {summary}"

    def to_json(self) -> dict[str, Any]:
        data = self._asdict()
        data["cell_times"] = list(self.cell_times)
        data["failure"] = self.failure.to_json() if self.failure else None
        data["parameters"] = None if self.parameters is None else dict(self.parameters)
        data["dependencies"] = self.dependencies.to_json() if self.dependencies else None
        data["artifacts"] = [a.to_json() for a in self.artifacts]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        """The inverse of :meth:`to_json`; raises ValueError/TypeError/KeyError on bad data."""
        if not isinstance(data, dict):
            raise TypeError("a record must be a JSON object")
        if data.get("status") not in ("ok", "failed", "error"):
            raise ValueError(f"unknown status {data.get('status')!r}")
        failure = data.get("failure")
        timeout = data.get("timeout")
        parameters = data.get("parameters")
        dependencies = data.get("dependencies")
        allow_errors = data.get("allow_errors")
        raised = data.get("raised")
        cpu_time, peak_memory = data.get("cpu_time"), data.get("peak_memory")
        return cls(
            key=str(data["key"]),
            status=data["status"],
            blob=None if data.get("blob") is None else str(data["blob"]),
            runtime=float(data.get("runtime") or 0.0),
            cell_times=tuple(None if t is None else float(t) for t in data.get("cell_times") or ()),
            kernel=str(data.get("kernel") or ""),
            timeout=None if timeout is None else float(timeout),
            failure=Failure.from_json(failure) if isinstance(failure, dict) else None,
            page=str(data.get("page") or ""),
            created=float(data["created"]),
            last_used=float(data.get("last_used") or data["created"]),
            allow_errors=None if allow_errors is None else bool(allow_errors),
            parameters=dict(parameters) if isinstance(parameters, dict) else None,
            dependencies=(
                Dependencies.from_json(dependencies) if isinstance(dependencies, dict) else None
            ),
            artifacts=tuple(Artifact.from_json(a) for a in data.get("artifacts") or ()),
            raised=None if raised is None else bool(raised),
            signature=None if data.get("signature") is None else str(data["signature"]),
            cpu_time=None if cpu_time is None else float(cpu_time),
            peak_memory=None if peak_memory is None else int(peak_memory),
        )
