"""Commands that act: ``execute``, ``invalidate``, ``clear``, ``prune``, ``export``, ``import``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.progress import ProgressColumn
from rich.text import Text

from ..api import Cache, ExecutionReport, ImportReport
from ..engine.progress import Progress as Tracker
from ..engine.progress import format_running
from ..errors import NbcacheError
from ..records import Record
from . import show
from .common import open_docs

__all__ = [
    "cmd_clear",
    "cmd_execute",
    "cmd_export",
    "cmd_import",
    "cmd_import_jupyter_cache",
    "cmd_invalidate",
    "cmd_prune",
]


def cmd_execute(args: argparse.Namespace) -> int:
    targets = list(args.targets)
    hint = targets[0] if targets else None
    folder_only = len(targets) == 1 and Path(targets[0]).is_dir()
    with open_docs(args, hint) as cache:
        report = _run_with_progress(
            cache,
            None if folder_only or not targets else targets,
            jobs=args.jobs,
            force=args.force,
            timeout=args.timeout,
            executor=args.executor,
        )
        options = cache.options
    if options.report_json is not None or options.report_junit is not None:
        from ..engine.reportfiles import write_reports

        for path in write_reports(report, options.report_json, options.report_junit):
            show.console(stderr=True).print(show.line(f"wrote {path}"))
    if args.json:
        from ..engine.reportfiles import to_json

        show.print_json(
            {
                "succeeded": [show.record_json(r) for r in report.succeeded],
                "failed": [show.record_json(r) for r in report.failed],
                "errored": [show.record_json(r) for r in report.errored],
                "skipped": [show.page_json(s) for s in report.skipped],
                "report": to_json(report),
            }
        )
    else:
        _print_execution(report, args.verbose)
    return 0 if report.ok else 1


def _run_with_progress(cache: Cache, targets: list[str] | None, **kwargs: Any) -> ExecutionReport:
    """Execute with a progress bar on a terminal (done of total, the notebooks running and
    for how long), else plain lines: one per notebook, and a "still running" line every
    ``nbcache_progress_interval`` seconds."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    err = show.console(stderr=True)
    live = err.is_terminal
    tracker = Tracker(0.0 if live else cache.options.progress_interval, _still_running(err))
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        RunningColumn(tracker),
        console=err,
        transient=True,
        disable=not live,
    )
    task = progress.add_task("executing", total=0)

    def started(total: int) -> None:
        progress.update(task, total=total)
        if total and live:
            progress.start()

    def finished(record: Record) -> None:
        done = "" if live else f" [{tracker.line(record.key)}]"
        if record.status == "error":  # it never ran: no run time to speak of
            err.print(show.line(f"{record.page} ", (record.explain(), "red"), done))
        else:
            outcome = ("ok", "") if record.ok else (record.explain(), "red")
            ran = f"ran {record.page} in {record.runtime:.2f} s ("
            err.print(show.line(ran, outcome, ")", done))
        progress.advance(task)

    try:
        return cache.execute(
            targets, on_start=started, on_record=finished, on_event=tracker.event, **kwargs
        )
    finally:
        progress.stop()
        tracker.close()


def _still_running(err: Any) -> Callable[[Tracker], None]:
    def tick(tracker: Tracker) -> None:
        line = tracker.still_running()
        if line is not None:
            err.print(show.line(line))

    return tick


class RunningColumn(ProgressColumn):
    """The notebooks running now, and for how long."""

    def __init__(self, tracker: Tracker) -> None:
        super().__init__()
        self.tracker = tracker

    def render(self, task: Any) -> Text:
        running = self.tracker.running()
        return Text(show.visible(format_running(running, limit=3)) if running else "")


def _print_execution(report: ExecutionReport, verbose: bool) -> None:
    out = show.console()
    for entry in report.failing:
        record = entry.record
        failure = record.failure if record is not None else None
        cached = " (cached: not run again)" if entry.cached else ""
        out.print(show.line(f"{entry.label}: ", (entry.explain() + cached, "red")))
        if verbose and failure is not None and failure.traceback:
            out.print(show.visible(failure.traceback, lines=True))
    timing = report.timing()
    out.print(show.line(report.summary() + (f"; {timing}" if timing else "")))
    failing = list(dict.fromkeys(e.name for e in report.failing))
    if failing:
        first = failing[0]
        out.print(
            show.line(
                ("failing: ", "red"),
                f"{', '.join(failing)}; see `nbcache show {first} --traceback`, fix the code, "
                "then run again",
            )
        )


def cmd_invalidate(args: argparse.Namespace) -> int:
    with open_docs(args, args.pages[0]) as cache:
        removed = cache.invalidate(args.pages)
    if args.json:
        show.print_json([show.record_json(r) for r in removed])
    else:
        pages = ", ".join(sorted({r.page or show.short_id(r.id) for r in removed}))
        show.console().print(
            show.line(f"invalidated {len(removed)} record(s){': ' + pages if pages else ''}")
        )
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    with open_docs(args) as cache:
        if not args.yes:
            if not sys.stdin.isatty():
                raise NbcacheError(f"refusing to clear {cache.path} without --yes")
            answer = input(f"delete every record in {cache.path}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                return 1
        removed = cache.clear()
    if args.json:
        show.print_json({"removed": removed})
    else:
        show.console().print(show.line(f"removed {removed} record(s) from {cache.path}"))
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    if args.max_entries is None and args.max_size is None:
        raise NbcacheError("give --max-entries N and/or --max-size SIZE (e.g. 500MB)")
    try:
        max_size = None if args.max_size is None else show.parse_size(args.max_size)
    except ValueError as exc:
        raise NbcacheError(str(exc)) from None
    with open_docs(args) as cache:
        grace = {} if args.grace is None else {"grace": args.grace}
        removed = cache.prune(args.max_entries, max_size, **grace)
    if args.json:
        show.print_json([show.record_json(r) for r in removed])
    else:
        show.console().print(f"pruned {len(removed)} least recently used record(s)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with open_docs(args) as cache:
        count = cache.export(args.file)
    if args.json:
        show.print_json({"records": count, "file": args.file})
    else:
        show.console().print(show.line(f"exported {count} record(s) to {args.file}"))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    with open_docs(args) as cache:
        report = cache.import_archive(args.file)
    return _print_import(report, args)


def cmd_import_jupyter_cache(args: argparse.Namespace) -> int:
    with open_docs(args) as cache:
        report = cache.import_jupyter_cache(args.path)
    return _print_import(report, args)


def _print_import(report: ImportReport, args: argparse.Namespace) -> int:
    if args.json:
        show.print_json(report.to_json())
    else:
        out = show.console()
        out.print(
            f"{len(report.added)} added, {len(report.replaced)} replaced (older), "
            f"{len(report.kept)} kept (already cached), {len(report.rejected)} rejected"
        )
        for item, why in report.rejected:
            out.print(show.line(("rejected", "red"), f" {item}: {why}"))
    return 1 if report.rejected else 0


# -- the parser ---------------------------------------------------------------------------------
