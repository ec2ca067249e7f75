"""What a notebook that reads or calls another depends on, told to the kernel's tracer.

Inside a notebook a build executes, reading another page's result (or calling a notebook)
makes what that result came from a dependency of the reader: the page's code (its key, not
its prose), every file the result read, the files its declared globs match, the packages it
imported, and what it read in turn. The reader then runs again when the result it read would
change, and only then. Outside such a notebook (no tracer) nothing is recorded.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..dependencies import CODE, FILE, GLOB, VARIANTS, Entry, name_of
from ..execute.inkernel import Tracer

if TYPE_CHECKING:
    from ..notebooks.pages import Page
    from ..plan.freshness import Freshness
    from ..records import Record

__all__ = ["depend_on", "unrecorded"]


@contextlib.contextmanager
def unrecorded(tracer: Tracer | None) -> Iterator[None]:
    """Files opened meanwhile are not recorded as read by the notebook (no tracer: nothing)."""
    if tracer is None:
        yield
        return
    with tracer.unrecorded():
        yield


def depend_on(tracer: Tracer, page: Page, key: str, record: Record, check: Freshness) -> None:
    """Make ``record`` (a result of ``page``, whose code as written has ``key``: a variant's
    or a call's result too) a dependency of the notebook the ``tracer`` watches; ``check``
    works out what declared globs match now."""
    folder = page.path.parent
    tracer.read_code(page.path, key)
    deps = record.dependencies
    if deps is None:
        return
    tracer.read_packages(dict(deps.packages))
    for entry, digest in deps.entries():
        target = entry.path(folder, tracer.root)
        if target is None:
            continue  # outside the project: not followed (as files read outside are not)
        if entry.kind is CODE:
            tracer.read_code(target, digest)
        elif entry.kind is VARIANTS:
            tracer.read_variants(target, digest)
        elif entry.kind is GLOB:
            _read_glob(tracer, entry, target, folder, check)
        elif entry.kind is FILE:
            tracer.read_file(target)


def _read_glob(tracer: Tracer, entry: Entry, target: Path, folder: Path, check: Freshness) -> None:
    """The read page's declared glob, anchored at the project root (``/...``) so that it
    matches the same files from the reader's folder, with what it matches now."""
    root = tracer.root.resolve()
    where = Path(os.path.normpath(target))
    if not where.is_relative_to(root):
        return
    anchored = "/" + where.relative_to(root).as_posix()
    if not tracer.knows_glob(anchored):
        glob_entry = Entry(GLOB, anchored, name_of(GLOB, anchored))
        with tracer.unrecorded():
            tracer.read_glob(anchored, check.digest(glob_entry, folder) or "")
