"""The ``nbcache-notebook`` directive: a source notebook shown with given parameters.

Planning (``env-get-outdated``): the text of every page Sphinx will read is scanned for the
directive (:func:`.variants.scan`) and each variant is planned with the pages,
so stale variants execute in parallel with the stale pages. A page already read is read again
when a variant it shows no longer has the result it showed (the environment or a file the run
read changed); Sphinx itself re-reads it when the source notebook or a file the result read
changes (both are noted as dependencies of the page). Reading: the directive shows the
variant's result, rendered by myst-nb as a notebook page would be.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from .._json import canonical_json
from ..errors import NbcacheError
from ..notebooks.pages import Page

# the rest of workflows.variants is imported when a page shows a variant (a build with
# nothing changed never needs it)
DIRECTIVE = "nbcache-notebook"

if TYPE_CHECKING:
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

    from ..dependencies import Dependencies
    from ..plan.verdicts import PageState
    from ._state import BuildState

__all__ = ["NotebookDirective", "ShownVariant", "env_variants", "plan_for_reading", "setup"]

logger = logging.getLogger("sphinx_nbcache")


class ShownVariant(NamedTuple):
    """A variant a page shows (kept in the environment)."""

    path: str  # the source notebook (absolute)
    parameters: str  # canonical JSON
    id: str  # the result shown
    dependencies: Dependencies | None = None  # what that result depended on
    kernel: str = ""


def env_variants(env: BuildEnvironment) -> dict[str, list[ShownVariant]]:
    """docname -> the variants it shows."""
    return cast("dict[str, list[ShownVariant]]", env.__dict__.setdefault("nbcache_variants", {}))


def _canonical(parameters: dict[str, Any]) -> str:
    return canonical_json(parameters)


def _page(state: BuildState, path: Path) -> Page:
    root = state.engine.root
    try:
        assert root is not None
        name = path.resolve().relative_to(root.resolve()).with_suffix("").as_posix()
    except (ValueError, AssertionError):
        name = path.stem
    return Page(name, path)


def _plan(state: BuildState, path: Path, parameters: dict[str, Any]) -> PageState:
    """The planned variant (planned now if it was not)."""
    from ..workflows.variants import plan_variant

    wanted = (str(path.resolve()), _canonical(parameters))
    planned = state.variants.get(wanted)
    if planned is None:
        planned = plan_variant(state.engine, _page(state, path), parameters)
        state.variants[wanted] = planned
    return planned


def plan_for_reading(state: BuildState, env: BuildEnvironment, to_read: set[str]) -> set[str]:
    """Plan and start the variants of the pages to read; return pages already read whose
    variants' results changed (to read again)."""
    again: set[str] = set()
    shown = env_variants(env) if not state.from_memory else {}  # else: still what they were
    if not shown and not to_read:
        return again
    from ..workflows.variants import parse_parameters, scan

    for docname, variants in sorted(shown.items()):
        if docname in to_read or docname not in env.found_docs:
            continue
        for variant in variants:
            try:
                planned = _plan(state, Path(variant.path), json.loads(variant.parameters))
            except (NbcacheError, OSError, ValueError):
                again.add(docname)  # the directive says what is wrong
                break
            if planned.record is None or planned.record.id != variant.id:
                again.add(docname)
                break
    for docname in sorted(to_read | again):
        try:
            text = Path(env.doc2path(docname)).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for ref in scan(text):
            _, absolute = env.relfn2path(ref.path, docname)
            path = Path(absolute)
            try:
                _plan(state, path, parse_parameters(ref.parameters, docname))
            except (NbcacheError, OSError):
                continue  # the directive warns, at its line
    return again


class NotebookDirective(SphinxDirective):
    """``nbcache-notebook PATH`` with ``:parameters: {name: value}``: the notebook at PATH
    (relative to this page) executed with those parameters, rendered here."""

    required_arguments = 1
    has_content = False
    option_spec = {"parameters": directives.unchanged}  # noqa: RUF012 (docutils' API)

    def run(self) -> list[nodes.Node]:
        from ..workflows.variants import parse_parameters, variant_result
        from . import _mystnb

        state = _mystnb.state_for_env(self.env)
        location = self.get_location()
        relative, absolute = self.env.relfn2path(self.arguments[0], self.env.docname)
        path = Path(absolute)
        if state is None:
            return []
        if not path.is_file():
            logger.warning(
                f"{DIRECTIVE}: no notebook {relative!r}; give its path relative to this page",
                location=location,
                type="nbcache",
                subtype="variant",
            )
            return []
        self.env.note_dependency(str(path))
        try:
            parameters = parse_parameters(self.options.get("parameters", ""), relative)
            planned = _plan(state, path, parameters)
            record, merged = variant_result(state.engine, planned)
        except NbcacheError as exc:
            logger.warning(
                f"{DIRECTIVE}: {exc}", location=location, type="nbcache", subtype="variant"
            )
            return []
        env_variants(self.env).setdefault(self.env.docname, []).append(
            ShownVariant(
                str(path.resolve()),
                _canonical(parameters),
                record.id,
                record.dependencies,
                record.kernel,
            )
        )
        if record.dependencies is not None:  # Sphinx reads this page again when they change
            for entry, _digest in record.dependencies.entries():
                watched = entry.path(path.parent, state.engine.root)
                if entry.kind.watched and watched is not None and watched.is_file():
                    self.env.note_dependency(str(watched))
        if record.failure is not None:
            text = record.failure.traceback if state.options.show_traceback else ""
            logger.warning(
                f"{DIRECTIVE}: {relative} with {parameters} {record.explain()}"
                + (f"\n{text}" if text else ""),
                location=location,
                type="nbcache",
                subtype="variant",
            )
        from ..notebooks.scraps import hide_payloads

        hide_payloads(merged)
        kept = ("kernelspec", "language_info", "widgets")  # not front matter for this page
        merged.metadata = {k: v for k, v in merged.metadata.items() if k in kept}
        box = nodes.container(classes=["nbcache-variant"])
        box.extend(_without_sections(_mystnb.render_notebook(self.state.document, merged)))
        return [box]


def _without_sections(found: list[nodes.Node]) -> list[nodes.Node]:
    """A notebook's headings inside a page: rubrics (a directive cannot open sections)."""
    result: list[nodes.Node] = []
    for node in found:
        if isinstance(node, nodes.section):
            title = node.next_node(nodes.title)
            if title is not None:
                result.append(nodes.rubric(title.astext(), "", *title.children))
            result.extend(
                _without_sections([child for child in node.children if child is not title])
            )
        else:
            result.append(node)
    return result


def purge(env: BuildEnvironment, docname: str) -> None:
    env_variants(env).pop(docname, None)


def merge(env: BuildEnvironment, docnames: list[str], other: BuildEnvironment) -> None:
    theirs = env_variants(other)
    for docname in docnames:
        if docname in theirs:
            env_variants(env)[docname] = theirs[docname]


def setup(app: Sphinx) -> None:
    app.add_directive(DIRECTIVE, NotebookDirective)
