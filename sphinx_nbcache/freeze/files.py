"""The frozen form of one page's result: one JSON text file, and its images beside it.

``<folder>/<page>.json`` holds, with sorted keys and one output per block (texts as lists of
lines, so a diff shows the lines that changed):

* ``key``: the page's cache key when it ran (its code, execution settings and ``{eval}``
  expressions) and ``dependencies``: what the run read, imported and ran on (files with their
  digests, packages with their versions, the Python version; not the kernel spec's own path,
  which differs from machine to machine);
* ``result``: ok or failed (and how), with the settings it ran with; ``kernel``;
* ``sources`` (the code cells it ran, to say which changed), ``cells`` (each code cell's
  execution count and outputs), ``expressions`` (each ``{eval}`` value), ``metadata``.

Binary images (PNG, JPEG, GIF, WebP, PDF) are files in ``<folder>/<page>.files/`` named by
their content's hash; the JSON names them (``{"file": "1f2e....png"}``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..dependencies import Dependencies
from ..records import Failure, Outputs, Record
from .normalise import Normaliser

__all__ = ["FORMAT", "frozen_form", "images_folder", "page_file", "parse_frozen"]

#: the layout of frozen files (bumped when it changes; older ones are read as missing)
FORMAT = 1
#: binary mime types kept as files, and their extensions
_BINARY = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
}


def page_file(folder: Path, page: str) -> Path:
    """The frozen file of ``page`` (a page name: ``examples/demo``)."""
    return folder.joinpath(*f"{page}.json".split("/"))


def images_folder(folder: Path, page: str) -> Path:
    """The folder of ``page``'s frozen images."""
    return folder.joinpath(*f"{page}.files".split("/"))


# -- writing ------------------------------------------------------------------------------------


def frozen_form(
    record: Record, outputs: Outputs, noise: Normaliser, stderr: bool
) -> tuple[bytes, dict[str, bytes]]:
    """The frozen file of a result (its bytes) and its images (file name -> bytes)."""
    images: dict[str, bytes] = {}

    def output(value: Mapping[str, Any]) -> dict[str, Any] | None:
        return _output_out(value, noise, images, stderr)

    def outputs_of(values: Any) -> list[dict[str, Any]]:
        return [o for o in (output(v) for v in values or ()) if o is not None]

    deps = record.dependencies or Dependencies()
    environment = {k: v for k, v in deps.environment if k != "kernel"}  # a path on this machine
    failure = record.failure
    data: dict[str, Any] = {
        "format": FORMAT,
        "page": record.page,
        "key": record.key,
        "kernel": record.kernel,
        "result": {
            "status": record.status,
            "allow_errors": record.allow_errors,
            "raised": record.raised,
            "timeout": record.timeout,
            "failure": None if failure is None else _failure_out(failure, noise),
        },
        "dependencies": {**deps.to_json(), "environment": environment},
        "sources": [_lines(s) for s in outputs.sources or ()],
        "cells": [
            {"execution_count": c.get("execution_count"), "outputs": outputs_of(c.get("outputs"))}
            for c in outputs.cells
        ],
        "metadata": outputs.metadata,
    }
    if outputs.expressions is not None:
        data["expressions"] = [
            {"after": e["after"], "source": e["source"], "outputs": outputs_of(e["outputs"])}
            for e in outputs.expressions
        ]
    text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    return text.encode("utf-8"), images


def _output_out(
    output: Mapping[str, Any], noise: Normaliser, images: dict[str, bytes], stderr: bool
) -> dict[str, Any] | None:
    kind = output.get("output_type")
    found = dict(output)
    if kind == "stream":
        if output.get("name") == "stderr" and not stderr:
            return None  # local warnings: noise unless asked for
        found["text"] = _lines(noise.text(_joined(output.get("text", ""))))
    elif kind in ("display_data", "execute_result"):
        data: dict[str, Any] = {}
        for mime, value in (output.get("data") or {}).items():
            if mime in _BINARY and isinstance(value, str):
                content = base64.b64decode(value)
                name = hashlib.sha256(content).hexdigest()[:20] + _BINARY[mime]
                images[name] = content
                data[mime] = {"file": name}
            elif _is_text(mime) and isinstance(value, str | list):
                data[mime] = _lines(noise.text(_joined(value)))
            else:
                data[mime] = value
        found["data"] = data
        found.pop("transient", None)
    elif kind == "error":
        found["evalue"] = noise.text(str(output.get("evalue", "")))
        found["traceback"] = [noise.text(line) for line in output.get("traceback") or ()]
    return found


def _failure_out(failure: Failure, noise: Normaliser) -> dict[str, Any]:
    data = failure.to_json()
    data["evalue"] = noise.text(failure.evalue)
    data["traceback"] = _lines(noise.text(failure.traceback))
    return data


def _is_text(mime: str) -> bool:
    return not (mime == "application/json" or mime.endswith("+json"))


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _joined(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


# -- reading ------------------------------------------------------------------------------------


def parse_frozen(data: bytes, image: Callable[[str], bytes]) -> tuple[Record, Outputs]:
    """A frozen file's result and outputs (``image(name)``: the bytes of one of its images);
    ValueError, KeyError or TypeError if it is not one."""
    found = json.loads(data)
    if not isinstance(found, dict) or found.get("format") != FORMAT:
        raise ValueError(f"not a frozen result of format {FORMAT}")
    result = found["result"]
    failure = result.get("failure")
    if isinstance(failure, dict):
        failure = Failure.from_json({**failure, "traceback": _joined(failure["traceback"])})
    record = Record(
        key=str(found["key"]),
        status=result["status"],
        blob=None,
        kernel=str(found["kernel"]),
        timeout=result.get("timeout"),
        failure=failure,
        page=str(found["page"]),
        allow_errors=result.get("allow_errors"),
        dependencies=Dependencies.from_json(found["dependencies"]),
        raised=result.get("raised"),
    )
    if record.status not in ("ok", "failed"):
        raise ValueError(f"unknown status {record.status!r}")

    def outputs_of(values: list[Any]) -> list[dict[str, Any]]:
        return [_output_in(v, image) for v in values]

    cells = tuple(
        {"execution_count": c["execution_count"], "outputs": outputs_of(c["outputs"])}
        for c in found["cells"]
    )
    expressions = found.get("expressions")
    if expressions is not None:
        expressions = tuple(
            {
                "after": int(e["after"]),
                "source": str(e["source"]),
                "outputs": outputs_of(e["outputs"]),
            }
            for e in expressions
        )
    sources = tuple(_joined(s) for s in found.get("sources") or ())
    outputs = Outputs(cells, dict(found.get("metadata") or {}), sources or None, expressions)
    return record, outputs


def _output_in(output: Mapping[str, Any], image: Callable[[str], bytes]) -> dict[str, Any]:
    found = dict(output)
    if found.get("output_type") == "stream":
        found["text"] = _joined(found.get("text", ""))
    elif "data" in found:
        data: dict[str, Any] = {}
        for mime, value in found["data"].items():
            if isinstance(value, dict) and mime in _BINARY and isinstance(value.get("file"), str):
                data[mime] = base64.b64encode(image(value["file"])).decode("ascii")
            elif _is_text(mime) and isinstance(value, list):
                data[mime] = _joined(value)
            else:
                data[mime] = value
        found["data"] = data
    return found
