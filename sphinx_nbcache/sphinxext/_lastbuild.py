"""The last build's verdicts, kept in the cache folder: a CI restore plans without the database.

A build folder deleted with the cache folder kept (CI restoring its cache into a fresh clone, a
``make clean``) has no environment to plan from (``_memory``), so each page would be looked up
in the database. But when the cache has not changed since a build whose every notebook page
showed what the cache holds, that build's answers still hold: after such a build, the cache
folder keeps, per project, each notebook page's digest (``parse.read_contents``: its bytes, its
reader and the options that decide its key), what reading it found and the result it showed,
under the cache's change token (``builds/<project>.json``). A build with a fresh environment
and the same token plans from it: a page with the same digest is not parsed, a page whose
prose changed is parsed and must have the same key, and each result is checked against the
files and the environment now (:func:`~sphinx_nbcache.plan.verdicts.decide`, as the database path
does). Any page that is new, whose code changed, that is stale, failed or set to ``force``, a
result that wrote files to put back, or a token that moved: the database plans, as if this
file did not exist. Outputs come from their blobs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._atomic import write_atomically
from ..notebooks.pages import Page
from ..notebooks.readers import is_notebook
from ..plan.memo import Memo, not_a_notebook

if TYPE_CHECKING:
    from sphinx.environment import BuildEnvironment

    from ..config import Options
    from ..notebooks.readers import MdConfig
    from ..plan.lookup import Lookup
    from ..plan.verdicts import PageState
    from ..records import Record

__all__ = ["keep_last_build", "last_build_path", "recall_last_build"]

_FORMAT = 1
#: verdicts a recalled page may have: the rest (stale, failed, unreadable) need the database
_RECALLED = ("cached", "excluded", "off", "as-is")


def last_build_path(options: Options, root: Path) -> Path:
    """Where the last build of the project in ``root`` is kept (one file per project)."""
    name = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return options.cache_path / "builds" / f"{name}.json"


def keep_last_build(
    options: Options, root: Path, token: str, states: list[PageState], memos: dict[str, Memo]
) -> bool:
    """Keep what every notebook page of a build showed, under ``token``; True if kept. Not
    kept when a page was not read to a digest or shows no result it could show again."""
    path = last_build_path(options, root)
    pages: dict[str, Any] = {}
    for state in states:
        memo = memos.get(state.page.name)
        if memo is None or memo.key is None or memo.digest is None:
            return False
        if state.verdict not in _RECALLED or state.variant != "":
            return False
        record = state.record if state.verdict == "cached" else None
        if state.verdict == "cached" and (record is None or record.artifacts):
            return False  # files to put back: the database path restores them
        pages[state.page.name] = {
            "digest": memo.digest,
            "memo": [memo.key, memo.mode, memo.has_outputs, memo.timeout, memo.sibling],
            "record": record.to_json() if record is not None else None,
        }
    data = {"format": _FORMAT, "token": token, "root": str(root.resolve()), "pages": pages}
    with suppress(OSError):
        path.parent.mkdir(exist_ok=True)
        write_atomically(path, json.dumps(data).encode("utf-8"))
        return True
    return False


def recall_last_build(
    path: Path,
    token: str,
    root: Path,
    env: BuildEnvironment,
    options: Options,
    lookup: Lookup,
    md_config: MdConfig = None,
    trusted: Callable[[Record], bool] = lambda record: True,
) -> tuple[list[PageState], set[str]] | None:
    """Verdicts for every page of a fresh environment from the last build kept under
    ``token``, and the pages whose prose changed since (each read to its key, which must be
    the one kept); the memos are then in ``env``. None when that build does not answer for
    every page as the database would (nothing in ``env`` is changed then). ``trusted``: whether
    a kept result may be shown (signatures required: only those that verify)."""
    data = _read(path)
    if data is None or data.get("token") != token or data.get("root") != str(root.resolve()):
        return None
    from ..errors import NotebookReadError
    from ..plan.parse import inspect_page, read_contents
    from ..plan.verdicts import PageState
    from ..records import Record

    kept: dict[str, Any] = data["pages"]
    memos: dict[str, Memo] = {}
    pages: list[Page] = []
    for docname in sorted(env.found_docs):
        file = Path(env.doc2path(docname))
        if is_notebook(file, options):
            pages.append(Page(docname, file))
        else:
            memos[docname] = not_a_notebook(file)
    contents = read_contents(pages, options, md_config)
    asked = []
    given: dict[str, list[Record]] = {}
    changed: set[str] = set()
    for page in pages:
        docname, file, entry = page.name, page.path, kept.get(page.name)
        if not isinstance(entry, dict) or docname not in contents:
            return None  # a page the last build did not have, or one that cannot be read
        try:
            memo = _memo(file, entry, options)
            record = Record.from_json(entry["record"]) if entry["record"] is not None else None
        except (KeyError, TypeError, ValueError, OSError):
            return None
        if record is not None and (record.problem() is not None or not trusted(record)):
            return None  # the database path says which results it refuses
        raw, digest = contents[docname]
        if memo.digest != digest:  # changed since
            try:
                _run, memo = inspect_page(page, options, md_config, raw, digest)
            except (NotebookReadError, OSError):
                return None
            if memo.key != entry["memo"][0]:
                return None  # its code changed: the database has (or not) its new key
            changed.add(docname)  # prose: the result kept is still the one to show
        if record is not None and record.key in (memo.key, memo.sibling):
            given[record.key] = [record]
        state = PageState(page, "stale", key=memo.key)
        asked.append((state, memo, memo.mode == "force"))  # every page is read: force runs
        memos[docname] = memo
    lookup.judge(asked, given)
    states = [state for state, _memo, _forced in asked]
    for state in states:
        if state.verdict not in _RECALLED or (state.record is not None and state.record.artifacts):
            return None
    from ._memory import env_memos

    env_memos(env).update(memos)
    return states, changed


def _memo(file: Path, entry: dict[str, Any], options: Options) -> Memo:
    key, mode, has_outputs, timeout, sibling = entry["memo"]
    stat = file.stat()
    return Memo(
        mtime_ns=stat.st_mtime_ns,
        size=stat.st_size,
        key=str(key),
        mode=str(mode),
        has_outputs=bool(has_outputs),
        excluded=options.is_excluded(file),
        timeout=None if timeout is None else float(timeout),
        sibling=None if sibling is None else str(sibling),
        digest=str(entry["digest"]),
    )


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return None
    return data if isinstance(data.get("pages"), dict) else None
