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

    def to_json(self) -> dict[str, Any]:
        return {"v": 1, "cells": list(self.cells), "metadata": self.metadata}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outputs:
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("unknown outputs layout")
        return cls(tuple(data["cells"]), dict(data.get("metadata") or {}))


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
