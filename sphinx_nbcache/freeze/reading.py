"""Frozen results read back: one page's, and the lookup's source of them.

A build asks the frozen folder for the pages whose key the cache holds no result of
(:func:`frozen_source`, registered with :mod:`~sphinx_nbcache.plan.sources`). A frozen result
of the same key is put in the cache (so the merge, the next build and every front door find it
there) and judged like any cached result: its recorded dependencies must still hold. Where the
page's kernel is not installed (CI with no kernels), the Python and package versions it
recorded cannot be compared with anything: only its files are checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CorruptCacheError, NbcacheError
from ..records import Outputs, Record
from .files import images_folder, page_file, parse_frozen

if TYPE_CHECKING:
    from ..config import Options
    from ..notebooks.pages import Page
    from ..plan.sources import Kept
    from ..store import Store

__all__ = ["frozen_source", "portable", "read_frozen"]

_IMAGE_NAME = re.compile(r"[0-9a-f]{20}\.[a-z]{3,4}")


def read_frozen(folder: Path, page: str) -> tuple[Record, Outputs] | None:
    """The frozen result of ``page`` (None: none is frozen); :class:`CorruptCacheError`
    naming the file if it cannot be read."""
    path = page_file(folder, page)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CorruptCacheError(str(path), f"cannot be read: {exc.strerror or exc}") from None
    images = images_folder(folder, page)

    def image(name: str) -> bytes:
        if not _IMAGE_NAME.fullmatch(name):
            raise ValueError(f"bad image name {name!r}")
        try:
            return (images / name).read_bytes()
        except OSError as exc:
            raise ValueError(f"its image {name} cannot be read: {exc.strerror or exc}") from None

    try:
        record, outputs = parse_frozen(data, image)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptCacheError(
            str(path), f"is not a frozen result ({exc}); run `nbcache freeze` again"
        ) from None
    if record.page != page:
        raise CorruptCacheError(str(path), f"holds the result of {record.page!r}, not {page!r}")
    return record, outputs


def portable(record: Record) -> Record:
    """``record`` as it can be checked on this machine: where its kernel is not installed,
    without the Python and package versions (nothing here could be compared with them)."""
    from ..plan.environment import kernel_fingerprint

    deps = record.dependencies
    if deps is None or kernel_fingerprint(record.kernel or "python3") != "missing":
        return record
    kept = tuple((k, v) for k, v in deps.environment if k != "python")
    return record._replace(dependencies=deps._replace(packages=(), environment=kept))


def frozen_source(options: Options, store: Store) -> Kept | None:
    """The frozen results of a project, for the lookup (None: it has no frozen folder)."""
    folder = options.freeze_folder
    if folder is None:
        return None

    def kept(missing: Sequence[tuple[Page, str]]) -> dict[str, list[Record]]:
        found: dict[str, list[Record]] = {}
        for page, key in missing:
            try:
                frozen = read_frozen(folder, page.name)
            except CorruptCacheError as exc:
                store.notices.append(f"frozen result not used: {exc}")
                continue
            if frozen is None or frozen[0].key != key:
                continue  # none, or of other code: it cannot be this page's result
            record, outputs = frozen
            record = portable(record)
            if not store.read_only:  # in the cache: merged, and found there next time
                try:
                    record = store.put(record, outputs)
                except (NbcacheError, ValueError) as exc:  # refused: never shown
                    store.notices.append(f"frozen result of {page.name} not used: {exc}")
                    continue
            found[key] = [record]
        return found

    return kept
