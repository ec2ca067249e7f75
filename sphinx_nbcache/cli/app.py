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
import importlib
import traceback
from collections.abc import Callable, Sequence

from .. import __version__
from ..errors import NbcacheError

__all__ = ["build_parser", "lazy", "main"]

Handler = Callable[[argparse.Namespace], int]


def lazy(where: str) -> Handler:
    """The command ``module:function`` of this package, imported when it runs: ``--version``
    and ``--help`` load the parser only (no notebook library, no database, no Rich)."""
    module, name = where.split(":")

    def handler(args: argparse.Namespace) -> int:
        command = getattr(importlib.import_module(f"{__package__}.{module}"), name)
        return int(command(args))

    return handler


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
        from . import show

        if args.verbose:
            traceback.print_exc()
        show.console(stderr=True).print(show.line(("error:", "red"), f" {exc}"))
        return 2
    except KeyboardInterrupt:
        from . import show

        show.console(stderr=True).print("interrupted")
        return 130


# -- opening the cache --------------------------------------------------------------------------


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

    def add(name: str, handler: Handler | str, text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, parents=[common], help=text, description=text)
        command.set_defaults(handler=lazy(handler) if isinstance(handler, str) else handler)
        return command

    cmd_status, cmd_list, cmd_show = "look:cmd_status", "look:cmd_list", "look:cmd_show"
    cmd_diff, cmd_why, cmd_scraps = "look:cmd_diff", "look:cmd_why", "look:cmd_scraps"
    cmd_merge, cmd_report = "look:cmd_merge", "report:cmd_report"
    cmd_execute, cmd_invalidate, cmd_clear = (
        "act:cmd_execute",
        "act:cmd_invalidate",
        "act:cmd_clear",
    )
    cmd_prune, cmd_export, cmd_import = "act:cmd_prune", "act:cmd_export", "act:cmd_import"
    cmd_import_jupyter_cache = "act:cmd_import_jupyter_cache"

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
        default=None,
        metavar="S",
        help="keep records used in the last S seconds (default: the store's grace, 10 minutes)",
    )
    add("export", cmd_export, "write the cache to a .tar.gz").add_argument("file")
    add("import", cmd_import, "merge an exported .tar.gz into the cache").add_argument("file")
    add(
        "import-jupyter-cache", cmd_import_jupyter_cache, "bring over a .jupyter_cache folder"
    ).add_argument("path")
    report = add(
        "report", cmd_report, "the account of every page from the cache, as text, JSON or JUnit"
    )
    report.add_argument("docs_dir", nargs="?", metavar="DOCS_DIR")
    report.add_argument("--junit", action="store_true", help="print JUnit XML (for CI systems)")
    from .calls import add_commands as add_calls
    from .freeze import add_command as add_freeze

    add_freeze(add)

    add_calls(add)
    return parser
