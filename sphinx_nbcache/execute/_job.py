"""What an executor is given (:class:`Job`) and what it gives back (:class:`Outcome`).

A job carries everything another machine needs to run the notebook: the notebook itself, the
kernel's name, the limits, the page's folder *relative to the project*, and a
:class:`ProjectFiles` that says where the project is on the machine that made the job and can
pack the files of a folder for shipping. No absolute local path is assumed: an executor on
this machine runs the kernel in :meth:`Job.local_folder`; a remote one ships
:meth:`ProjectFiles.pack` and unpacks it with :func:`unpack_files` where the kernel runs.
"""

from __future__ import annotations

import fnmatch
import io
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..config import EnvironmentScope
from ..records import Failure, Outputs, Record

__all__ = [
    "DEFAULT_IGNORE",
    "EnvironmentScope",
    "Job",
    "Outcome",
    "ProjectFiles",
    "error_outcome",
    "unpack_files",
]

#: Never shipped with a job, nor captured as an artifact: caches, build output, VCS folders.
DEFAULT_IGNORE: tuple[str, ...] = (
    "__pycache__",
    "*.pyc",
    ".ipynb_checkpoints",
    ".git",
    ".hg",
    ".nox",
    ".tox",
    ".venv",
    "_build",
    ".nbcache",
    ".jupyter_cache",
)


@dataclass(frozen=True)
class ProjectFiles:
    """Where a project's files are, and how to ship a folder of them to another machine."""

    root: str  # the project folder on the machine that made the job (absolute)
    ignore: tuple[str, ...] = DEFAULT_IGNORE  # glob patterns on names, never shipped
    limit: int = 50_000_000  # bytes packed at most per job; bigger files are left out

    def local(self, folder: str) -> Path | None:
        """``folder`` (relative to the project) on this machine, if it exists here."""
        path = Path(self.root, *PurePosixPath(folder).parts)
        return path if path.is_dir() else None

    def files(self, folder: str) -> Iterator[tuple[str, Path]]:
        """(path relative to ``folder``, local path) of every file shipped with ``folder``."""
        base = self.local(folder)
        if base is None:
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not self.ignored(d))
            for name in sorted(filenames):
                if not self.ignored(name):
                    path = Path(dirpath, name)
                    yield path.relative_to(base).as_posix(), path

    def ignored(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.ignore)

    def pack(self, folder: str) -> tuple[bytes, list[str]]:
        """The files of ``folder`` as a ``.tar.gz`` (at most :attr:`limit` bytes of content),
        and the relative paths left out because the limit was reached."""
        import tarfile  # here: a build that sends no project files never imports it

        buffer = io.BytesIO()
        left_out: list[str] = []
        total = 0
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for relative, path in self.files(folder):
                try:
                    size = path.stat().st_size
                    if total + size > self.limit:
                        left_out.append(relative)
                        continue
                    tar.add(str(path), arcname=relative, recursive=False)
                except OSError:
                    continue  # vanished or unreadable: the notebook will say what it misses
                total += size
        return buffer.getvalue(), left_out


def unpack_files(data: bytes, target: str | Path) -> list[str]:
    """Unpack :meth:`ProjectFiles.pack` output into ``target``; returns the paths written.

    Only regular files with relative names that stay inside ``target`` are written."""
    import tarfile

    target = Path(target)
    written = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar:
            name = PurePosixPath(member.name)
            if not member.isfile() or name.is_absolute() or ".." in name.parts:
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            destination = target.joinpath(*name.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(handle.read())
            written.append(name.as_posix())
    return written


@dataclass(frozen=True)
class Job:
    """One notebook to execute in a fresh kernel. Picklable, so it can travel to workers."""

    key: str  # the cache key the result is stored under
    notebook: dict[str, Any]  # nbformat 4 JSON (outputs are ignored and replaced)
    page: str  # how to name it to the user: the page's name in the project
    folder: str = ""  # the page's folder relative to the project root, POSIX ("" = the root)
    files: ProjectFiles | None = None  # the project's files; None: no folder (run in temp)
    in_temp: bool = False  # run in a fresh empty folder instead of the page's folder
    kernel: str = "python3"
    timeout: float | None = 30.0  # seconds per cell; None: no limit
    allow_errors: bool = False
    output_limit: int = 1_000_000  # bytes of stream text kept per cell; 0: no limit
    environment: EnvironmentScope = "packages"  # what the run records of its environment
    artifact_limit: int = 50_000_000  # bytes of files written by the notebook kept with it
    #: declared dependencies, hashed on the machine that made the job: (``glob:`` + pattern,
    #: digest of the files it matched); added to the result's recorded dependencies
    declared: tuple[tuple[str, str], ...] = ()
    #: environment variables set for the kernel (a remote executor passes only these)
    env: tuple[tuple[str, str], ...] = field(default=())
    #: where the build keeps results (``cache_path``, ``database``, ``blobs``; never
    #: credentials): what ``read_notebook`` inside the notebook reads from
    store: tuple[tuple[str, str], ...] = ()
    #: the parameters injected into the notebook (None: the page as written), stored with
    #: the result, and the ``pages`` row it is kept as ("" the page as written; a variant's or a
    #: call's row: ``notebooks.runnable.variant_of``; None: worked out from the parameters)
    parameters: dict[str, Any] | None = None
    variant: str | None = None
    #: the page's inline expressions (``{eval}``): (code cells above it, its text), in order
    expressions: tuple[tuple[int, str], ...] = ()

    def local_folder(self) -> Path | None:
        """The folder to run the kernel in on this machine; None: a fresh empty folder."""
        if self.in_temp or self.files is None:
            return None
        return self.files.local(self.folder)


@dataclass(frozen=True)
class Outcome:
    """The result of one job: the record to store, the outputs it refers to, and the files the
    notebook wrote inside the project (path relative to the page's folder -> content, mtime).
    ``stored``: stored already where it ran (``execute._process``): the record is the stored
    one, its outputs and artifacts are in the store's blobs, not here."""

    record: Record
    outputs: Outputs | None
    artifacts: dict[str, tuple[bytes, float]] = field(default_factory=dict)
    stored: bool = False


def error_outcome(job: Job, failure: Failure) -> Outcome:
    """An outcome for a job that could not run at all (kept for this build only)."""
    record = Record(
        job.key,
        "error",
        None,
        kernel=job.kernel,
        failure=failure,
        page=job.page,
        created=time.time(),
    )
    return Outcome(record, None)
