"""``nbcache freeze``: the pages' results into a folder meant for git, or ``--check`` them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..freeze.pages import Frozen

__all__ = ["add_command", "cmd_freeze"]

Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]

_STYLES = {
    "written": "green",
    "fresh": "green",
    "removed": "yellow",
    "not frozen": "red",
    "out of date": "red",
    "missing": "red",
}


def add_command(add: Add) -> None:
    command = add(
        "freeze",
        cmd_freeze,
        "write what each page shows into a folder meant for git (_freeze/ beside conf.py); "
        "--check: exit 1 if a frozen result is out of date or missing",
    )
    command.add_argument("pages", nargs="*", metavar="PAGE", help="default: every page")
    command.add_argument(
        "--check", action="store_true", help="compare instead of writing; exit 1 if not current"
    )
    command.add_argument(
        "--folder", metavar="DIR", help="default: nbcache_freeze_folder (_freeze beside conf.py)"
    )


def cmd_freeze(args: argparse.Namespace) -> int:
    from ..freeze.pages import check_pages, freeze_pages
    from .common import open_docs

    hint = args.pages[0] if args.pages else None
    with open_docs(args, hint, read_only=args.check) as cache:
        folder = Path(args.folder).resolve() if args.folder else cache.options.freeze_folder
        if folder is None:
            folder = Path("_freeze").resolve()
        targets = args.pages or None
        done = (check_pages if args.check else freeze_pages)(cache, targets, folder)
    if args.json:
        from . import show

        show.print_json({"folder": str(folder), "pages": [f.to_json() for f in done]})
    else:
        _print(done, folder, args.check)
    return 1 if any(f.bad for f in done) else 0


def _print(done: list[Frozen], folder: Path, check: bool) -> None:
    from . import show

    out = show.console()
    for frozen in done:
        if frozen.state in ("unchanged", "not executed"):
            continue
        reason = f": {frozen.reason}" if frozen.reason and frozen.state != "fresh" else ""
        out.print(
            show.line(f"{frozen.page}: ", (frozen.state, _STYLES.get(frozen.state, "")), reason)
        )
    counts: dict[str, int] = {}
    for frozen in done:
        counts[frozen.state] = counts.get(frozen.state, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no pages"
    out.print(f"{'checked' if check else 'froze into'} {folder}: {summary}")
