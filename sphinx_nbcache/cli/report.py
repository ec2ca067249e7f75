"""``nbcache report``: the account of every page, from the cache as it is (nothing runs).

The same account a build writes with ``nbcache_report_json`` / ``nbcache_report_junit``
(:mod:`sphinx_nbcache.engine.report`): pages with a current result are ``from cache`` (or
``failed``), stale ones ``skipped`` (not executed yet), with each result's time, CPU time and
peak memory.
"""

from __future__ import annotations

import argparse
import sys

from rich.table import Table
from rich.text import Text

from ..engine.report import ExecutionReport, build_report
from ..engine.reportfiles import to_json, to_junit
from . import show
from .common import open_docs, print_notices

__all__ = ["cmd_report", "report_table"]

STYLES = {"executed": "green", "from cache": "green", "failed": "red", "could not start": "red"}


def cmd_report(args: argparse.Namespace) -> int:
    with open_docs(args, read_only=True) as cache:
        states = cache.plan()
        notices = cache.notices()
    print_notices(notices)
    report = build_report(states, (), executing=False)
    if args.junit:
        sys.stdout.write(to_junit(report))
    elif args.json:
        show.print_json(to_json(report))
    else:
        out = show.console()
        out.print(report_table(report))
        out.print(show.line(report.summary()))
    return 0


def report_table(report: ExecutionReport) -> Table:
    """One row per page: outcome, run time, CPU time, peak memory, what failed or why not."""
    table = Table(show_edge=False, pad_edge=False)
    for column in ("Page", "Outcome", "ID", "Run time", "CPU", "Memory", "Detail"):
        right = column in ("Run time", "CPU", "Memory")
        table.add_column(column, no_wrap=column != "Detail", justify="right" if right else "left")
    for entry in report.entries:
        record = entry.record
        known = record is not None and bool(record.key)
        detail = entry.explain() if entry.outcome in ("failed", "could not start") else ""
        table.add_row(
            show.visible(entry.label),
            Text(show.visible(entry.outcome), style=STYLES.get(entry.outcome, "dim")),
            show.short_id(record.id) if record is not None and known else "-",
            show.format_seconds(record.runtime) if record is not None and known else "-",
            show.format_seconds(record.cpu_time) if record is not None else "-",
            show.format_memory(record.peak_memory) if record is not None else "-",
            show.visible(detail or entry.reason),
        )
    return table
