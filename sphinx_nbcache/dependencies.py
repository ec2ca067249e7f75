"""What a result depended on besides its code, and the kinds of entries that record it.

A result's :attr:`Dependencies.files` maps entry names to digests. A name is a kind's prefix
and a target, a POSIX path relative to the page's folder (a glob may start with ``/``: the
project's root)::

    data/stations.csv        file      a file read or module imported: SHA-256 ("" absent)
    glob:data/*.csv          glob      a declared glob: one hash over the paths and contents
    code:../model.md         code      a notebook whose result was read or called: its key
    pages:stations           pages     a folder (or glob) listed: the names of its pages
    variants:model.md        variants  the nbcache-notebook directives showing a notebook

The kinds are defined here, once: :func:`parse` reads a name, :func:`name_of` writes one,
:func:`describe_change` says what a change means, :meth:`Entry.path` finds the target on
disk (inside the project, or nowhere). What a kind's digest is *now* is worked out by the
part of the package that records such entries, registered with :func:`register` into
:data:`KINDS`: the core registers ``file``, ``glob`` and ``code``
(:mod:`~sphinx_nbcache.plan.freshness`), the workflows ``pages`` and ``variants``. An entry
whose resolver is not loaded, or whose target is not a relative path inside the project,
never counts as unchanged (a name with no known prefix is a file's).

A module of its own, with no imports from the package: a build with nothing changed
unpickles the results its pages show (kept in Sphinx's environment) and needs only this.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from .config import Options

__all__ = [
    "KINDS",
    "UNTRACED",
    "Context",
    "Dependencies",
    "Entry",
    "Kind",
    "describe_change",
    "name_of",
    "parse",
    "register",
]

#: the ``environment`` entry of a result whose Python kernel ran without the dependency tracer
#: (its value says why): such a result does not know what files it read
UNTRACED = "untraced"
#: the longest target a recorded entry may have (a tampered record is refused beyond)
MAX_TARGET = 4096


class Context(Protocol):
    """What a resolver may ask of the check that calls it."""

    root: Path | None  # the project folder (None: the page's folder is all there is)
    options: Options
    md_config: Any  # myst-parser's MdParserConfig for MyST notebooks (None: its defaults)

    def file_hash(self, path: str | Path) -> str:
        """SHA-256 of a regular file's content ("" if there is none)."""
        ...


#: (target, the page's folder, the check) -> the target's digest now ("" when it is absent)
Resolve = Callable[[str, Path, Context], str]


class Kind(NamedTuple):
    """One kind of dependency entry."""

    name: str
    prefix: str  # how its names start ("" for files)
    counted_as: str  # how ``why`` counts it: "file", "declared dependency", "result read"
    changed: str  # what a change says, ``{target}`` filled in (files say more: describe_change)
    watched: bool = False  # Sphinx watches the target (``env.note_dependency``)
    reads_page: bool = False  # the target may be a page whose result was read (ordering)
    anchored: bool = False  # a target starting with "/" is relative to the project's root


FILE = Kind("file", "", "file", "{target} changed", watched=True, reads_page=True)
GLOB = Kind(
    "glob", "glob:", "declared dependency", "files matching {target} changed (declared dependency)",
    anchored=True,
)  # fmt: skip
CODE = Kind(
    "code", "code:", "result read", "the code of {target} changed (its result was read)",
    reads_page=True,
)  # fmt: skip
PAGES = Kind(
    "pages", "pages:", "result read", "the notebook pages in {target} changed (it listed them)"
)
VARIANTS = Kind(
    "variants", "variants:", "result read",
    "the variants of {target} the pages show changed (it read them)",
)  # fmt: skip

#: name -> kind: every kind there is (the order in which prefixes are tried: files last)
KINDS: dict[str, Kind] = {k.name: k for k in (GLOB, CODE, PAGES, VARIANTS, FILE)}
#: name -> how its digest is worked out now (registered by the module that records the kind)
_RESOLVERS: dict[str, Resolve] = {}


def register(name: str, resolve: Resolve) -> None:
    """Register how the digest of the ``name`` kind's entries is worked out now."""
    if name not in KINDS:
        raise ValueError(f"no dependency kind {name!r}: add it to KINDS")
    _RESOLVERS[name] = resolve


def resolver(kind: Kind) -> Resolve | None:
    """How ``kind``'s digests are worked out (None: the module that owns it is not loaded)."""
    return _RESOLVERS.get(kind.name)


class Entry(NamedTuple):
    """One recorded name, read: its kind and its target."""

    kind: Kind
    target: str
    name: str

    def problem(self) -> str | None:
        """Why this entry cannot be trusted (None: it can): a record from a shared store or an
        archive is someone else's writing."""
        target = self.target
        if not target or len(target) > MAX_TARGET or "\0" in target:
            return f"{self.name[:80]!r} is not a path"
        if target.startswith("/") and not self.kind.anchored:
            return f"{self.name[:80]!r} is an absolute path"
        return None

    def path(self, folder: Path, root: Path | None) -> Path | None:
        """The target on disk for a page in ``folder``, if it is inside the project (``root``,
        else ``folder``); None otherwise (or if the entry cannot be trusted)."""
        if self.problem() is not None:
            return None
        inside = os.path.abspath(root if root is not None else folder)
        if self.target.startswith("/"):
            where = os.path.normpath(os.path.join(inside, self.target.lstrip("/")))
        else:
            where = os.path.normpath(os.path.join(os.path.abspath(folder), self.target))
        if where != inside and not where.startswith(inside.rstrip(os.sep) + os.sep):
            return None
        return Path(where)


def parse(name: str) -> Entry:
    """Read one recorded name (a name with no known prefix is a file's)."""
    for kind in KINDS.values():
        if kind.prefix and name.startswith(kind.prefix):
            return Entry(kind, name[len(kind.prefix) :], name)
    return Entry(FILE, name, name)


def name_of(kind: Kind, target: str) -> str:
    """The recorded name of ``kind``'s entry for ``target``."""
    return kind.prefix + target


def describe_change(entry: Entry, before: str, now: str, deps: Dependencies) -> str:
    """What changed, in words: ``helpers.py changed (imported in code cell 2)``."""
    problem = entry.problem()
    if problem is not None:
        return f"{problem}: the cached result is not used"
    if entry.kind is not FILE:
        return entry.kind.changed.format(target=entry.target)
    path = entry.target
    if not before:
        what = f"{path} now exists"
    elif not now:
        what = f"{path} is gone"
    else:
        what = f"{path} changed"
    cell = dict(deps.cells).get(path)
    if cell is None:
        return what
    verb = "imported" if path in deps.imports else "read"
    if not before:
        verb = "looked for"
    return f"{what} ({verb} in code cell {cell})"


class Dependencies(NamedTuple):
    """What a result depended on besides its code, recorded while it ran.

    Paths are POSIX and relative to the page's folder (``../data/x.csv`` for a file elsewhere
    in the project), so a copy of a page elsewhere matches only where the same relative files
    have the same content. ``files`` maps each entry (see the module's docstring) to its
    digest; ``packages`` maps each distribution imported to its version; ``environment`` holds
    the Python version and the kernel spec (and, for a Python kernel that refused the tracer,
    why: :attr:`untraced`).
    """

    files: tuple[tuple[str, str], ...] = ()  # (entry name, digest), sorted
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

    def entries(self) -> Iterator[tuple[Entry, str]]:
        """Every recorded entry, read, with its digest."""
        for name, digest in self.files:
            yield parse(name), digest

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
        from ._json import canonical_json

        return canonical_json([dict(self.files), dict(self.packages), dict(self.environment)])
