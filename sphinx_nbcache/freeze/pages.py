"""``nbcache freeze``: the current pages' results frozen, and frozen results checked.

:func:`freeze_pages` writes the result each page shows (its current result, from the cache or
from the frozen folder itself) and lists the pages it could not freeze (no current result: run
a build or ``nbcache execute`` first). :func:`check_pages` compares each frozen result with the
page now, as a build would: the key (code, settings, ``{eval}`` expressions), then what the run
depended on; it runs no kernel and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import CorruptCacheError, NotebookReadError
from ..notebooks.expressions import keyed
from ..plan.diff import diff_page
from ..plan.freshness import describe_fresh
from ..plan.parse import inspect_page
from .reading import portable, read_frozen
from .writing import frozen_pages, remove_frozen, write_frozen

if TYPE_CHECKING:
    from ..config import Options
    from ..engine.cache import ProjectCache, Target
    from ..notebooks.runnable import Runnable
    from ..plan.memo import Memo
    from ..plan.verdicts import PageState
    from ..records import Outputs, Record

__all__ = ["Frozen", "changed_since_frozen", "check_pages", "freeze_pages", "frozen_only_warning"]


class Frozen(NamedTuple):
    """What freezing (or checking) did with one page."""

    page: str
    #: freezing: ``written``, ``unchanged``, ``removed``, ``not frozen``; checking:
    #: ``fresh``, ``out of date``, ``missing``, ``not executed``
    state: str
    reason: str = ""
    files: tuple[str, ...] = ()  # written or removed, relative to the folder

    @property
    def bad(self) -> bool:
        """Something to look at: a page not frozen, or a frozen result not current."""
        return self.state in ("not frozen", "out of date", "missing")

    def to_json(self) -> dict[str, Any]:
        return {**self._asdict(), "files": list(self.files)}


def freeze_pages(
    cache: ProjectCache, targets: Iterable[Target] | None, folder: Path
) -> list[Frozen]:
    """Freeze the current result of each page (every page without ``targets``, and then the
    frozen files of pages that are gone are removed)."""
    pages = cache.pages(targets)
    states = cache.engine().plan(pages)
    root = cache.project.root
    done: list[Frozen] = []
    for state in states:
        name = state.page.name
        if state.verdict in ("cached", "failed") and state.record is not None:
            outputs = cache.store.load_outputs(state.record)
            changed = write_frozen(folder, name, state.record, outputs, cache.options, root)
            done.append(
                Frozen(name, "written" if changed else "unchanged", "", _names(changed, folder))
            )
        elif state.verdict in ("stale", "unreadable"):
            why = f"{state.verdict}: {state.reason}; build the docs or run `nbcache execute`"
            done.append(Frozen(name, "not frozen", why))
        else:  # never executed (off, excluded, shown as written): nothing to freeze
            removed = remove_frozen(folder, name)
            if removed:
                done.append(Frozen(name, "removed", state.reason, _names(removed, folder)))
    if targets is None:
        known = {page.name for page in pages}
        for name in frozen_pages(folder):
            if name not in known:
                removed = remove_frozen(folder, name)
                done.append(Frozen(name, "removed", "no such page", _names(removed, folder)))
    return done


def check_pages(
    cache: ProjectCache, targets: Iterable[Target] | None, folder: Path
) -> list[Frozen]:
    """Is each page's frozen result the one a build would show (no kernel is run)?"""
    lookup = cache.engine().lookup
    found = []
    for page in cache.pages(targets):
        try:
            run, memo = inspect_page(page, cache.options, cache.project.md_config)
        except (NotebookReadError, OSError) as exc:
            found.append(Frozen(page.name, "out of date", f"cannot be read: {exc}"))
            continue
        if not _executed(memo):
            found.append(Frozen(page.name, "not executed", ""))
            continue
        try:
            frozen = read_frozen(folder, page.name)
        except CorruptCacheError as exc:
            found.append(Frozen(page.name, "out of date", str(exc)))
            continue
        if frozen is None:
            found.append(Frozen(page.name, "missing", "no frozen result: run `nbcache freeze`"))
            continue
        record, outputs = frozen
        if record.key != run.key:
            changed = f"changed since frozen: {_code_change(run, record, outputs)}"
            found.append(Frozen(page.name, "out of date", changed))
            continue
        held = portable(record)
        reason = lookup.check(page)(held)
        if reason is not None:
            found.append(Frozen(page.name, "out of date", reason))
        else:
            found.append(Frozen(page.name, "fresh", describe_fresh(held)))
    return found


def changed_since_frozen(folder: Path | None, run: Runnable) -> str | None:
    """What changed in ``run``'s page since its frozen result was made (None: no frozen
    result of other code, or none that can be read)."""
    try:
        frozen = read_frozen(folder, run.page.name) if folder is not None else None
    except CorruptCacheError:
        return None
    if frozen is None or frozen[0].key == run.key:
        return None
    return f"changed since frozen: {_code_change(run, *frozen)}"


def frozen_only_warning(state: PageState, run: Runnable, options: Options) -> str | None:
    """What a build that may not execute (``nbcache_frozen_only``) says of a page with no
    current result (None: it has one)."""
    if not state.stale:
        return None
    reason = state.reason
    if state.record is None:  # no result of this code: what changed since it was frozen
        reason = changed_since_frozen(options.freeze_folder, run) or reason
    return (
        f"not executed (nbcache_frozen_only): {reason}; shown without outputs (build where a "
        "kernel may run and `nbcache freeze` to bring it up to date)"
    )


def _executed(memo: Memo) -> bool:
    if memo.excluded or memo.mode == "off":
        return False
    return not (memo.mode == "auto" and memo.has_outputs)


def _code_change(run: Runnable, record: Record, outputs: Outputs) -> str:
    """Which code cells, settings or ``{eval}`` expressions differ from the frozen run's."""
    diff = diff_page(
        run.page.name, run.notebook, run.options, run.key, record, outputs.sources, None
    )
    parts = [change.describe() for change in diff.cells]
    parts += [f"{name}: {old!r} -> {new!r}" for name, old, new in diff.settings]
    frozen = [[e["after"], e["source"]] for e in outputs.expressions or ()]
    if frozen != keyed(run.expressions):
        parts.append("{eval} expressions changed")
    return ", ".join(parts) or diff.summary()


def _names(paths: Iterable[Path], folder: Path) -> tuple[str, ...]:
    return tuple(path.relative_to(folder).as_posix() for path in paths)
