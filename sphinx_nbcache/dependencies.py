"""What a result depended on besides its code (``records.Dependencies``).

A module of its own because a build with nothing changed needs this class alone: the results
its pages show are kept in Sphinx's environment with their dependencies, and unpickling them
then imports no more than this (the rest of :mod:`~sphinx_nbcache.records` is not needed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = ["UNTRACED", "Dependencies"]

#: the ``environment`` entry of a result whose Python kernel ran without the dependency tracer
#: (its value says why): such a result does not know what files it read
UNTRACED = "untraced"


class Dependencies(NamedTuple):
    """What a result depended on besides its code, recorded while it ran.

    Paths are POSIX and relative to the page's folder (``../data/x.csv`` for a file elsewhere
    in the project), so a copy of a page elsewhere matches only where the same relative files
    have the same content. ``files`` maps each file read or module imported from the project
    to the SHA-256 of its content; ``packages`` maps each distribution imported to its
    version; ``environment`` holds the Python version and the kernel spec (and, for a Python
    kernel that refused the tracer, why: :attr:`untraced`).
    """

    files: tuple[tuple[str, str], ...] = ()  # (relative path, sha256), sorted
    packages: tuple[tuple[str, str], ...] = ()  # (distribution, version), sorted
    environment: tuple[tuple[str, str], ...] = ()  # (name, value): python, kernelspec
    #: for each file, the execution count of the cell that first read or imported it
    cells: tuple[tuple[str, int], ...] = ()
    imports: tuple[str, ...] = ()  # the files among ``files`` that were imported as modules

    @property
    def untraced(self) -> str | None:
        """Why the run's Python kernel could not be traced (None: it was, or not Python)."""
        return dict(self.environment).get(UNTRACED)

    @property
    def empty(self) -> bool:
        return not (self.files or self.packages or self.environment)

    def to_json(self) -> dict[str, Any]:
        return {
            "files": dict(self.files),
            "packages": dict(self.packages),
            "environment": dict(self.environment),
            "cells": dict(self.cells),
            "imports": list(self.imports),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Dependencies:
        def pairs(name: str, kind: type) -> tuple[tuple[str, Any], ...]:
            value = data.get(name) or {}
            if not isinstance(value, Mapping):
                raise ValueError(f"dependencies: {name!r} must be an object")
            return tuple(sorted((str(k), kind(v)) for k, v in value.items()))

        imports = data.get("imports") or []
        if not isinstance(imports, list):
            raise ValueError("dependencies: 'imports' must be a list")
        return cls(
            pairs("files", str),
            pairs("packages", str),
            pairs("environment", str),
            pairs("cells", int),
            tuple(sorted(str(i) for i in imports)),
        )

    def fingerprint(self) -> str:
        """What identifies these dependencies (cells are where, not what: left out)."""
        from .records import canonical_json

        return canonical_json([dict(self.files), dict(self.packages), dict(self.environment)])
