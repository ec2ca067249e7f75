"""Is a stored result still valid? Its recorded dependencies against the files and the
environment now, and why not.

A result is reused only while every entry it recorded (:mod:`~sphinx_nbcache.dependencies`:
files read or imported, globs declared, other notebooks' code, ...) has the same digest now,
every declared dependency (``nbcache_dependencies``) was recorded, and, as
``nbcache_environment`` says, the kernel spec, the Python version and the versions of the
packages it imported are the same. Each entry's digest is worked out by its kind's resolver;
this module registers the core's three (``file``, ``glob``, ``code``). Files are hashed once
per content: a memo keyed by path remembers the hash for a size and modification time.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import itertools
import os
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path, PurePosixPath
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

from ..dependencies import CODE, FILE, GLOB, Entry, describe_change, name_of, register, resolver
from ..notebooks.hashing import declared_in
from .environment import MEMORY_NAME, KernelEnvironment

if TYPE_CHECKING:
    from ..config import Options
    from ..notebooks.readers import MdConfig
    from ..records import Dependencies, Record

__all__ = ["MAX_GLOB_FILES", "FileMemo", "Freshness", "declared_patterns", "describe_fresh"]

FileMemo = MutableMapping[str, tuple[int, int, str]]  # path -> (mtime_ns, size, sha256)
#: files a glob may match at most (one from a tampered record could walk a whole disk)
MAX_GLOB_FILES = 100_000


def declared_patterns(
    page: str, options: Options, notebook: Mapping[str, Any] | None = None
) -> list[str]:
    """The file globs a page declares it depends on: ``nbcache_dependencies`` entries whose
    page glob matches the page's name, then (given the notebook) its ``nbcache.depends``."""
    patterns: list[str] = []
    for page_glob, files in options.dependencies:
        if fnmatch.fnmatchcase(page, page_glob):
            patterns.extend(files)
    if notebook is not None:
        patterns.extend(declared_in(notebook))
    return list(dict.fromkeys(patterns))


class Freshness:
    """Checks results against the files and environment of this machine, now (the
    :class:`~sphinx_nbcache.dependencies.Context` the kinds' resolvers are given)."""

    def __init__(
        self,
        options: Options,
        root: Path | None = None,
        files: FileMemo | None = None,
        md_config: MdConfig = None,
    ) -> None:
        self.options = options
        self.root = root.resolve() if root is not None else None
        self.md_config = md_config
        self.memo: FileMemo = {} if files is None else files
        self.kernels = KernelEnvironment(options.cache_path / MEMORY_NAME)
        #: set when nothing that chooses kernels or installs packages changed since the
        #: environment was last checked (:func:`~sphinx_nbcache.plan.environment.stamp_holds`)
        self.environment_unchanged = False
        #: (kind, target, folder) -> digest now: resolvers other than files' run once a check
        self.known: dict[tuple[str, str, str], str] = {}
        self._folders: dict[Path, Path] = {}  # a page's folder -> the same, symlinks resolved

    # -- what entries are now -----------------------------------------------------------------

    def file_hash(self, path: str | Path) -> str:
        """The SHA-256 of a regular file's content; "" when there is none."""
        key = str(path)
        try:
            stat = os.stat(key)
        except OSError:
            self.memo.pop(key, None)
            return ""
        if not S_ISREG(stat.st_mode):
            return ""
        known = self.memo.get(key)
        if known is not None and known[0] == stat.st_mtime_ns and known[1] == stat.st_size:
            return known[2]
        digest = hashlib.sha256()
        try:
            with open(key, "rb", opener=_nonblocking) as handle:
                if not S_ISREG(os.fstat(handle.fileno()).st_mode):
                    return ""  # replaced since the stat
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except OSError:
            return ""
        self.memo[key] = (stat.st_mtime_ns, stat.st_size, digest.hexdigest())
        return digest.hexdigest()

    def digest(self, entry: Entry, folder: Path) -> str | None:
        """The digest of ``entry`` for a page in ``folder`` now (None: it cannot be known
        here: its target is outside the project, or its kind's module is not loaded)."""
        resolve = resolver(entry.kind)
        if resolve is None or entry.problem() is not None:
            return None
        real = self._folders.get(folder)
        if real is None:  # compared with the resolved root: both without symlinks
            real = self._folders[folder] = folder.resolve()
        folder = real
        if entry.kind is not FILE and entry.path(folder, self.root) is None:
            return None  # ``glob:../../**``, ``code:../../x``: not the project's to check
        if entry.kind is FILE:
            return resolve(entry.target, folder, self)
        memo = (entry.kind.name, entry.target, str(folder))
        if memo not in self.known:
            self.known[memo] = resolve(entry.target, folder, self)
        return self.known[memo]

    def declared(self, patterns: Iterable[str], folder: Path) -> tuple[tuple[str, str], ...]:
        """The ``glob:`` entries a run of a page in ``folder`` records for its declarations."""
        found = []
        for pattern in patterns:
            entry = Entry(GLOB, pattern, name_of(GLOB, pattern))
            found.append((entry.name, self.digest(entry, folder) or ""))
        return tuple(found)

    # -- checking -----------------------------------------------------------------------------

    def stale_reason(
        self, record: Record, folder: Path, declared: Iterable[str] = ()
    ) -> str | None:
        """None if ``record`` is valid for a page in ``folder``; else what changed."""
        return self.check(record.dependencies, record.kernel, folder, declared)

    def check(
        self,
        deps: Dependencies | None,
        kernel: str,
        folder: Path,
        declared: Iterable[str] = (),
    ) -> str | None:
        """None if a result with these dependencies (run by ``kernel``) is valid for a page
        in ``folder`` that declares ``declared``; else what changed."""
        recorded = dict(deps.files) if deps is not None else {}
        for pattern in declared:
            if name_of(GLOB, pattern) not in recorded:
                return f"{pattern} is a declared dependency the cached result did not have"
        if deps is None:
            return None  # recorded before dependencies were: nothing to check
        for entry, before in deps.entries():
            now = self.digest(entry, folder)
            if now is None:
                problem = entry.problem()
                if problem is not None:
                    return describe_change(entry, before, "", deps)
                return f"{entry.name} cannot be checked here ({entry.kind.name} dependency)"
            if now != before:
                return describe_change(entry, before, now, deps)
        return self._environment_change(kernel or "python3", deps)

    def _environment_change(self, kernel: str, deps: Dependencies) -> str | None:
        scope = self.options.environment
        if scope == "off" or self.environment_unchanged:
            return None
        environment = dict(deps.environment)
        recorded_spec = environment.get("kernel")
        if recorded_spec and recorded_spec != self.kernels.fingerprint(kernel):
            return f"the {kernel!r} kernel spec changed"
        recorded_python = environment.get("python")
        if recorded_python:
            now = self.kernels.python(kernel)
            if now is not None and now != recorded_python:
                return f"Python {_bare(recorded_python)} -> {_bare(now)}"
        if scope == "packages":
            for distribution, version in deps.packages:
                now = self.kernels.version(kernel, distribution)
                if now != version:
                    return f"{distribution} {version} -> {now or 'not installed'}"
        return None


