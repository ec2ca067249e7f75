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
from typing import TYPE_CHECKING

from ..notebooks.hashing import code_sources

if TYPE_CHECKING:
    from ..records import Record
    from .verdicts import PageState

__all__ = ["cycles", "order_by_reads", "reads_of"]

#: a read of another notebook named by a string literal in a code cell
_READ = re.compile(
    r"\b(?:read_notebooks?|run_notebook|run)\(\s*(?:[rR])?(?P<q>['\"])(?P<path>[^'\"\n]+)(?P=q)"
)


def reads_of(state: PageState, pages: Mapping[Path, str], last: Record | None) -> set[str]:
    """The pages ``state``'s page reads: named in its code, or read by its last run."""
    folder = state.page.path.parent
    found: set[str] = set()
    sources = code_sources(state.notebook) if state.notebook is not None else []
    for source in sources:
        for match in _READ.finditer(source):
            found |= _pages_at(folder / match.group("path"), pages)
    deps = last.dependencies if last is not None else None
    for relative, _digest in deps.files if deps is not None else ():
        if ":" not in relative:  # not a glob: or variants: entry
            name = pages.get((folder / relative).resolve())
            if name is not None:
                found.add(name)
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
    by_name = {s.page.name: s for s in ordered}
    waiting = {name: {r for r in reads.get(name, ()) if r in by_name} for name in by_name}
    result: list[PageState] = []
    done: set[str] = set()
    while len(done) < len(by_name):
        ready = [s for s in ordered if s.page.name not in done and not waiting[s.page.name] - done]
        if not ready:  # a cycle: what is left keeps its order
            left = [s for s in ordered if s.page.name not in done]
            found = cycles({s.page.name: waiting[s.page.name] - done for s in left})
            return result + left, found
        for state in ready:
            result.append(state)
            done.add(state.page.name)
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
