"""Which stale page runs first, when pages read each other's results.

A page that reads another page's result (``read_notebook``, ``read_notebooks``, ``run``) waits
for it during a build. Waiting is safe but wasteful if the reader holds a worker while the page
it waits for is still queued, and with one worker it would never end. So the pages a stale
page reads run first: those its code names in a literal (``read_notebooks("stations")``), and
those its last run read (its recorded files that are pages). Pages that read each other (a
cycle) cannot both be first: each is a located warning, and their reads do not wait.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..notebooks.hashing import code_sources

if TYPE_CHECKING:
    from ..records import Record
    from ..store import Store
    from .verdicts import PageState

__all__ = ["cycles", "execution_order", "order_by_reads", "reads_of"]

#: a read of another notebook named by a string literal in a code cell
_READ = re.compile(
    r"\b(?:read_notebooks?|run_notebook|run)\(\s*(?:[rR])?(?P<q>['\"])(?P<path>[^'\"\n]+)(?P=q)"
)


def reads_of(
    state: PageState, pages: Mapping[Path, str], last: Record | None, root: Path | None = None
) -> set[str]:
    """The pages ``state`` reads: named in its code, or read by its last run (files it read
    that are pages, and the notebooks whose results it read: ``code:`` entries)."""
    folder = state.page.path.parent
    found: set[str] = set()
    sources = code_sources(state.run.notebook) if state.run is not None else []
    for source in sources:
        for match in _READ.finditer(source):
            found |= _pages_at(folder / match.group("path"), pages)
    deps = last.dependencies if last is not None else None
    for entry, _digest in deps.entries() if deps is not None else ():
        if entry.kind.reads_page:
            path = entry.path(folder, root)
            name = pages.get(path.resolve()) if path is not None else None
            if name is not None:
                found.add(name)
    if state.variant == "":  # a page does not wait for itself; a variant waits for its page
        found.discard(state.page.name)
    return found


def _pages_at(target: Path, pages: Mapping[Path, str]) -> set[str]:
    try:
        resolved = target.resolve()
    except OSError:
        return set()
    if resolved in pages:
        return {pages[resolved]}
    if resolved.is_dir():
        return {name for path, name in pages.items() if path.is_relative_to(resolved)}
    if any(c in str(target) for c in "*?["):
        return {name for path, name in pages.items() if path.match(str(resolved))}
    return set()


def order_by_reads(
    ordered: list[PageState], reads: Mapping[str, set[str]]
) -> tuple[list[PageState], list[list[str]]]:
    """``ordered`` (stale pages by priority) with every page after the stale pages it reads;
    and the cycles found (pages that read each other), whose pages keep their place."""
    by_id = {s.id: s for s in ordered}
    waiting = {i: {r for r in reads.get(i, ()) if r in by_id} for i in by_id}
    result: list[PageState] = []
    done: set[str] = set()
    while len(done) < len(by_id):
        ready = [s for s in ordered if s.id not in done and not waiting[s.id] - done]
        if not ready:  # a cycle: what is left keeps its order
            left = [s for s in ordered if s.id not in done]
            found = cycles({s.id: waiting[s.id] - done for s in left})
            return result + left, found
        for state in ready:
            result.append(state)
            done.add(state.id)
            break  # take the first ready by priority, then look again
    return result, []


def cycles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The cycles of a small graph (strongly connected parts of two or more pages, or a page
    reading itself), each sorted, found by Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str, follow: Callable[[str], Iterable[str]]) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in follow(node):
            if nxt not in index:
                visit(nxt, follow)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                part.append(top)
                if top == node:
                    break
            if len(part) > 1 or node in set(edges.get(node, ())):
                found.append(sorted(part))

    def follow(node: str) -> Iterable[str]:
        return [n for n in edges.get(node, ()) if n in edges]

    for node in sorted(edges):
        if node not in index:
            visit(node, follow)
    return sorted(found)


def execution_order(
    stale: list[PageState],
    store: Store,
    root: Path | None = None,
    warn: Callable[[str, str, str], Any] | None = None,
) -> list[PageState]:
    """The order to execute stale pages (and variants) in: longest recorded run time first (it
    shortens the whole run when there are more pages than workers); those with no recorded run
    time first of all, in their given order, since nothing says they are short. One that reads
    another stale page's result runs after it; pages reading each other are warned about
    (``warn(page, message, subtype)``) and do not wait for each other."""
    previous = store.page_keys()
    old = store.lookup(previous[s.page.name] for s in stale if s.page.name in previous)
    last: dict[str, Record] = {}
    for state in stale:
        records = old.get(previous.get(state.page.name, ""), [])
        if records and state.variant == "":
            last[state.id] = records[0]
    runtime = {i: r.runtime for i, r in last.items() if r.runtime > 0}
    unknown = [s for s in stale if s.id not in runtime]
    known = sorted((s for s in stale if s.id in runtime), key=lambda s: -runtime[s.id])
    if len(stale) < 2:
        return unknown + known
    paths = {s.page.path.resolve(): s.page.name for s in stale if s.variant == ""}
    reads = {s.id: reads_of(s, paths, last.get(s.id), root) for s in stale}
    ordered, loops = order_by_reads(unknown + known, reads)
    by_id = {s.id: s for s in stale}
    for loop in loops:
        for name in loop:
            others = ", ".join(n for n in loop if n != name) or "itself"
            by_id[name].no_wait = True
            if warn is not None:
                warn(
                    by_id[name].page.name,
                    f"this page and {others} read each other's results, so neither can run "
                    "first: their reads do not wait (a read of a result not there yet fails); "
                    "break the cycle",
                    "cycle",
                )
    return ordered