# -- the core's kinds ---------------------------------------------------------------------------


def _file(target: str, folder: Path, context: Any) -> str:
    path = Entry(FILE, target, target).path(folder, context.root)
    return "" if path is None else str(context.file_hash(path))


def _glob(pattern: str, folder: Path, context: Any) -> str:
    """One hash over the files a declared glob matches now (their paths and contents); only
    files inside the project count, and at most :data:`MAX_GLOB_FILES`."""
    root = context.root
    base = root if pattern.startswith("/") and root is not None else folder
    inside = str(root if root is not None else folder)
    digest = hashlib.sha256()
    relative_pattern = pattern.lstrip("/")
    if ".." in PurePosixPath(relative_pattern).parts[_first_magic(relative_pattern) :]:
        return "outside"  # ``**/../..``: not a pattern of the project's files
    found = glob.iglob(relative_pattern, root_dir=base, recursive=True)
    for relative in sorted(itertools.islice(found, MAX_GLOB_FILES)):
        path = os.path.normpath(os.path.join(base, relative))
        if not (path == inside or path.startswith(inside.rstrip(os.sep) + os.sep)):
            continue
        if os.path.isfile(path):
            digest.update(f"{PurePosixPath(relative)}\0{context.file_hash(path)}\n".encode())
    return digest.hexdigest()


def _first_magic(pattern: str) -> int:
    parts = PurePosixPath(pattern).parts
    return next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))


def _code(target: str, folder: Path, context: Any) -> str:
    """The cache key of the notebook at ``target`` as written ("" if it cannot be read)."""
    from ..errors import NotebookReadError
    from ..notebooks.pages import Page
    from ..notebooks.runnable import read_runnable

    path = Entry(CODE, target, target).path(folder, context.root)
    if path is None:
        return ""
    try:
        return read_runnable(Page(target, path), context.options, context.md_config).key
    except (NotebookReadError, OSError):
        return ""


register("file", _file)
register("glob", _glob)
register("code", _code)


def _nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)  # a FIFO put in a file's place never blocks


def describe_fresh(record: Record) -> str:
    """``data.csv, helpers.py and 4 packages unchanged`` (what a fresh result was checked
    against; files named, up to three)."""
    deps = record.dependencies
    if deps is None:
        return "no dependencies recorded (cached before sphinx-nbcache recorded them)"
    counted: dict[str, list[str]] = {}
    for entry, _digest in deps.entries():
        counted.setdefault(entry.kind.counted_as, []).append(entry.target)
    files = counted.pop("file", [])
    shown = ", ".join(files) if 0 < len(files) <= 3 else _count(len(files), "file")
    parts = [shown, _count(len(deps.packages), "package")]
    for noun, targets in sorted(counted.items()):
        parts.append(_count(len(targets), noun))
    fresh = f"{', '.join(parts[:-1])} and {parts[-1]} unchanged"
    if deps.untraced:
        fresh += f"; what it read is not known (its kernel refused the tracer: {deps.untraced})"
    return fresh


def _count(n: int, one: str) -> str:
    many = one[:-1] + "ies" if one.endswith("y") else one + "s"
    return f"{n} {one if n == 1 else many}"


def _bare(python: str) -> str:
    return python.removeprefix("CPython ")
