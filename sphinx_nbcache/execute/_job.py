"""What an executor is given (:class:`Job`) and what it gives back (:class:`Outcome`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..records import Outputs, Record

__all__ = ["Job", "Outcome"]


@dataclass(frozen=True)
class Job:
    """One notebook to execute in a fresh kernel. Picklable, so it can travel to workers."""

    key: str  # the cache key the result is stored under
    notebook: dict[str, Any]  # nbformat 4 JSON (outputs are ignored and replaced)
    page: str  # how to name it to the user: the path relative to the project
    cwd: str | None  # working directory of the kernel; None: a fresh temporary folder
    kernel: str = "python3"
    timeout: float | None = 30.0  # seconds per cell; None: no limit
    allow_errors: bool = False
    output_limit: int = 1_000_000  # bytes of stream text kept per cell; 0: no limit


@dataclass(frozen=True)
class Outcome:
    """The result of one job: the record to store and the outputs it refers to."""

    record: Record
    outputs: Outputs | None
