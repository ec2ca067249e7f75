"""The ``nbcache-report`` directive: a table of the project's notebook pages.

The directive leaves a placeholder; the table is built at ``doctree-resolved``, when every page
has been read (also after a parallel read), from ``env.nbcache_rendered`` (what each page was
rendered from) and the store (run times, dates, failures). A page holding the directive is
written again (not read again: ``env-get-updated``) whenever what the notebook pages show
changed since its table was last built, so its table is never older than the other pages, and
a build with nothing changed reads and writes nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from docutils import nodes
from sphinx.errors import NoUri
from sphinx.util.docutils import SphinxDirective

from ._memory import env_rendered
from ._mystnb import state_for_env

if TYPE_CHECKING:
    from docutils.nodes import NodeVisitor
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

    from ..records import Record
    from ._memory import Rendered

__all__ = [
    "NbcacheReport",
    "ReportDirective",
    "build_table",
    "on_env_get_updated",
    "setup",
    "setup_report",
]

_PAGES_ATTR = "nbcache_report_pages"
_SHOWN_ATTR = "nbcache_report_shown"  # what the notebook pages showed when tables were built
_COLUMNS = ("Page", "Status", "Run time", "CPU time", "Peak memory", "Last executed", "Details")
_WIDTHS = (26, 9, 9, 9, 10, 17, 30)
#: sorts a report table by the column whose heading is clicked (numbers by value: the times
#: are in seconds and the memory in MiB throughout, so a cell's leading number sorts it)
_SORT_JS = """
document.addEventListener("DOMContentLoaded", () => {
  for (const table of document.querySelectorAll("table.nbcache-report")) {
    table.querySelectorAll("thead th").forEach((th, column) => {
      th.style.cursor = "pointer";
      th.title = "sort by this column";
      th.addEventListener("click", () => {
        const body = table.tBodies[0];
        const key = (row) => row.cells[column].textContent.trim();
        const rows = Array.from(body.rows);
        const up = th.dataset.order !== "up";
        th.dataset.order = up ? "up" : "down";
        rows.sort((a, b) => {
          const [x, y] = [key(a), key(b)];
          const [p, q] = [parseFloat(x), parseFloat(y)];
          const order = isNaN(p) || isNaN(q) ? x.localeCompare(y) : p - q;
          return up ? order : -order;
        });
        rows.forEach((row) => body.appendChild(row));
      });
    });
  }
});
"""


class NbcacheReport(nodes.General, nodes.Element):
    """Where a report goes; replaced by a table once every page is known."""


class ReportDirective(SphinxDirective):
    """``nbcache-report``: status, run time, last execution and failure of every page."""

    has_content = False
    required_arguments = 0

    def run(self) -> list[nodes.Node]:
        _report_pages(self.env).add(self.env.docname)
        return [NbcacheReport()]


def setup_report(app: Sphinx) -> None:
    """Register the directive and its handlers (called by the extension's ``setup``)."""
    skip = (_skip, None)
    app.add_node(NbcacheReport, html=skip, latex=skip, text=skip, man=skip, texinfo=skip)
    app.add_directive("nbcache-report", ReportDirective)
    app.connect("env-get-updated", on_env_get_updated)
    app.connect("env-purge-doc", on_env_purge_doc)
    app.connect("env-merge-info", on_env_merge_info)
    app.connect("doctree-resolved", on_doctree_resolved)
    app.add_js_file(None, body=_SORT_JS)


def on_env_get_updated(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Report pages are written again when what the notebook pages show has changed."""
    pages = _report_pages(env) & set(env.found_docs)
    if not pages:
        return []
    rendered = env_rendered(env)
    shown = sorted(
        (name, seen.status, seen.id or seen.key or "")
        for name, seen in rendered.items()
        if name in env.all_docs
    )
    fingerprint = hashlib.sha256(repr(shown).encode()).hexdigest()
    if env.__dict__.get(_SHOWN_ATTR) == fingerprint:
        return []
    env.__dict__[_SHOWN_ATTR] = fingerprint
    return sorted(pages)


def on_env_purge_doc(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    _report_pages(env).discard(docname)


def on_env_merge_info(
    app: Sphinx, env: BuildEnvironment, docnames: list[str], other: BuildEnvironment
) -> None:
    theirs = _report_pages(other)
    _report_pages(env).update(d for d in docnames if d in theirs)


def on_doctree_resolved(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    placeholders = list(doctree.findall(NbcacheReport))
    if not placeholders:
        return
    for placeholder in placeholders:
        placeholder.replace_self(build_table(app, docname))


def build_table(app: Sphinx, fromdocname: str) -> list[nodes.Node]:
    """A summary paragraph and a table row per notebook page, linked from ``fromdocname``."""
    env = app.env
    rendered = env_rendered(env)
    docnames = sorted(d for d in rendered if d in env.all_docs)
    records = _records(env, {d: rendered[d] for d in docnames})
    table = nodes.table(classes=["nbcache-report"])
    group = nodes.tgroup(cols=len(_COLUMNS))
    table += group
    for width in _WIDTHS:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    head += _row([nodes.Text(name) for name in _COLUMNS])
    group += head
    body = nodes.tbody()
    group += body
    counts: dict[str, int] = {}
    total = cpu = 0.0
    for docname in docnames:
        seen = rendered[docname]
        record = records.get(docname)
        status = record.status if record is not None else str(seen.status)
        counts[status] = counts.get(status, 0) + 1
        total += record.runtime if record is not None else 0.0
        cpu += (record.cpu_time or 0.0) if record is not None else 0.0
        row = _row(
            [
                _link(app, fromdocname, docname),
                nodes.Text(status),
                nodes.Text(f"{record.runtime:.2f} s" if record else "-"),
                nodes.Text(_seconds(record.cpu_time) if record else "-"),
                nodes.Text(_memory(record.peak_memory) if record else "-"),
                nodes.Text(_when(record.created) if record else "-"),
                _details(record),
            ]
        )
        row["classes"].append(f"nbcache-{status}")
        body += row
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    intro = nodes.paragraph(
        text=f"{len(docnames)} notebook pages ({summary or 'none'}); "
        f"{total:.1f} s of kernel time ({cpu:.1f} s CPU) in their last executions."
    )
    return [intro, table] if docnames else [intro]


def _report_pages(env: BuildEnvironment) -> set[str]:
    return cast("set[str]", env.__dict__.setdefault(_PAGES_ATTR, set()))


def _records(env: BuildEnvironment, shown: Mapping[str, Rendered]) -> dict[str, Record]:
    """Page -> the record its doctree shows."""
    state = state_for_env(env)
    if state is None:
        return {}
    try:
        found = state.engine.store.lookup(seen.key for seen in shown.values() if seen.key)
    except Exception:  # a report never fails a build
        return {}
    records = {}
    for page, seen in shown.items():
        wanted = seen.id or seen.key
        match = [r for r in found.get(seen.key or "", ()) if r.id == wanted]
        if match:
            records[page] = match[0]
    return records


def _row(cells: list[nodes.Node]) -> nodes.row:
    row = nodes.row()
    for content in cells:
        entry = nodes.entry()
        entry += (
            content if isinstance(content, nodes.paragraph) else nodes.paragraph("", "", content)
        )
        row += entry
    return row


def _link(app: Sphinx, fromdocname: str, docname: str) -> nodes.Node:
    title = app.env.titles.get(docname)
    text = title.astext() if title is not None else docname
    try:
        uri = app.builder.get_relative_uri(fromdocname, docname)
    except NoUri:
        return nodes.Text(text)
    reference = nodes.reference("", "", internal=True, refuri=uri)
    reference += nodes.Text(text)
    return reference


def _details(record: Record | None) -> nodes.Node:
    if record is None:
        return nodes.Text("")
    if record.failure is not None:
        return nodes.literal(text=record.explain())
    timed = [(t, i) for i, t in enumerate(record.cell_times, 1) if t is not None]
    if len(timed) > 1:
        seconds, cell = max(timed)
        return nodes.Text(f"slowest: code cell {cell} ({seconds:.2f} s)")
    return nodes.Text("")


def _seconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


def _memory(size: int | None) -> str:
    return "-" if size is None else f"{size / 2**20:.1f} MiB"


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def _skip(translator: NodeVisitor, node: nodes.Node) -> None:
    raise nodes.SkipNode


def setup(app: Sphinx) -> dict[str, Any]:
    """Loaded by the extension's ``setup`` through ``app.setup_extension``."""
    setup_report(app)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
