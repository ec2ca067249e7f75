"""What the environment remembers of the cache, and when that is enough to plan a build.

Per-page data lives in the environment (pickled with it): ``nbcache_memos`` (what reading each
file found), ``nbcache_rendered`` (what each doctree was built from) and ``nbcache_token`` (the
cache's change token the doctrees agree with). After reading, the build keeps the token if
every notebook page's doctree shows what the cache holds (``shown``). While the token is
unchanged, a build whose changed pages (if any) kept their code is planned from the
environment alone (``plan_from_memory``): with no changed page it needs nothing from the
cache; after prose edits, the outputs those pages show are read from their blobs, without
opening the database.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, cast

from ..notebooks.readers import is_notebook
from ..plan.memo import Memo, not_a_notebook, still_valid

if TYPE_CHECKING:
    from sphinx.environment import BuildEnvironment

    from ..config import Options
    from ..dependencies import Dependencies
    from ..notebooks.pages import Page
    from ..notebooks.readers import MdConfig
    from ..plan.environment import KernelEnvironment, Stamp
    from ..plan.freshness import FileMemo
    from ..plan.lookup import Lookup
    from ..plan.verdicts import PageState
    from ..records import Record
    from ._variants import ShownVariant

__all__ = [
    "Rendered",
    "env_files",
    "env_memos",
    "env_rendered",
    "env_token",
    "notebook_pages",
    "plan_from_memory",
    "set_env_token",
    "shown",
]


class Rendered(NamedTuple):
    """What a page's doctree was built from (kept in the environment)."""

    key: str | None
    status: str
    blob: str | None
    created: float = 0.0  # of the result shown (0: not known)
    runtime: float = 0.0
    id: str | None = None  # the result's identity (None: as its key)
    dependencies: Dependencies | None = None  # what the result shown depended on
    kernel: str = ""

    def record(self) -> Record:
        """The result shown, as far as the environment keeps it."""
        from ..records import Record

        return Record(
            self.key or "",
            self.status,  # type: ignore[arg-type]
            self.blob,
            runtime=self.runtime,
            created=self.created,
            kernel=self.kernel,
            dependencies=self.dependencies,
        )


def env_memos(env: BuildEnvironment) -> dict[str, Memo]:
    """Page -> what reading its file found."""
    return cast("dict[str, Memo]", env.__dict__.setdefault("nbcache_memos", {}))


def env_rendered(env: BuildEnvironment) -> dict[str, Rendered]:
    """Page -> what its doctree was built from."""
    return cast("dict[str, Rendered]", env.__dict__.setdefault("nbcache_rendered", {}))


def env_files(env: BuildEnvironment) -> FileMemo:
    """Path -> (mtime, size, sha256) of the files results depend on (hashed once each)."""
    return cast("FileMemo", env.__dict__.setdefault("nbcache_files", {}))


def env_pasted(env: BuildEnvironment) -> dict[str, set[str]]:
    """docname -> the documents whose glued values it pastes (myst-nb's ``path::key``)."""
    return cast("dict[str, set[str]]", env.__dict__.setdefault("nbcache_pasted", {}))


def env_stamp(env: BuildEnvironment) -> Stamp | None:
    """What the kernels' environments looked like when the results shown were checked."""
    return cast("Stamp | None", env.__dict__.get("nbcache_envstamp"))


def set_env_stamp(env: BuildEnvironment, stamp: Stamp | None) -> None:
    env.__dict__["nbcache_envstamp"] = stamp


def env_token(env: BuildEnvironment) -> str | None:
    """The cache's change token the doctrees agree with (None: not known to agree)."""
    return cast("str | None", env.__dict__.get("nbcache_token"))


def set_env_token(env: BuildEnvironment, token: str | None) -> None:
    env.__dict__["nbcache_token"] = token


