"""What the environment remembers of the cache, and when that is enough to plan a build.

After reading, the build keeps the cache's change token in the environment if every notebook
page's doctree shows what the cache holds (``shown``). While the token is unchanged, a build
whose changed pages (if any) kept their code is planned from the environment alone
(``plan_from_memory``): with no changed page it needs nothing from the cache; after prose
edits, the outputs those pages show are read from their blobs, without opening the database.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Options
from ..errors import NotebookReadError
from ..plan import Memo, Page, PageState, inspect_page, still_valid
from ..readers import is_notebook

if TYPE_CHECKING:
    from ._state import Rendered

__all__ = ["not_a_notebook", "plan_from_memory", "shown"]


def plan_from_memory(
    env: Any,
    memos: dict[str, Memo],
    rendered: dict[str, Rendered],
    to_read: set[str],
    options: Options,
    md_config: Any = None,
) -> list[PageState] | None:
    """Plan without the database, given that the cache is unchanged since the doctrees agreed
    with it: every other page must still have the size and modification time it was read
    with, and each page to read the code of the result it shows (a prose edit). None when
    that does not hold, or cannot be known without looking."""
    found = env.found_docs
    others = (name for name in found if name not in to_read)
    for docname in others:
        memo = memos.get(docname)
        if memo is None or not still_valid(memo, Path(env.doc2path(docname))):
            return None
    states = []
    for docname in sorted(to_read & set(found)):
        path = Path(env.doc2path(docname))
        if not is_notebook(path, options):
            memos[docname] = not_a_notebook(path)
            continue
        seen = rendered.get(docname)
        if seen is None or seen.status != "ok" or not seen.key or not seen.created:
            return None
        try:
            _, _, memo = inspect_page(Page(docname, path), options, md_config)
        except (NotebookReadError, OSError):
            return None
        if memo.key != seen.key or memo.mode != "cache" or memo.excluded:
            return None
        memos[docname] = memo
        from ..records import Record  # here: a build with nothing changed never needs it

        record = Record(seen.key, "ok", seen.blob, runtime=seen.runtime, created=seen.created)
        states.append(PageState(Page(docname, path), "cached", key=memo.key, record=record))
    return states


def shown(state: PageState, seen: Rendered | None) -> bool:
    """Can the page's doctree (``seen`` when it was read) stay as it is? Failed pages are read
    again in every build, so that their warnings (and ``-W``) do not depend on what changed."""
    if state.verdict in ("excluded", "off", "as-is"):
        return True  # rendered from the page alone
    if state.verdict != "cached" or state.record is None:
        return False  # stale, failed or unreadable: read (and executed) again
    return seen is not None and seen.blob == state.record.blob


def not_a_notebook(path: Path) -> Memo:
    stat = path.stat()
    return Memo(stat.st_mtime_ns, stat.st_size, None, "", False, False)
