"""Results as database rows and back; a row that fails validation reads as absent."""

from __future__ import annotations

import json
from typing import Any

from ..notebooks.hashing import KEY_PATTERN
from ..records import Artifact, Dependencies, Failure, Record

__all__ = ["to_record", "to_row"]


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


def to_row(record: Record, size: int) -> dict[str, Any]:
    return {
        "id": record.id,
        "key": record.key,
        "status": record.status,
        "blob": record.blob,
        "size": size + sum(a.size for a in record.artifacts),
        "runtime": record.runtime,
        "cell_times": json.dumps(list(record.cell_times)),
        "kernel": record.kernel,
        "timeout": record.timeout,
        "failure": _json(record.failure.to_json() if record.failure else None),
        "page": record.page,
        "created": record.created,
        "last_used": record.last_used,
        "allow_errors": _flag(record.allow_errors),
        "raised": _flag(record.raised),
        "parameters": _json(None if record.parameters is None else dict(record.parameters)),
        "dependencies": _json(record.dependencies.to_json() if record.dependencies else None),
        "artifacts": _json([a.to_json() for a in record.artifacts] or None),
        "signature": record.signature,
        "cpu_time": record.cpu_time,
        "peak_memory": record.peak_memory,
    }


def to_record(row: Any) -> Record | None:
    """A row as a Record; None for a row that fails validation (treated as absent)."""
    try:
        if not KEY_PATTERN.fullmatch(row["key"]) or row["status"] not in ("ok", "failed", "error"):
            return None
        if row["blob"] is not None and not KEY_PATTERN.fullmatch(row["blob"]):
            return None
        failure = Failure.from_json(json.loads(row["failure"])) if row["failure"] else None
        parameters = json.loads(row["parameters"]) if row["parameters"] else None
        dependencies = json.loads(row["dependencies"]) if row["dependencies"] else None
        artifacts = json.loads(row["artifacts"]) if row["artifacts"] else []
        record = Record(
            key=row["key"],
            status=row["status"],
            blob=row["blob"],
            runtime=float(row["runtime"]),
            cell_times=tuple(json.loads(row["cell_times"] or "[]")),
            kernel=row["kernel"],
            timeout=row["timeout"],
            failure=failure,
            page=row["page"],
            created=float(row["created"]),
            last_used=float(row["last_used"]),
            allow_errors=None if row["allow_errors"] is None else bool(row["allow_errors"]),
            raised=None if row["raised"] is None else bool(row["raised"]),
            parameters=parameters if isinstance(parameters, dict) else None,
            dependencies=Dependencies.from_json(dependencies) if dependencies else None,
            artifacts=tuple(Artifact.from_json(a) for a in artifacts),
            cpu_time=None if row["cpu_time"] is None else float(row["cpu_time"]),
            peak_memory=None if row["peak_memory"] is None else int(row["peak_memory"]),
            signature=row.get("signature"),
        )
        if record.id != row["id"] or any(
            not KEY_PATTERN.fullmatch(a.blob) for a in record.artifacts
        ):
            return None  # a row whose identity does not match its content: tampered
        if record.problem() is not None:
            return None  # entries no run records (outside the project, not paths): tampered
        return record
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