def plan_from_memory(
    env: BuildEnvironment,
    to_read: set[str],
    options: Options,
    lookup: Lookup,
    md_config: MdConfig = None,
) -> list[PageState] | None:
    """Plan without the database, given that the cache is unchanged since the doctrees agreed
    with it: every other page must still have the size and modification time it was read
    with, and each page to read the code of the result it shows (a prose edit); and what each
    result shown depended on (files, packages) must be unchanged. The results shown are judged
    by the engine's one lookup, given instead of looked up. None when that does not hold, or
    cannot be known without looking."""
    from ..notebooks.pages import Page

    memos, rendered = env_memos(env), env_rendered(env)
    shown_variants: dict[str, list[ShownVariant]] = env.__dict__.get("nbcache_variants", {})
    found = env.found_docs
    others = (name for name in found if name not in to_read)
    for docname in others:
        memo = memos.get(docname)
        path = Path(env.doc2path(docname))
        if memo is None or not still_valid(memo, path):
            return None
        seen = rendered.get(docname)
        if seen is not None and _stale(seen, docname, path, lookup):
            return None
        for variant in shown_variants.get(docname, ()):  # what its nbcache-notebook shows
            page = Page(docname, Path(variant.path))
            if lookup.holds(page, variant.dependencies, variant.kernel) is not None:
                return None
    if not to_read:
        return []  # nothing changed: every verdict of the last build holds
    # prose edits (the rest is loaded only then: a build with nothing changed needs none of it)
    from ..errors import NotebookReadError
    from ..plan.parse import inspect_page
    from ..plan.verdicts import PageState

    asked = []
    given = {}
    for docname in sorted(to_read & set(found)):
        path = Path(env.doc2path(docname))
        if not is_notebook(path, options):
            memos[docname] = not_a_notebook(path)
            continue
        seen = rendered.get(docname)
        if seen is None or seen.status != "ok" or not seen.key or not seen.created:
            return None
        try:
            run, memo = inspect_page(Page(docname, path), options, md_config)
        except (NotebookReadError, OSError):
            return None
        if memo.key != seen.key or memo.mode != "cache" or memo.excluded:
            return None
        memos[docname] = memo
        given[memo.key] = [seen.record()]
        asked.append((PageState(Page(docname, path), "stale", run=run), memo, False))
    lookup.judge(asked, given)
    if any(state.verdict != "cached" for state, _memo, _forced in asked):
        return None
    return [state for state, _memo, _forced in asked]


def _stale(seen: Rendered, docname: str, path: Path, lookup: Lookup) -> bool:
    """Has anything the result shown depended on changed?"""
    if seen.dependencies is None and not lookup.options.dependencies:
        return False
    from ..notebooks.pages import Page

    return lookup.holds(Page(docname, path), seen.dependencies, seen.kernel) is not None


def shown(state: PageState, seen: Rendered | None) -> bool:
    """Can the page's doctree (``seen`` when it was read) stay as it is? Failed pages are read
    again in every build, so that their warnings (and ``-W``) do not depend on what changed."""
    if state.verdict in ("excluded", "off", "as-is"):
        return True  # rendered from the page alone
    if state.verdict != "cached" or state.record is None:
        return False  # stale, failed or unreadable: read (and executed) again
    return seen is not None and seen.blob == state.record.blob


def restamp(env: BuildEnvironment, kernels: KernelEnvironment, scope: str) -> bool:
    """Keep in ``env`` what the kernels of the pages shown look like now (a no-op build then
    needs only a few stat calls); True if a new stamp was kept (``env`` must be saved)."""
    names = {seen.kernel or "python3" for seen in env_rendered(env).values() if seen.key}
    stamp = kernels.stamp(names, scope) if names else None
    if stamp is None or stamp == env_stamp(env):
        return False
    set_env_stamp(env, stamp)
    return True


def notebook_pages(env: BuildEnvironment, options: Options) -> list[Page]:
    """The documents of ``env`` that are notebook pages (a memo says which are not)."""
    from ..notebooks.pages import Page

    memos = env_memos(env)
    pages = []
    for docname in sorted(env.found_docs):
        path = Path(env.doc2path(docname))
        memo = memos.get(docname)
        if memo is not None and memo.key is None and still_valid(memo, path):
            continue  # known not to be a notebook
        unknown = memo is None or memo.key is None or not still_valid(memo, path)
        if unknown and not is_notebook(path, options):
            memos[docname] = not_a_notebook(path)
            continue
        pages.append(Page(docname, path))
    return pages
