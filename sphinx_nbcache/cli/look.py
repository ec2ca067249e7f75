"""Commands that look: ``status``, ``list``, ``show``, ``diff``, ``why``, ``scraps``, ``merge``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import NbcacheError
from . import show
from .common import open_docs, print_notices

__all__ = ["cmd_diff", "cmd_list", "cmd_merge", "cmd_scraps", "cmd_show", "cmd_status", "cmd_why"]


def cmd_status(args: argparse.Namespace) -> int:
    with open_docs(args, read_only=True) as cache:
        states = cache.status()
        notices = cache.notices()
    print_notices(notices)
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
    with open_docs(args, read_only=True) as cache:
        rows = [(r, cache.size_of(r)) for r in cache.records()]
    if args.json:
        show.print_json([show.record_json(r, size) for r, size in rows])
    else:
        out = show.console()
        out.print(show.records_table(rows))
        out.print(show.line(f"{len(rows)} records in {cache.path}"))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_docs(args, args.target, read_only=True) as cache:
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
    with open_docs(args, args.page, read_only=True) as cache:
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
    with open_docs(args, args.page, read_only=True) as cache:
        state = cache.why(args.page)
    if args.json:
        show.print_json(show.page_json(state))
    else:
        verdict = "fresh" if state.verdict == "cached" else state.verdict
        out = show.console()
        out.print(show.line(f"{state.page.name}: {verdict}: {state.reason or '-'}"))
        record = state.record
        if record is not None and record.dependencies is not None:
            checked = "checked against" if state.verdict == "cached" else "its result depended on"
            lines = show.dependency_lines(record.dependencies)
            if lines:
                out.print(show.line(f"{checked}:"))
            for text in lines:
                out.print(show.line(f"  {text}"))
    return 1 if state.verdict in ("stale", "failed", "unreadable") else 0


def cmd_scraps(args: argparse.Namespace) -> int:
    with open_docs(args, args.page, read_only=True) as cache:
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

    with open_docs(args, args.page, read_only=True) as cache:
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
