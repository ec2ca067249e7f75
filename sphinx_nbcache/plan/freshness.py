"""Is a stored result still valid? Its recorded dependencies against the files and the
environment now, and why not.

A result is reused only while every file it read or imported hashes the same (relative to the
page's folder, so a copy of a page elsewhere matches only where its neighbours match), every
file it looked for and did not find is still absent, every declared dependency
(``nbcache_dependencies``, the notebook's ``nbcache.depends``) matches the same files with the
same contents, and, as ``nbcache_environment`` says, the kernel spec, the Python version and
the versions of the packages it imported are the same. Files are hashed once per content: a
memo keyed by path remembers the hash for a size and modification time.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import os
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path, PurePosixPath
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

from ..notebooks.hashing import declared_in
from .environment import MEMORY_NAME, KernelEnvironment

if TYPE_CHECKING:
    from ..config import Options
    from ..records import Dependencies, Record

__all__ = [
    "CODE",
    "DECLARED",
    "PAGES",
    "VARIANTS",
    "Freshness",
    "code_digest",
    "declared_patterns",
    "describe_fresh",
]

#: How a declared dependency is named among a result's files: ``glob:<pattern>``.
DECLARED = "glob:"
#: How reading a notebook's page variants is named among a result's files:
#: ``variants:<notebook>``, its digest the ``nbcache-notebook`` directives that show it.
VARIANTS = "variants:"
#: How reading another notebook's result is named among a result's files: ``code:<notebook>``,
#: its digest that notebook's cache key (its code, not its prose).
CODE = "code:"
#: How listing the pages of a folder (or a glob) is named among a result's files:
#: ``pages:<folder or glob>``, its digest the names of the notebook pages found there.
PAGES = "pages:"


def code_digest(path: Path, options: Options) -> str:
    """The cache key of the notebook at ``path`` as written ("" if it cannot be read)."""
    from ..errors import NotebookReadError
    from ..notebooks.hashing import notebook_key
    from ..notebooks.readers import read_notebook

    try:
        notebook = read_notebook(path, options)
    except (NotebookReadError, OSError):
        return ""
    return notebook_key(notebook, options.for_notebook(notebook.get("metadata", {})))


FileMemo = MutableMapping[str, tuple[int, int, str]]  # path -> (mtime_ns, size, sha256)


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
    """Checks results against the files and environment of this machine, now."""

    def __init__(
        self, options: Options, root: Path | None = None, files: FileMemo | None = None
    ) -> None:
        self.options = options
        self._variants: dict[str, str] = {}  # notebook -> digest of its variants now
        self._listings: dict[str, str] = {}  # folder or glob -> digest of its pages now
        self.root = root.resolve() if root is not None else None
        self.memo: FileMemo = {} if files is None else files
        self.kernels = KernelEnvironment(options.cache_path / MEMORY_NAME)
        #: set when nothing that chooses kernels or installs packages changed since the
        #: environment was last checked (:func:`~sphinx_nbcache.plan.environment.stamp_holds`)
        self.environment_unchanged = False

    # -- files --------------------------------------------------------------------------------

    def file_hash(self, path: str | Path) -> str:
        """The SHA-256 of a file's content; "" when it does not exist (or is not a file)."""
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
            with open(key, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except OSError:
            return ""
        self.memo[key] = (stat.st_mtime_ns, stat.st_size, digest.hexdigest())
        return digest.hexdigest()

    def declared_digest(self, pattern: str, folder: Path) -> str:
        """One hash over the files a declared glob matches now (their paths and contents)."""
        base = self.root if pattern.startswith("/") and self.root is not None else folder
        found = sorted(glob.glob(pattern.lstrip("/"), root_dir=base, recursive=True))
        digest = hashlib.sha256()
        for relative in found:
            path = base / relative
            if path.is_file():
                digest.update(f"{PurePosixPath(relative)}\0{self.file_hash(path)}\n".encode())
        return digest.hexdigest()

    def variants_digest(self, notebook: Path) -> str:
        """What the project's ``nbcache-notebook`` directives showing ``notebook`` are now."""
        from ..workflows.variants import variants_digest

        if self.root is None:
            return ""
        known = self._variants.get(str(notebook))
        if known is None:
            known = self._variants[str(notebook)] = variants_digest(self.root, notebook)
        return known

    def listing_digest(self, target: str) -> str:
        """What the notebook pages in a folder (or matching a glob) are now, by name."""
        from ..workflows.reads import listing_digest

        known = self._listings.get(target)
        if known is None:
            known = self._listings[target] = listing_digest(target, self.root)
        return known

    def declared(self, patterns: Iterable[str], folder: Path) -> tuple[tuple[str, str], ...]:
        """The ``glob:`` entries a run of a page in ``folder`` records for its declarations."""
        return tuple((DECLARED + p, self.declared_digest(p, folder)) for p in patterns)

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
            if DECLARED + pattern not in recorded:
                return f"{pattern} is a declared dependency the cached result did not have"
        if deps is None:
            return None  # recorded before dependencies were: nothing to check
        base = str(folder)
        for path, digest in deps.files:
            if path.startswith(DECLARED):
                pattern = path[len(DECLARED) :]
                if self.declared_digest(pattern, folder) != digest:
                    return f"files matching {pattern} changed (declared dependency)"
                continue
            if path.startswith(CODE):
                read = path[len(CODE) :]
                if code_digest(folder / read, self.options) != digest:
                    return f"the code of {read} changed (its result was read)"
                continue
            if path.startswith(VARIANTS):
                shown = path[len(VARIANTS) :]
                if self.variants_digest(folder / shown) != digest:
                    return f"the variants of {shown} the pages show changed (it read them)"
                continue
            if path.startswith(PAGES):
                listed = path[len(PAGES) :]
                if self.listing_digest(os.path.join(base, listed)) != digest:
                    return f"the notebook pages in {listed} changed (it listed them)"
                continue
            now = self.file_hash(os.path.join(base, path))
            if now != digest:
                return _file_change(path, digest, now, deps)
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


def describe_fresh(record: Record) -> str:
    """``3 files and 4 packages unchanged`` (what a fresh result was checked against)."""
    deps = record.dependencies
    if deps is None:
        return "no dependencies recorded (cached before sphinx-nbcache recorded them)"
    files = sum(1 for path, _ in deps.files if not path.startswith((DECLARED, VARIANTS, CODE)))
    declared = len(deps.files) - files
    parts = [_count(files, "file"), _count(len(deps.packages), "package")]
    if declared:
        parts.append(_count(declared, "declared dependency", "declared dependencies"))
    fresh = f"{', '.join(parts[:-1])} and {parts[-1]} unchanged"
    if deps.untraced:
        fresh += f"; what it read is not known (its kernel refused the tracer: {deps.untraced})"
    return fresh


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _bare(python: str) -> str:
    return python.removeprefix("CPython ")


def _file_change(path: str, before: str, now: str, deps: Dependencies) -> str:
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
