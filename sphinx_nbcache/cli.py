"""The ``nbcache`` command: the cache of a docs folder, from a terminal or a CI script.

Every command takes ``--cache PATH`` (default: ``nbcache_path`` of the docs folder's
``conf.py`` or jupyter-book ``_config.yml``, else ``.nbcache``), ``--docs DIR`` (default: the
nearest folder holding a ``conf.py`` or a jupyter-book ``_config.yml`` + ``_toc.yml``, or
``./docs``), ``--json`` (machine-readable output) and ``--verbose`` (tracebacks
of our own errors). Exit status: 0 fine, 1 something to look at (a failed notebook, a stale page
under ``status --check``, a rejected import), 2 an error (a one-line message says what to do).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import __version__
from . import _clishow as show
from ._book import BOOK_CONFIG, BOOK_TOC, is_book
from ._clicalls import add_commands as add_calls
from .api import Cache, ExecutionReport, ImportReport, open_cache
from .errors import NbcacheError, NotFoundError
from .project import CONF_NAME, find_docs_dir
from .records import Record
from .store import GRACE_SECONDS

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nbcache`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except NbcacheError as exc:
        if args.verbose:
            traceback.print_exc()
        show.console(stderr=True).print(show.line(("error:", "red"), f" {exc}"))
        return 2
    except KeyboardInterrupt:
        show.console(stderr=True).print("interrupted")
        return 130


# -- opening the cache --------------------------------------------------------------------------


def _docs_folder(value: str | Path, how: str) -> Path:
    """A folder the user named as the docs folder: it must exist and hold a conf.py or a
    jupyter-book _config.yml (else every notebook below it would be taken for a page)."""
    path = Path(value)
    if not path.is_dir():
        raise NotFoundError(
            f"no folder {str(value)!r}", f"{how} names the docs folder (the one holding conf.py)"
        )
    if not (path / CONF_NAME).is_file() and not is_book(path):
        raise NotFoundError(
            f"{value} holds no {CONF_NAME} and no jupyter-book {BOOK_CONFIG} with {BOOK_TOC}",
            f"{how} names the docs folder: give the folder holding conf.py",
        )
    return path


def _docs_for(args: argparse.Namespace, hint: str | Path | None = None) -> Path | None:
    if args.docs is not None:
        return _docs_folder(args.docs, "--docs")
    if hint is not None:
        path = Path(hint)
        if path.is_dir():
            return path
        if path.exists():
            return find_docs_dir(path)
    found = find_docs_dir(Path.cwd())
    if found is None and (Path("docs") / "conf.py").is_file():
        found = Path("docs")
    return found


@contextmanager
def _open(
    args: argparse.Namespace, hint: str | Path | None = None, *, read_only: bool = False
) -> Iterator[Cache]:
    """The cache the command works on; its notices go to stderr when the command ends.

    ``read_only`` commands create nothing (a cache that is not there reads as empty)."""
    cache = open_cache(_docs_for(args, hint), args.cache, read_only=read_only)
    try:
        yield cache
    finally:
        _print_notices(cache.notices())
        cache.close()


def _print_notices(notices: list[str]) -> None:
    err = show.console(stderr=True)
    for notice in notices:
        err.print(show.line(("notice:", "yellow"), f" {notice}"))


# -- commands -----------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    if args.docs_dir is not None and args.docs is None:
        args.docs = args.docs_dir
    with _open(args, read_only=True) as cache:
        states = cache.status()
        notices = cache.notices()
    _print_notices(notices)
    if args.json:
        show.print_json([show.page_json(s) for s in states])
    else:
        out = show.console()
        out.print(show.states_table(states))
        counts: dict[str, int] = {}
        for state in states:
            counts[state.verdict] = counts.get(state.verdict, 0) + 1
        summary = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
        out.print(f"{len(states)} notebook pages: {summary or 'none'}")
    bad = [s for s in states if s.verdict in ("stale", "failed", "unreadable")]
    if args.check and bad and not args.json:
        show.console(stderr=True).print(
            f"{len(bad)} page(s) stale or failed: run `nbcache execute` (and fix failures)"
        )
    return 1 if args.check and (bad or notices) else 0


def cmd_list(args: argparse.Namespace) -> int:
    with _open(args, read_only=True) as cache:
        rows = [(r, cache.size_of(r)) for r in cache.records()]
    if args.json:
        show.print_json([show.record_json(r, size) for r, size in rows])
    else:
        out = show.console()
        out.print(show.records_table(rows))
        out.print(show.line(f"{len(rows)} records in {cache.path}"))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with _open(args, args.target, read_only=True) as cache:
        record = cache.find(args.target)
        size = cache.size_of(record)
    if args.json:
        show.print_json(show.record_json(record, size))
    else:
        out = show.console()
        for part in show.record_panel(record, size, args.traceback):
            out.print(part)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    with _open(args, args.page, read_only=True) as cache:
        change = cache.diff(args.page)
    if args.json:
        show.print_json(change.to_json())
        return 0
    out = show.console()
    out.print(show.line(f"{change.page}: {change.summary()}"))
    out.print(
        show.line(f"cached {show.short_id(change.cached_key)}, now {show.short_id(change.key)}")
    )
    for cell in change.cells:
        out.print(show.visible(cell.unified(change.page), lines=True))
    return 0


def cmd_why(args: argparse.Namespace) -> int:
    with _open(args, args.page, read_only=True) as cache:
        state = cache.why(args.page)
    if args.json:
        show.print_json(show.page_json(state))
    else:
        verdict = "fresh" if state.verdict == "cached" else state.verdict
        show.console().print(show.line(f"{state.page.name}: {verdict}: {state.reason or '-'}"))
    return 1 if state.verdict in ("stale", "failed", "unreadable") else 0


def cmd_scraps(args: argparse.Namespace) -> int:
    with _open(args, args.page, read_only=True) as cache:
        notebook = cache.read(args.page)
    scraps = list(notebook.scraps.values())
    if args.json:
        show.print_json(
            [{"name": s.name, "encoder": s.encoder, "data": s.data, "preview": s.preview(),
              "display": sorted((s.display or {}).get("data", {}))} for s in scraps]
        )  # fmt: skip
    elif not scraps:
        show.console().print(show.line(f"{notebook.page}: no scraps"))
    else:
        show.console().print(show.scraps_table(notebook.page, scraps))
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    import nbformat

    with _open(args, args.page, read_only=True) as cache:
        merged = cache.merge(args.page)
    target = Path(args.out)
    try:
        nbformat.write(merged, str(target))
    except OSError as exc:
        raise NbcacheError(f"cannot write {target}: {exc.strerror or exc}") from None
    if args.json:
        show.print_json({"page": args.page, "written": str(target)})
    else:
        show.console().print(show.line(f"wrote {target}"))
    return 0


def cmd_execute(args: argparse.Namespace) -> int:
    targets = list(args.targets)
    hint = targets[0] if targets else None
    folder_only = len(targets) == 1 and Path(targets[0]).is_dir()
    with _open(args, hint) as cache:
        report = _run_with_progress(
            cache,
            None if folder_only or not targets else targets,
            jobs=args.jobs,
            force=args.force,
            timeout=args.timeout,
            executor=args.executor,
        )
    if args.json:
        show.print_json(
            {
                "succeeded": [show.record_json(r) for r in report.succeeded],
                "failed": [show.record_json(r) for r in report.failed],
                "errored": [show.record_json(r) for r in report.errored],
                "skipped": [show.page_json(s) for s in report.skipped],
            }
        )
    else:
        _print_execution(report, args.verbose)
    return 0 if report.ok else 1


def _run_with_progress(cache: Cache, targets: list[str] | None, **kwargs: Any) -> ExecutionReport:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    err = show.console(stderr=True)
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    task = progress.add_task("executing", total=0)

    def started(total: int) -> None:
        progress.update(task, total=total)
        if total:
            progress.start()

    def finished(record: Record) -> None:
        if record.status == "error":  # it never ran: no run time to speak of
            summary = record.failure.summary() if record.failure else "unknown error"
            progress.console.print(
                show.line(("could not run", "red"), f" {record.page}: {summary}")
            )
        else:
            outcome = ("ok", "") if record.ok else ("failed", "red")
            ran = f"ran {record.page} in {record.runtime:.2f} s ("
            progress.console.print(show.line(ran, outcome, ")"))
        progress.advance(task)

    try:
        return cache.execute(targets, on_start=started, on_record=finished, **kwargs)
    finally:
        progress.stop()


def _print_execution(report: ExecutionReport, verbose: bool) -> None:
    out = show.console()
    for record in (*report.failed, *report.errored):
        failure = record.failure
        summary = failure.summary() if failure else record.status
        out.print(show.line((record.status, "red"), f": {record.page}: {summary}"))
        if verbose and failure is not None and failure.traceback:
            out.print(show.visible(failure.traceback, lines=True))
    for state in report.cached_failures:
        out.print(show.line(("failed (cached)", "red"), f": {state.page.name}: {state.reason}"))
    counts = report.counts()
    always = ("executed", "failed", "could not run", "from cache")
    parts = [f"{n} {outcome}" for outcome, n in counts.items() if n or outcome in always]
    out.print(f"{sum(counts.values())} notebook pages: {', '.join(parts) or 'none'}")
    if not report.ok:
        out.print("see `nbcache show PAGE --traceback`; fix the code, then run again")


def cmd_invalidate(args: argparse.Namespace) -> int:
    with _open(args, args.pages[0]) as cache:
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
    with _open(args) as cache:
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
    with _open(args) as cache:
        removed = cache.prune(args.max_entries, max_size, grace=args.grace)
    if args.json:
        show.print_json([show.record_json(r) for r in removed])
    else:
        show.console().print(f"pruned {len(removed)} least recently used record(s)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with _open(args) as cache:
        count = cache.export(args.file)
    if args.json:
        show.print_json({"records": count, "file": args.file})
    else:
        show.console().print(show.line(f"exported {count} record(s) to {args.file}"))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    with _open(args) as cache:
        report = cache.import_archive(args.file)
    return _print_import(report, args)


def cmd_import_jupyter_cache(args: argparse.Namespace) -> int:
    with _open(args) as cache:
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


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cache", metavar="PATH", help="the cache folder (default: from conf.py)")
    common.add_argument(
        "--docs", metavar="DIR", help="the docs folder (conf.py, or a jupyter-book _config.yml)"
    )
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    common.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    parser = argparse.ArgumentParser(
        prog="nbcache",
        description="Inspect and fill the notebook cache of a Sphinx project (sphinx-nbcache).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    def add(name: str, handler: Handler, text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, parents=[common], help=text, description=text)
        command.set_defaults(handler=handler)
        return command

    status = add("status", cmd_status, "every notebook page: cached, stale (and why), failed")
    status.add_argument("docs_dir", nargs="?", metavar="DOCS_DIR")
    status.add_argument("--check", action="store_true", help="exit 1 if a page is stale/failed")
    add("list", cmd_list, "every record in the cache")
    show_cmd = add("show", cmd_show, "one record, by id prefix or page")
    show_cmd.add_argument("target", metavar="ID|PAGE")
    show_cmd.add_argument("--traceback", action="store_true", help="the kernel traceback")
    add("diff", cmd_diff, "what changed in a page since it was cached").add_argument("page")
    add(
        "why", cmd_why, "why a page is fresh or stale: the file, package or code that changed"
    ).add_argument("page")
    add(
        "scraps", cmd_scraps, "the values a page glued (scrapbook or myst-nb glue), from the cache"
    ).add_argument("page")
    merge = add("merge", cmd_merge, "write a page with its cached outputs as .ipynb")
    merge.add_argument("page", metavar="PAGE")
    merge.add_argument("out", metavar="OUT.ipynb")
    execute = add("execute", cmd_execute, "execute stale pages in parallel and cache them")
    execute.add_argument("targets", nargs="*", metavar="DOCS_DIR|FILE")
    execute.add_argument("-j", "--jobs", type=int, default=None, metavar="N")
    execute.add_argument("--force", action="store_true", help="execute even if cached")
    execute.add_argument("--timeout", type=float, default=None, metavar="S", help="per cell")
    execute.add_argument(
        "--executor",
        metavar="NAME",
        help="who runs the notebooks: local (default), dask, jupyter, a registered name or "
        "package.module:factory (default: nbcache_executor from conf.py)",
    )
    invalidate = add("invalidate", cmd_invalidate, "forget pages' results: they run again")
    invalidate.add_argument("pages", nargs="+", metavar="PAGE")
    clear = add("clear", cmd_clear, "delete every record")
    clear.add_argument("--yes", action="store_true", help="do not ask")
    prune = add("prune", cmd_prune, "delete least recently used records beyond limits")
    prune.add_argument("--max-entries", type=int, metavar="N")
    prune.add_argument("--max-size", metavar="SIZE", help="e.g. 500MB")
    prune.add_argument(
        "--grace",
        type=float,
        default=GRACE_SECONDS,
        metavar="S",
        help=f"keep records used in the last S seconds (default {GRACE_SECONDS:g})",
    )
    add("export", cmd_export, "write the cache to a .tar.gz").add_argument("file")
    add("import", cmd_import, "merge an exported .tar.gz into the cache").add_argument("file")
    add(
        "import-jupyter-cache", cmd_import_jupyter_cache, "bring over a .jupyter_cache folder"
    ).add_argument("path")
    add_calls(add)
    return parser


if __name__ == "__main__":
    sys.exit(main())
