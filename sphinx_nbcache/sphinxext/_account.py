"""The account of a build (:mod:`sphinx_nbcache.engine.report`) with what only Sphinx knows:
the notebook pages (and variants) not planned in this build, shown from the cache as the last
build left them, count too; and the reports written where ``conf.py`` asks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from sphinx.util import logging

from ..engine.report import Entry, ExecutionReport
from ..notebooks.pages import Page
from ..plan.verdicts import PageState
from ._memory import env_rendered

if TYPE_CHECKING:
    from sphinx.environment import BuildEnvironment

    from ..config import Options
    from ..plan.verdicts import Verdict
    from ..records import Record
    from ._state import BuildState

__all__ = ["account", "write_reports"]

logger = logging.getLogger("sphinx_nbcache")

_VERDICTS: dict[str, Verdict] = {
    "ok": "cached",
    "failed": "failed",
    "error": "failed",
    "off": "off",
    "as-is": "as-is",
}


def account(state: BuildState, env: BuildEnvironment | None) -> ExecutionReport:
    """Every notebook page, variant and call of the build, planned in it or not."""
    engine = state.engine
    states = list(engine.planned.values())
    extra: list[Entry] = []
    if env is not None:
        states += _unplanned_pages(env, {s.page.name for s in states if not s.variant})
        extra = _unplanned_variants(state, env)
    report = engine.report(states)
    if (state.options.report_json or state.options.report_junit) and report.entries:
        report = _with_stored_figures(state, report, extra)
    return _with_extra(report, extra)


def _unplanned_pages(env: BuildEnvironment, planned: set[str]) -> list[PageState]:
    """The pages the build did not plan (nothing changed in them), as their doctree shows."""
    found = []
    for docname, seen in sorted(env_rendered(env).items()):
        if docname in planned or docname not in env.found_docs:
            continue
        verdict = _VERDICTS.get(seen.status, "off")
        record = seen.record()._replace(page=docname) if seen.key else None
        found.append(PageState(Page(docname, Path(env.doc2path(docname))), verdict, record=record))
    return found


def _unplanned_variants(state: BuildState, env: BuildEnvironment) -> list[Entry]:
    """Variants shown by pages not read in this build: from the cache, as last built."""
    from ._variants import env_variants

    planned = set(state.variants)
    root = state.engine.root
    seen: dict[tuple[str, str], Entry] = {}
    for docname, shown in env_variants(env).items():
        if docname not in env.found_docs:
            continue
        for variant in shown:
            wanted = (variant.path, variant.parameters)
            if wanted in planned or wanted in seen:
                continue
            path = Path(variant.path)
            try:
                name = path.relative_to(root).with_suffix("").as_posix() if root else path.stem
            except ValueError:
                name = path.stem
            parameters = json.loads(variant.parameters)
            seen[wanted] = Entry(name, "variant", "from cache", None, cached=True,
                                 parameters=parameters)  # fmt: skip
    return list(seen.values())


def _with_extra(report: ExecutionReport, extra: list[Entry]) -> ExecutionReport:
    if not extra:
        return report
    from dataclasses import replace

    return replace(report, entries=(*report.entries, *extra))


def _with_stored_figures(
    state: BuildState, report: ExecutionReport, extra: list[Entry]
) -> ExecutionReport:
    """The report files show each result's figures: those the environment does not keep
    (CPU time, peak memory) are read from the store."""
    from dataclasses import replace

    wanted = [e.record for e in report.entries if e.cached and e.record is not None]
    if not wanted:
        return report
    try:
        found = state.engine.store.lookup({r.key for r in wanted if r.key})
    except Exception:  # the figures are a nicety: the report is written without them
        return report
    by_id: dict[str, Record] = {r.id: r for records in found.values() for r in records}
    entries = tuple(
        e._replace(record=by_id.get(e.record.id, e.record))
        if e.cached and e.record is not None
        else e
        for e in report.entries
    )
    return replace(report, entries=entries)


def write_reports(options: Options, report: ExecutionReport) -> None:
    """Write the JSON and JUnit reports, if ``conf.py`` names their files."""
    if options.report_json is None and options.report_junit is None:
        return
    from ..engine.reportfiles import write_reports as write
    from ..errors import NbcacheError

    try:
        for path in write(report, options.report_json, options.report_junit):
            logger.info(f"nbcache: wrote {path}")
    except NbcacheError as exc:
        logger.warning(f"nbcache: {exc}", type="nbcache", subtype="report")
