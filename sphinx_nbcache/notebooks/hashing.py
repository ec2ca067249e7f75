"""Notebook -> cache key: the only place that decides what re-executes a notebook.

The key covers exactly what can change a notebook's outputs:

* the source of every code cell, in order (line endings normalised, trailing newlines dropped);
* the execution tags of each code cell (:data:`EXECUTION_TAGS`);
* the kernel name, after ``nb_kernel_rgx_aliases``;
* the effective ``allow_errors`` (it decides whether execution stops at the first error);
* the parameters injected when the notebook is called as a function (none for a page);
* the dependencies the notebook declares (``metadata.nbcache.depends``), as patterns;
* its inline expressions (``{eval}``, found by :mod:`.expressions`): each one's text and the
  number of code cells above it (absent for pages without any: their keys never changed).

The rest of markdown and raw cells, outputs, execution counts, cell ids, presentational tags
and metadata (``hide-input``, ``remove-output``, ``mystnb`` render options) and the file's name
or folder are *not* in the key: editing them never re-executes. The per-cell timeout is not in
the key either; a result that failed on a timeout is retried when the timeout is raised, and a
result that raised nothing is valid whatever ``allow_errors`` says (see
:mod:`sphinx_nbcache.plan.verdicts`). What a notebook reads, imports and runs on is recorded while
it runs and checked after the key matched (:class:`~sphinx_nbcache.records.Dependencies`).

Bump :data:`HASH_VERSION` whenever this scheme changes: old results then simply stop matching.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .._json import canonical_json
from ..config import Options

__all__ = [
    "EXECUTION_TAGS",
    "HASH_VERSION",
    "KEY_PATTERN",
    "code_cells",
    "code_sources",
    "declared_in",
    "kernel_name",
    "notebook_key",
]

HASH_VERSION = 1
EXECUTION_TAGS = frozenset({"skip-execution", "raises-exception"})
#: What a key looks like; keys are validated against it before they name a file.
KEY_PATTERN = re.compile(r"[0-9a-f]{64}")


def code_cells(notebook: Mapping[str, Any]) -> list[Any]:
    """The code cells of a notebook, in order (the cells a result has outputs for)."""
    return [cell for cell in notebook.get("cells", ()) if cell.get("cell_type") == "code"]


def code_sources(notebook: Mapping[str, Any]) -> list[str]:
    """The normalised source of each code cell, in order."""
    sources = []
    for cell in code_cells(notebook):
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        sources.append(source.replace("\r\n", "\n").rstrip("\n"))
    return sources


def kernel_name(notebook: Mapping[str, Any], options: Options) -> str:
    """The kernel a notebook runs in (``python3`` when it names none), after aliases."""
    spec = notebook.get("metadata", {}).get("kernelspec") or {}
    name = spec.get("name") if isinstance(spec, Mapping) else None
    return options.kernel_alias(str(name)) if name else "python3"


def declared_in(notebook: Mapping[str, Any]) -> list[str]:
    """The file globs a notebook declares in ``metadata.nbcache.depends``."""
    own = notebook.get("metadata", {}).get("nbcache")
    depends = own.get("depends") if isinstance(own, Mapping) else None
    if isinstance(depends, str):
        return [depends]
    if isinstance(depends, list | tuple):
        return [str(d) for d in depends]
    return []


def notebook_key(
    notebook: Mapping[str, Any],
    options: Options,
    parameters: Mapping[str, Any] | None = None,
    *,
    allow_errors: bool | None = None,
    expressions: Sequence[Sequence[Any]] = (),
) -> str:
    """The cache key of ``notebook`` run with ``options`` (already made per-notebook) and
    ``parameters``; ``allow_errors`` overrides the options' (for the key of the same code
    run with the other setting); ``expressions``: its inline expressions as
    :func:`~.expressions.keyed` gives them."""
    cells = []
    for source, cell in zip(code_sources(notebook), code_cells(notebook), strict=True):
        tags = cell.get("metadata", {}).get("tags") or ()
        cells.append([source, sorted(EXECUTION_TAGS.intersection(tags))])
    payload: dict[str, Any] = {
        "v": HASH_VERSION,
        "kernel": kernel_name(notebook, options),
        "allow_errors": options.allow_errors if allow_errors is None else allow_errors,
        "cells": cells,
    }
    if parameters:  # absent for pages as written: their keys stay what they always were
        payload["parameters"] = dict(parameters)
    depends = declared_in(notebook)
    if depends:  # declaring a dependency is a change of what the result depends on
        payload["depends"] = depends
    if expressions:  # absent for pages without: their keys stay what they always were
        payload["expressions"] = [list(e) for e in expressions]
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()
