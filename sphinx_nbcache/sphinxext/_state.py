"""The state of one build: the engine, plus what only Sphinx needs (its environment, logging).

``BuildState.plan`` (``env-get-outdated``) plans the notebook pages from the environment alone
when the cache is unchanged, else through the engine, which starts executing the stale ones.
``resolve`` (the myst-nb seam, for each page read) waits for or looks up its result and merges
it; failures become located warnings.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sphinx.errors import SphinxError
from sphinx.util import logging

from .. import freeze  # noqa: F401  (registers the frozen folder as a source of results)
from ..config import Options
from ..engine.core import Engine
from ..engine.progress import Progress
from ..errors import CorruptCacheError, NotebookExecutionError
from ..notebooks.hashing import code_cells
from ..notebooks.pages import Page
from ..plan.environment import stamp_holds
from ._log import log_executing, log_ran, log_still_running, log_summary
from ._memory import (
    Rendered,
    env_memos,
    env_rendered,
    env_stamp,
    env_token,
    notebook_pages,
    plan_from_memory,
    restamp,
    set_env_stamp,
    set_env_token,
    shown,
)
from ._warnings import warn_failure, warn_read_error

if TYPE_CHECKING:
    from sphinx.environment import BuildEnvironment

    from ..engine.jobs import KernelDoor
    from ..notebooks.readers import MdConfig
    from ..notebooks.runnable import Runnable
    from ..plan.freshness import FileMemo
    from ..plan.verdicts import PageState
    from ..records import Record

__all__ = ["BuildNotebookError", "BuildState"]

logger = logging.getLogger("sphinx_nbcache")

#: at most this many changed pages are planned without the database (each is parsed; more
#: are cheaper through the database's table of file contents already read)
_FROM_MEMORY_LIMIT = 8


class BuildNotebookError(NotebookExecutionError, SphinxError):
    """:class:`~sphinx_nbcache.errors.NotebookExecutionError` as Sphinx reports it (its
    ``category`` heads the message instead of a traceback)."""


class BuildState:
    """Everything sphinx-nbcache knows during one build of one app."""

    def __init__(
        self,
        options: Options,
        root: Path,
        md_config: MdConfig = None,
        files: FileMemo | None = None,
    ) -> None:
        self.options = options
        #: the run's progress, fed by the engine, shown in the log lines
        self.progress = Progress(options.progress_interval, log_still_running)
        self.engine = Engine(
            options,
            root=root,
            md_config=md_config,
            warn=self._warn,
            files=files,
            on_event=self.progress.event,
        )
        self.engine.kernel_link = _serve_kernels  # kernels read and call through the build
        self.unchanged = False  # nothing changed since the last build: nothing is read
        self.reading = 0  # pages Sphinx reads in this build (env-before-read-docs)
        self._token: str | None = None  # the cache's change token when planning began
        self._from_memory: set[str] = set()  # planned from the environment, not the database
        self._restamp = False  # the environment was checked in full: stamp it after reading
        self.from_memory = False  # planned from the environment: the results shown still hold
        self._recalled = False  # planned from the last build kept in the cache folder
        self.executing = 0  # notebooks started when planning (announced by announce())
        #: page variants planned in this build: (notebook path, parameters JSON) -> verdict
        self.variants: dict[tuple[str, str], PageState] = {}

    @property
    def planned(self) -> dict[str, PageState]:
        return self.engine.planned

    # -- env-get-outdated ---------------------------------------------------------------------

    def plan(self, env: BuildEnvironment, to_read: set[str], removed: set[str]) -> set[str]:
        """Decide every notebook page; start the stale ones; return pages to read again."""
        memos, rendered = env_memos(env), env_rendered(env)
        for docname in removed:
            memos.pop(docname, None)
        self._token = self.engine.token()  # before anything is looked up
        same_token = self._token is not None and self._token == env_token(env)
        fresh = self._token is not None and not same_token and not env_rendered(env)
        if fresh and self._recall(env):  # a fresh environment, the cache as the last build left
            return set()
        if same_token and len(to_read) <= _FROM_MEMORY_LIMIT:
            freshness = self.engine.freshness
            stamp = env_stamp(env)  # what the results shown were last checked against
            holds = stamp is not None and stamp_holds(stamp, self.options.environment)
            freshness.environment_unchanged = holds
            try:
                states = plan_from_memory(
                    env, to_read, self.options, self.engine.lookup, self.engine.md_config
                )
            finally:  # results from the store are always checked against the environment
                freshness.environment_unchanged = False
            self._restamp = states is not None and not holds  # checked in full: stamp it
            if states is not None:  # the cache has not changed, nor the code of any page
                self.unchanged = not to_read  # every verdict of the last build still holds
                self.planned.update((state.page.name, state) for state in states)
                self._from_memory.update(state.page.name for state in states)
                self.from_memory = True
                logger.debug("nbcache: planned from the environment; cache not opened")
                return set()
        set_env_token(env, None)  # until settle() finds the pages agree with the cache again
        pages = notebook_pages(env, self.options)
        states = self.engine.plan(pages, memos, must_read=to_read)
        set_env_stamp(env, None)  # stamped again once the pages are read (env-updated)
        self._restamp = True
        self._log_notices()
        self.engine.mark_used(states)
        again = {s.page.name for s in states if not shown(s, rendered.get(s.page.name))}
        # page variants (nbcache-notebook) first: the pages that read them run after them
        from ._variants import plan_for_reading

        again |= plan_for_reading(self, env, to_read | again)
        runs = [*states, *self.variants.values()]  # ordered together
        started = self.engine.start([s for s in runs if not (s.stale and self.options.frozen_only)])
        self.executing = len({s.key for s in started})  # said once reading begins
        logger.debug(
            f"nbcache: planned {len(states)} notebook pages in {self.engine.plan_seconds:.3f} s"
        )
        return (again - to_read) & set(env.found_docs)

    def _recall(self, env: BuildEnvironment) -> bool:
        """Plan from the last build kept in the cache folder (see ``_lastbuild``)."""
        from ._lastbuild import last_build_path, recall_last_build

        assert self._token is not None and self.engine.root is not None
        recalled = recall_last_build(
            last_build_path(self.options, self.engine.root),
            self._token,
            self.engine.root,
            env,
            self.options,
            self.engine.lookup,
            self.engine.md_config,
            self.engine.location.trusts,
        )
        if recalled is None:
            return False
        states, changed = recalled
        self.planned.update((state.page.name, state) for state in states)
        self._from_memory.update(state.page.name for state in states)
        self.from_memory = self._restamp = True
        self._recalled = not changed  # else kept again, with the new pages' digests
        logger.debug("nbcache: planned from the last build kept in the cache; cache not opened")
        return True

    def restamp(self, env: BuildEnvironment) -> bool:
        """After reading: if the environment was checked in full, keep in ``env`` what the
        kernels of the pages shown look like now (``_memory.restamp``)."""
        if not self._restamp:
            return False
        self._restamp = False
        return restamp(env, self.engine.freshness.kernels, self.options.environment)

    def _log_notices(self) -> None:
        for notice in self.engine.take_notices():
            logger.warning(notice, type="nbcache", subtype="cache")

    def settle(self, env: BuildEnvironment) -> bool:
        """After reading (``env-updated``): if every notebook page's doctree shows what the
        cache holds, keep the cache's change token in the environment; the next build that
        finds it unchanged, and no page changed, then never opens the cache. True if the
        environment now keeps a token it did not have (it must be saved to count)."""
        if self.unchanged:
            return False  # the token kept in the environment still holds
        token = self.engine.token()
        if token is None or token == env_token(env):
            return False
        if token == self._token:  # no result changed since planning: the verdicts hold
            states = list(self.planned.values())
        else:  # results were stored or removed meanwhile: look again (no file is re-read)
            memos = env_memos(env)
            found = env.found_docs
            pages = [
                Page(name, Path(env.doc2path(name)))
                for name, memo in sorted(memos.items())
                if memo.key is not None and name in found
            ]
            states = self.engine.plan(pages, memos)
        rendered = env_rendered(env)
        if all(shown(state, rendered.get(state.page.name)) for state in states):
            set_env_token(env, token)
            if not (self._recalled and token == self._token):  # else: kept as it is
                from ._lastbuild import keep_last_build  # (a no-op build never loads it)

                assert self.engine.root is not None
                keep_last_build(self.options, self.engine.root, token, states, env_memos(env))
            return True
        return False

    def announce(self) -> None:
        """Say how many notebooks execute (once Sphinx's "updating environment" line ends)."""
        if self.executing:
            log_executing(self.executing)
            self.executing = 0

    def read_order(self, docnames: list[str]) -> list[str]:
        """Pages that need no execution first, then stale ones in the order they execute."""
        reading = set(docnames)
        stale = [d for d in self.engine.order if d in reading]
        stale_set = set(stale)
        return [d for d in docnames if d not in stale_set] + stale

    def execute_all(self) -> None:
        """Wait for every planned execution, a line for each as it is stored."""
        for record in self.engine.as_completed():
            self.log_ran(record)
        self.engine.drain(lambda _: None)  # shown already

    # -- the myst-nb seam ---------------------------------------------------------------------

    def resolve(
        self, env: BuildEnvironment, path: Path | None, notebook: Any, mode: str
    ) -> tuple[Any, dict[str, Any] | None]:
        """The notebook to render for the page being read and myst-nb's execution metadata."""
        docname: str = env.docname
        rendered = env_rendered(env)
        own = self.options.for_notebook(notebook.get("metadata", {}))
        if mode == "off" or (path is not None and own.is_excluded(path)):
            rendered[docname] = Rendered(None, "off", None)
            return notebook, None
        if mode == "auto" and all(c.get("outputs") for c in code_cells(notebook)):
            rendered[docname] = Rendered(None, "as-is", None)
            return notebook, None
        planned = self.planned.get(docname)
        if planned is not None and planned.verdict == "unreadable":  # warned; never execute
            rendered[docname] = Rendered(None, "off", None)
            return notebook, None
        page = Page(docname, path or Path(docname))
        run = self._runnable(env, page, notebook, own, planned)
        if self.options.frozen_only and self._not_current(run, planned):
            rendered[docname] = Rendered(None, "off", None)
            return notebook, None
        record, merged = self._result(run, notebook)
        from ..notebooks.scraps import hide_payloads

        hide_payloads(merged)  # scrapbook's data: read from the cache, not rendered
        rendered[docname] = Rendered(
            run.key,
            record.status,
            record.blob,
            record.created,
            record.runtime,
            record.id,
            record.dependencies,
            record.kernel,
        )
        if record.failure is not None:
            cached = planned is not None and planned.verdict == "failed"  # not re-executed
            self._warn_failure(
                docname, path, notebook, record, cached and record.status == "failed"
            )
        return merged, {
            "mtime": record.created,
            "runtime": record.runtime,
            "method": "cache",
            "succeeded": record.ok,
            "error": record.failure.ename if record.failure else None,
            "traceback": None,  # reported by us, located at the cell; not in a reports file
        }

    def _runnable(
        self,
        env: BuildEnvironment,
        page: Page,
        notebook: Any,
        own: Options,
        planned: PageState | None,
    ) -> Runnable:
        """What runs for the page being read: as planned (keyed then), else keyed now."""
        from ..notebooks.expressions import expressions_in
        from ..notebooks.runnable import Runnable, runnable

        if planned is not None and planned.run is not None:
            return planned.run
        memo = env_memos(env).get(page.name)
        if planned is not None and planned.key and memo is not None and memo.key == planned.key:
            found = expressions_in(notebook)  # what runs, should it run again
            return Runnable(page, notebook, own, planned.key, memo.sibling or "", None, "", found)
        return runnable(notebook, page, self.options)

    def _not_current(self, run: Runnable, planned: PageState | None) -> bool:
        """With ``nbcache_frozen_only``: True, and a warning saying what changed, if the page
        has no current result (cached or frozen): it is shown without outputs."""
        from ..freeze.pages import frozen_only_warning

        state = planned if planned is not None and planned.key == run.key else None
        message = frozen_only_warning(state or self.engine.current(run), run, self.options)
        if message is not None:
            self._warn(run.page.name, message, "frozen")
        return message is not None

    def _result(self, run: Runnable, notebook: Any) -> tuple[Record, Any]:
        from ..engine.results import merged

        name = run.page.name
        if name in self._from_memory:  # the blob alone: the database stays closed
            self._from_memory.discard(name)
            planned = self.planned[name]
            assert planned.record is not None
            try:
                return planned.record, merged(planned.record, notebook, self.engine.blobs)
            except CorruptCacheError:  # removed since planning, or damaged: ask the database
                del self.planned[name]
        try:
            return self.engine.result(run, notebook, on_record=self.log_ran)
        except NotebookExecutionError as exc:
            raise BuildNotebookError(exc.page, exc.message) from None

    def _warn(self, page: str, message: str, subtype: str) -> None:
        logger.warning(message, location=page, type="nbcache", subtype=subtype)

    def _warn_failure(
        self, docname: str, path: Path | None, notebook: Any, record: Record, cached: bool
    ) -> None:
        warn_failure(docname, path, notebook, record, cached, self.options.show_traceback)
        if self.options.raise_on_error and record.failure is not None:
            raise BuildNotebookError(docname, record.explain())

    def warn_unreadable(self, docname: str) -> bool:
        """Warn about a page that cannot be read; True if it was unreadable."""
        state = self.planned.get(docname)
        if state is None or state.verdict != "unreadable" or state.error is None:
            return False
        warn_read_error(docname, state.error)
        return True

    # -- reporting ----------------------------------------------------------------------------

    def log_ran(self, record: Record) -> None:
        log_ran(record, self.progress)

    def finish(self, cancel: bool, env: BuildEnvironment | None = None) -> None:
        """Stop executing, keep the cache within its limits, print the account of the build
        and write its reports."""
        from ._account import account, write_reports

        engine = self.engine
        engine.drain(self.log_ran)
        self.progress.close()
        report = None
        try:
            report = account(self, env)  # while the store is open
        except Exception as exc:  # an account never fails a build
            logger.debug(f"nbcache: could not count what the build did: {exc}")
        try:
            evicted = engine.finish(cancel=cancel, evict=not self.unchanged)
        except Exception as exc:  # never fail a finished build over bookkeeping
            logger.debug(f"nbcache: could not finish cleanly: {exc}")
            evicted = []
        if evicted:
            logger.info(f"nbcache: evicted {len(evicted)} least recently used results")
        if report is not None:
            log_summary(engine, report)
            write_reports(self.options, report)


def _serve_kernels(engine: Engine) -> KernelDoor:
    from ..workflows.link import serve_kernels

    return serve_kernels(engine)
