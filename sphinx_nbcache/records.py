"""The plain data that flows between the executor, the store and the renderers.

Nothing here does I/O; everything is immutable, JSON-serialisable through ``to_json`` /
``from_json`` and picklable.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Failure", "FailureKind", "Outputs", "Record", "Status"]

Status = Literal["ok", "failed", "error"]
"""``ok``: ran to the end. ``failed``: the notebook's code failed (a cell raised, timed out or
killed its kernel); cached like a success. ``error``: the environment failed (no such kernel,
the notebook could not be read); kept for this build's report only and retried next build."""

FailureKind = Literal["cell", "timeout", "dead_kernel", "no_kernel", "read", "internal"]


@dataclass(frozen=True)
class Failure:
    """Why a notebook did not run to the end, and where."""

    kind: FailureKind
    ename: str
    evalue: str
    traceback: str = ""  # plain text, kernel-side frames only, no ANSI colour codes
    cell_index: int | None = None  # index among all cells of the notebook

    def summary(self) -> str:
        """One line: ``ZeroDivisionError: division by zero``."""
        return f"{self.ename}: {self.evalue}" if self.evalue else self.ename

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Failure:
        return cls(**data)


@dataclass(frozen=True)
class Outputs:
    """The executed state of a notebook's code cells, in order, plus notebook metadata."""

    cells: tuple[dict[str, Any], ...]  # per code cell: {"execution_count": n, "outputs": [...]}
    metadata: dict[str, Any] = field(default_factory=dict)  # language_info, widgets
    #: the normalised source of each code cell as executed (``hashing.code_sources``), so a
    #: page can be diffed against its cached result; None in blobs written without it
    sources: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"v": 1, "cells": list(self.cells), "metadata": self.metadata}
        if self.sources is not None:
            data["sources"] = list(self.sources)
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
        return cls(
            tuple(data["cells"]),
            dict(data.get("metadata") or {}),
            None if sources is None else tuple(sources),
        )


@dataclass(frozen=True)
class Record:
    """One stored execution result, addressed by the notebook's cache key."""

    key: str
    status: Status
    blob: str | None  # id of the stored Outputs (None when nothing ran)
    runtime: float = 0.0  # seconds, kernel start to shutdown
    cell_times: tuple[float | None, ...] = ()  # seconds per code cell (None: not run)
    kernel: str = ""
    timeout: float | None = None  # the per-cell timeout it ran with
    failure: Failure | None = None
    page: str = ""  # the page (path relative to the project) that produced it
    created: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cell_times"] = list(self.cell_times)
        data["failure"] = self.failure.to_json() if self.failure else None
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
        )
