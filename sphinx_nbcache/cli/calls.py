"""``nbcache run`` (call a notebook as a function) and ``nbcache serve`` (over HTTP)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import NotebookCallError, ParameterError
from ..notebooks.parameters import literal, mapping

__all__ = ["add_commands", "cmd_run", "cmd_serve", "parse_parameters"]

Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def parse_parameters(pairs: list[list[str]], yaml_text: list[str]) -> dict[str, Any]:
    """``-p name value`` pairs (values read as YAML/JSON literals, else strings) and ``-y``
    YAML mappings, later ones winning, as papermill reads them (YAML aliases refused)."""
    parameters: dict[str, Any] = {}
    for text in yaml_text:
        if not text.strip():
            raise ParameterError("-y", "give a mapping, like -y 'x: 1'")
        parameters.update(mapping(text, "-y", like="-y 'x: 1'"))
    for name, raw in pairs:
        parameters[name] = literal(raw, f"-p {name}")
    return parameters


def cmd_run(args: argparse.Namespace) -> int:
    from ..workflows.calls import run_notebook
    from . import show

    parameters = parse_parameters(args.parameter or [], args.yaml or [])
    notebook = _notebook_path(args)
    try:
        result = run_notebook(
            notebook,
            parameters,
            docs=args.docs,
            cache=args.cache,
            timeout=args.timeout,
            force=args.force,
        )
    except NotebookCallError as exc:
        err = show.console(stderr=True)
        if args.json:
            show.print_json(
                {
                    "error": type(exc).__name__,
                    "ename": exc.ename,
                    "evalue": exc.evalue,
                    "traceback": exc.traceback,
                    "cell": exc.cell,
                }
            )
        else:
            err.print(show.visible(exc.traceback or "", lines=True))
        err.print(show.line(("error:", "red"), f" {exc}"))
        return 1
    if args.json:
        show.print_json({**result.to_json(), "page": result.page, "parameters": parameters})
        return 0
    show.print_json(result.value)
    how = "from the cache" if result.cached else "executed"
    show.console(stderr=True).print(
        show.line(
            f"{result.page}: {how} in {show.format_seconds(result.seconds)} "
            f"(record {show.short_id(result.record.id)})"
        )
    )
    return 0


def _notebook_path(args: argparse.Namespace) -> str | Path:
    """The file named, or the file of the page named (``examples/forecast``)."""
    if Path(args.notebook).exists():
        return str(args.notebook)
    from ..api import open_cache
    from .common import docs_for

    with open_cache(docs_for(args), args.cache, read_only=True) as cache:
        return cache.page(args.notebook).path


def cmd_serve(args: argparse.Namespace) -> int:
    from ..rest import main as serve

    root = Path(args.root or args.docs or ".")
    return serve(
        root,
        port=args.port,
        token=args.token,
        allow_root=args.allow_root,
        full_server=args.full_server,
    )


def add_commands(add: Add) -> None:
    run = add("run", cmd_run, "call a notebook as a function: parameters in, its value out")
    run.add_argument("notebook", metavar="NOTEBOOK")
    run.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="a parameter (VALUE read as a YAML/JSON literal: 1, true, [1, 2], text)",
    )
    run.add_argument(
        "-y", "--yaml", action="append", metavar="YAML", help="parameters as a YAML mapping"
    )
    run.add_argument("--timeout", type=float, default=None, metavar="S", help="per cell")
    run.add_argument("--force", action="store_true", help="execute even if cached")
    serve = add("serve", cmd_serve, "serve every notebook under a folder as a REST endpoint")
    serve.add_argument("root", nargs="?", metavar="DIR", help="default: --docs, or here")
    serve.add_argument("--port", type=int, default=8890, metavar="N")
    serve.add_argument("--token", default=None, help="default: a new random token")
    serve.add_argument("--allow-root", action="store_true", help="run even as root (Jupyter)")
    serve.add_argument(
        "--full-server",
        action="store_true",
        help="also serve Jupyter's own APIs and extensions (contents, files, kernels, sessions, "
        "terminals: a shell as you, to anyone with the token); default: the endpoint only",
    )
