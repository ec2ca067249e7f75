"""The account of a run (:class:`~.report.ExecutionReport`) as files: JSON and JUnit XML.

Written after each build (``nbcache_report_json``, ``nbcache_report_junit``) and by ``nbcache
execute``; ``nbcache report [--json|--junit]`` prints the same for the cache as it is. In the
JUnit file every unit is a test case (class ``nbcache.page``, ``nbcache.variant`` or
``nbcache.call``, named by the page): a failure is a ``<failure>`` with the kernel's traceback,
one that could not start an ``<error>``, a skipped unit ``<skipped>``; a result from the cache
passes with time 0 (its own run time is a property). CI systems show it as they show tests.
"""

from __future__ import annotations

import json
import os
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._atomic import write_atomically
from ..errors import NbcacheError
from .report import Entry, ExecutionReport

__all__ = ["REPORT_FORMAT", "to_json", "to_junit", "write_reports"]

REPORT_FORMAT = "sphinx-nbcache-report"


def _figures(record: Any) -> dict[str, Any]:
    if record is None:
        return {"runtime": None, "cpu_time": None, "peak_memory": None}
    return {
        "runtime": record.runtime,
        "cpu_time": record.cpu_time,
        "peak_memory": record.peak_memory,
    }


def _entry_json(entry: Entry) -> dict[str, Any]:
    record = entry.record
    failure = record.failure if record is not None else None
    return {
        "name": entry.name,
        "kind": entry.kind,
        "outcome": entry.outcome,
        "explain": entry.explain(),
        "cached": entry.cached,
        "elsewhere": entry.elsewhere,
        "reason": entry.reason,
        "parameters": entry.parameters,
        "id": record.id if record is not None and record.key else None,
        "status": record.status if record is not None else None,
        "kernel": record.kernel if record is not None else None,
        "created": record.created if record is not None else None,
        **_figures(record),
        "failure": failure.to_json() if failure is not None else None,
    }


def to_json(report: ExecutionReport) -> dict[str, Any]:
    """The account as a JSON object (``format``, ``version``, totals, one entry per unit)."""
    return {
        "format": REPORT_FORMAT,
        "version": 1,
        "created": report.created,
        "ok": report.ok,
        "summary": report.summary(),
        "counts": report.counts(),
        "by_kind": {kind: report.counts(kind) for kind in report.kinds},
        "kernel_time": round(report.kernel_time, 4),
        "cpu_time": None if report.cpu_time is None else round(report.cpu_time, 4),
        "wall": None if report.wall is None else round(report.wall, 4),
        "most_at_once": report.most_at_once,
        "entries": [_entry_json(e) for e in report.entries],
    }


def to_junit(report: ExecutionReport, name: str = "sphinx-nbcache") -> str:
    """The account as a JUnit XML document (``<testsuites>`` holding one ``<testsuite>``)."""
    counts = report.counts()
    failures, errors = counts["failed"], counts["could not start"]
    seconds = f"{report.kernel_time:.3f}"
    totals = {
        "tests": str(len(report.entries)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(counts["skipped"]),
        "time": seconds,
    }
    suites = ET.Element("testsuites", {"name": name, **totals})
    suite = ET.SubElement(
        suites,
        "testsuite",
        {
            "name": name,
            **totals,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(report.created)),
            "hostname": socket.gethostname(),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for key, value in (("summary", report.summary()), ("timing", report.timing())):
        if value:
            ET.SubElement(properties, "property", {"name": key, "value": value})
    for entry in report.entries:
        _testcase(suite, entry)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _testcase(suite: ET.Element, entry: Entry) -> None:
    record = entry.record
    ran = entry.outcome in ("executed", "failed") and not entry.cached
    seconds = record.runtime if record is not None and ran else 0.0
    attributes = {"name": _text(entry.label), "classname": f"nbcache.{entry.kind}"}
    case = ET.SubElement(suite, "testcase", {**attributes, "time": f"{seconds:.3f}"})
    failure = record.failure if record is not None else None
    if entry.outcome == "failed":
        message = entry.explain() + (" (cached result: not run again)" if entry.cached else "")
        kind = failure.ename if failure is not None else "failed"
        element = ET.SubElement(case, "failure", {"message": _text(message), "type": _text(kind)})
        element.text = _text(failure.traceback if failure is not None else "")
    elif entry.outcome == "could not start":
        kind = failure.ename if failure is not None else "error"
        ET.SubElement(case, "error", {"message": _text(entry.explain()), "type": _text(kind)})
    elif entry.outcome == "skipped":
        ET.SubElement(case, "skipped", {"message": _text(entry.reason or "skipped")})
    notes = []
    if entry.cached and record is not None:
        notes.append(f"from cache: ran in {record.runtime:.2f} s on {_when(record.created)}")
    if entry.elsewhere:
        notes.append("executed by another build sharing the cache")
    if record is not None and record.cpu_time is not None:
        notes.append(f"CPU time {record.cpu_time:.2f} s")
    if record is not None and record.peak_memory is not None:
        notes.append(f"peak memory {record.peak_memory / 2**20:.1f} MiB")
    if notes:
        ET.SubElement(case, "system-out").text = _text("; ".join(notes))


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else "-"


def _text(value: str) -> str:
    """Text XML 1.0 can hold: other control characters become ``\\xNN``."""
    return "".join(c if _allowed(c) else f"\\x{ord(c):02x}" for c in value)


def _allowed(char: str) -> bool:
    code = ord(char)
    return char in "\t\n\r" or 0x20 <= code < 0xD800 or 0xE000 <= code < 0xFFFE or code > 0xFFFF


def write_reports(
    report: ExecutionReport, json_path: str | Path | None, junit_path: str | Path | None
) -> list[Path]:
    """Write the JSON and JUnit reports where asked (folders made as needed); returns the
    files written. Raises :class:`NbcacheError` naming a file that cannot be written."""
    written = []
    texts: list[tuple[str | Path | None, Callable[[], str]]] = [
        (json_path, lambda: json.dumps(to_json(report), indent=2, ensure_ascii=False)),
        (junit_path, lambda: to_junit(report)),
    ]
    for path, text in texts:
        if not path:
            continue
        target = Path(path)
        try:
            os.makedirs(target.parent, exist_ok=True)
            write_atomically(target, (text().rstrip("\n") + "\n").encode("utf-8"))
        except OSError as exc:
            raise NbcacheError(
                f"cannot write the report {target}: {exc.strerror or exc}; check the path "
                "(nbcache_report_json / nbcache_report_junit)"
            ) from None
        written.append(target)
    return written
