"""Page variants: one source notebook shown with given parameters on any page.

A page writes (MyST, or the same directive in reStructuredText)::

    ```{nbcache-notebook} ../models/station.md
    :parameters: {station: west, days: 7}
    ```

The variant is the source notebook with the parameters injected after its ``parameters`` cell
(:func:`.prepare`, ``skip`` cells kept: it is a page, not a call).
It has its own key, is cached separately, and is planned with the pages: :func:`scan` finds
the directives in the text of the pages a build reads, :func:`plan_variant` decides each, and
the stale ones execute in parallel with the stale pages. :func:`variant_result` is what the
directive shows: waited for, looked up or (unplanned) executed now, merged.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .._json import canonical_json
from ..errors import ParameterError
from ..notebooks.parameters import mapping

if TYPE_CHECKING:
    import nbformat

    from ..engine.core import Engine
    from ..notebooks.pages import Page
    from ..plan.verdicts import PageState
    from ..records import Record

__all__ = [
    "DIRECTIVE",
    "VariantRef",
    "declared_variants",
    "parse_parameters",
    "plan_variant",
    "scan",
    "variant_result",
    "variants_digest",
]

DIRECTIVE = "nbcache-notebook"

_MYST = re.compile(r"^[ \t]*(?:`{3,}|~{3,})[ \t]*\{" + DIRECTIVE + r"\}[ \t]+(\S+)[ \t]*$", re.M)
_RST = re.compile(r"^[ \t]*\.\.[ \t]+" + DIRECTIVE + r"::[ \t]+(\S+)[ \t]*$", re.M)
_OPTION = re.compile(r"^[ \t]*:parameters:[ \t]*(.*)$")
_TEXT_SUFFIXES = (".md", ".rst", ".txt")


class VariantRef(NamedTuple):
    """A directive found in a page's text: the notebook's path as written, its parameters."""

    path: str
    parameters: str  # the option's text ("" for none)


def scan(text: str) -> list[VariantRef]:
    """The variant directives in a page's source text (cheap: a look-ahead for planning; the
    directive itself is what counts)."""
    if DIRECTIVE not in text:
        return []
    found = []
    lines = text.splitlines()
    starts = {text.count("\n", 0, m.start()): m.group(1) for m in _MYST.finditer(text)}
    starts.update({text.count("\n", 0, m.start()): m.group(1) for m in _RST.finditer(text)})
    for line, path in sorted(starts.items()):
        parameters = ""
        for following in lines[line + 1 : line + 8]:
            match = _OPTION.match(following)
            if match:
                parameters = match.group(1).strip()
                break
        found.append(VariantRef(path, parameters))
    return found


def declared_variants(root: Path, target: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every ``nbcache-notebook`` directive in the text pages under ``root`` that shows the
    notebook ``target``: (the page's file, the parameters), by file, in order."""
    from ..execute import DEFAULT_IGNORE

    wanted = target.resolve()
    found: list[tuple[Path, dict[str, Any]]] = []
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if not any(fnmatch.fnmatchcase(d, p) for p in DEFAULT_IGNORE)
        )
        for name in sorted(filenames):
            if not name.endswith(_TEXT_SUFFIXES):
                continue
            path = Path(folder, name)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            for ref in scan(text):
                relative = ref.path
                shown = root / relative[1:] if relative.startswith("/") else path.parent / relative
                if shown.resolve() != wanted:
                    continue
                try:
                    found.append((path, parse_parameters(ref.parameters, str(path))))
                except ParameterError:
                    continue  # the build warns at the directive
    return found


def variants_digest(root: Path, notebook: Path) -> str:
    """A digest of the directives under ``root`` showing ``notebook``: a result that read
    its variants is stale when one is added, changed or removed (not when prose changes)."""
    import hashlib

    digest = hashlib.sha256()
    for path, parameters in declared_variants(root, notebook):
        where = path.resolve().relative_to(root.resolve()).as_posix()
        text = canonical_json(parameters)
        digest.update(f"{where}\0{text}\n".encode())
    return digest.hexdigest()


def parse_parameters(text: str, where: str) -> dict[str, Any]:
    """The ``:parameters:`` option: a YAML (or JSON) mapping."""
    return mapping(text, where, ":parameters:")


def plan_variant(engine: Engine, page: Page, parameters: Mapping[str, Any]) -> PageState:
    """The verdict on ``page`` run with ``parameters`` (the engine's one lookup):
    ``cached``/``failed`` with its current result, or ``stale``. Raises
    :class:`~sphinx_nbcache.errors.SignatureError` (a parameter it does not declare) and
    :class:`~sphinx_nbcache.errors.NotebookReadError`."""
    from ..notebooks.runnable import read_runnable

    run = read_runnable(page, engine.options, engine.md_config, parameters)
    return engine.current(run)


def variant_result(engine: Engine, state: PageState) -> tuple[Record, nbformat.NotebookNode]:
    """The variant's result (waited for if it runs, executed now if it was not planned) and
    a copy of what ran merged with it."""
    assert state.run is not None
    return engine.result(state.run, copy_nb=True)
