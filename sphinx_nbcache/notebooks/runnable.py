"""What runs, and its cache key: a page as written, a page shown with parameters (a variant),
or a notebook called as a function. The one place a notebook becomes a key.

Every caller that needs a key comes here: planning a page (``plan.parse``), checking that the
code of a notebook read by another is unchanged (a ``code:`` dependency), a variant, a call, the
CLI's ``merge`` and ``diff``, a jupyter-cache import. The key is
:func:`~sphinx_nbcache.notebooks.hashing.notebook_key` of the notebook that runs, with the
notebook's own execution options (``metadata.mystnb`` and ``metadata.execution``) applied and
the parameters it is given, and its inline expressions (``{eval}``,
:mod:`~sphinx_nbcache.notebooks.expressions`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .._json import canonical_json
from .expressions import Expression, expressions_in, keyed
from .functions import prepare
from .hashing import notebook_key
from .pages import Page
from .readers import load_notebook

if TYPE_CHECKING:
    import nbformat

    from ..config import Options
    from .readers import MdConfig

__all__ = ["CALL_PREFIX", "Runnable", "key_of", "read_runnable", "runnable", "variant_of"]

#: the row a call's result is kept as starts with this (a variant's row is its parameters' hash)
CALL_PREFIX = "call:"


class Runnable(NamedTuple):
    """A notebook as it runs, with its options and its key."""

    page: Page
    notebook: nbformat.NotebookNode  # what runs: parameters injected, ``skip`` cells out (calls)
    options: Options  # the project's options with the notebook's own applied
    key: str
    sibling: str  # the key of the same code run with the other ``allow_errors``
    parameters: dict[str, Any] | None = None  # injected (None: the page as written)
    #: the ``pages`` row its result is kept as: "" for the page as written, the parameters'
    #: hash for a variant, ``call:`` and that hash for a call
    variant: str = ""
    #: its inline expressions (``{eval}``), evaluated between its code cells
    expressions: tuple[Expression, ...] = ()


def variant_of(parameters: Mapping[str, Any] | None, call: bool = False) -> str:
    """The ``pages`` row a run with ``parameters`` is kept as ("" for the page as written)."""
    if not parameters and not call:
        return ""
    digest = hashlib.sha256(canonical_json(dict(parameters or {})).encode("utf-8")).hexdigest()
    return CALL_PREFIX + digest if call else digest


def runnable(
    notebook: nbformat.NotebookNode,
    page: Page,
    options: Options,
    parameters: Mapping[str, Any] | None = None,
    *,
    call: bool = False,
) -> Runnable:
    """What runs for ``notebook`` (read already) given ``parameters``; ``call``: as a function
    (``skip`` cells left out, the ``return`` cell publishing its value)."""
    own = options.for_notebook(notebook.get("metadata", {}))
    given = dict(parameters) if parameters is not None else None
    runs = notebook
    if given or call:
        runs = prepare(notebook, given, path=page.name, call=call)
    found = expressions_in(runs)
    evaluated = keyed(found)
    key = notebook_key(runs, own, given, expressions=evaluated)
    sibling = notebook_key(
        runs, own, given, allow_errors=not own.allow_errors, expressions=evaluated
    )
    return Runnable(page, runs, own, key, sibling, given, variant_of(given, call), found)


def read_runnable(
    page: Page,
    options: Options,
    md_config: MdConfig = None,
    parameters: Mapping[str, Any] | None = None,
    *,
    call: bool = False,
    raw: bytes | None = None,
) -> Runnable:
    """Read ``page`` (or its ``raw`` bytes) and work out what runs and its key; raises
    :class:`~sphinx_nbcache.errors.NotebookReadError` naming the file."""
    notebook = load_notebook(page.path, options, text=raw, md_config=md_config)
    return runnable(notebook, page, options, parameters, call=call)


def key_of(notebook: nbformat.NotebookNode, options: Options, path: str | Path = "notebook") -> str:
    """The key of a notebook as written (already read)."""
    return runnable(notebook, Page(str(path), Path(path)), options).key
