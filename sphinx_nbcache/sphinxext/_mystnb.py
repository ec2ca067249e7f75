"""The one place that touches myst-nb internals: the execution seam.

myst-nb's ``Parser.parse`` reads a notebook, then calls ``create_client(...)`` (imported into
``myst_nb.sphinx_``) to get the executed notebook. We replace that name with our factory, and
wrap ``Parser.parse`` to remember which Sphinx environment is parsing (a context variable). For
an environment whose app has sphinx-nbcache set up, our client hands myst-nb the merged
notebook, and answers myst-nb's ``{eval}`` roles and directives (``eval_variable``) from the
values cached with it, in ``cache`` and ``inline`` mode alike; for any other app the original
factory runs, untouched.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import myst_nb.sphinx_ as mystnb_sphinx
from myst_nb.core.execute import NotebookClientBase
from myst_nb.core.execute.base import EvalNameError
from nbformat import from_dict

from ..notebooks.expressions import EXPRESSIONS_KEY, Values

if TYPE_CHECKING:
    from docutils import nodes
    from myst_nb.core.config import NbParserConfig
    from nbformat import NotebookNode
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment
    from sphinx.util.logging import SphinxLoggerAdapter

    from ._state import BuildState

__all__ = [
    "NbcacheClient",
    "forget_glue_reads",
    "hide_jupyter_cache_line",
    "install",
    "pasted_from",
    "register",
    "render_notebook",
    "unregister",
]

_ENV: contextvars.ContextVar[BuildEnvironment | None] = contextvars.ContextVar(
    "nbcache_env", default=None
)
_STATES: dict[int, BuildState] = {}
#: what an {eval} expression may be where myst-nb has no ``nb_eval_name_regex`` (its default)
_EVAL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
_ORIGINAL_CREATE = mystnb_sphinx.create_client
_ORIGINAL_PARSE = mystnb_sphinx.Parser.parse


def register(app: Sphinx, state: BuildState) -> None:
    _STATES[id(app)] = state


def unregister(app: Sphinx) -> None:
    _STATES.pop(id(app), None)


def state_for_env(env: BuildEnvironment) -> BuildState | None:
    app = getattr(env, "_app", None) or getattr(env, "app", None)
    return _STATES.get(id(app)) if app is not None else None


class _HideJupyterCacheLine(logging.Filter):
    """Drops myst-nb's "Using jupyter-cache at: ..." line: with sphinx-nbcache loaded,
    jupyter-cache is not used (our own line says which cache is)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Using jupyter-cache at")


def hide_jupyter_cache_line() -> None:
    """Install the filter on myst-nb's logger (idempotent)."""
    import myst_nb.sphinx_ext

    target = myst_nb.sphinx_ext.SPHINX_LOGGER.logger
    if not any(isinstance(f, _HideJupyterCacheLine) for f in target.filters):
        target.addFilter(_HideJupyterCacheLine())


def install() -> None:
    """Put our factory and parse wrapper in place (idempotent)."""
    if getattr(mystnb_sphinx.Parser.parse, "_nbcache", False):
        return

    @functools.wraps(_ORIGINAL_PARSE)
    def parse(self: Any, inputstring: str, document: nodes.document) -> None:
        env = getattr(document.settings, "env", None) or getattr(self, "env", None)
        token = _ENV.set(env)
        try:
            _ORIGINAL_PARSE(self, inputstring, document)
        finally:
            _ENV.reset(token)

    parse._nbcache = True  # type: ignore[attr-defined]
    mystnb_sphinx.Parser.parse = parse
    mystnb_sphinx.create_client = create_client


def create_client(
    notebook: NotebookNode,
    source: str,
    nb_config: NbParserConfig,
    logger: SphinxLoggerAdapter,
    read_fmt: dict[str, Any] | None = None,
) -> NotebookClientBase:
    """myst-nb's ``create_client`` signature; ours when sphinx-nbcache runs this build."""
    env = _ENV.get()
    state = state_for_env(env) if env is not None else None
    if env is None or state is None:
        return _ORIGINAL_CREATE(notebook, source, nb_config, logger, read_fmt)
    path = Path(source) if source and Path(source).is_file() else None
    return NbcacheClient(notebook, path, nb_config, logger, state=state, env=env)


class NbcacheClient(NotebookClientBase):  # type: ignore[misc]
    """A myst-nb client whose notebook is the page merged with its cached outputs, and whose
    ``{eval}`` values are the ones cached with them (``inline`` mode needs no live kernel)."""

    def start_client(self) -> None:
        state: BuildState = self._kwargs["state"]
        mode = getattr(self.nb_config, "execution_mode", "cache")
        notebook: Any = self.notebook
        merged, exec_metadata = state.resolve(self._kwargs["env"], self._path, notebook, mode)
        self._values = Values(merged.metadata.pop(EXPRESSIONS_KEY, None))
        self._notebook = merged
        if exec_metadata is not None:
            self.exec_metadata = exec_metadata

    def eval_variable(self, name: str) -> list[NotebookNode]:
        """The cached value of the ``{eval}`` expression ``name`` at its place (myst-nb
        warns at the role's line with our message when it has none)."""
        allowed = getattr(self.nb_config, "eval_name_regex", None) or _EVAL_NAME  # older myst-nb
        if not re.match(allowed, name):
            raise EvalNameError(name)
        return [from_dict(output) for output in self._values.take(name)]


def pasted_from(doctree: nodes.document) -> set[str]:
    """The documents whose glued values this doctree pastes (``{glue}`other.md::key```):
    myst-nb resolves them only when the pasting page is written, from the build folder."""
    from myst_nb.ext.glue.utils import PendingGlueReference

    return {str(node["refdoc"]) for node in doctree.findall(PendingGlueReference)}


def forget_glue_reads() -> None:
    """myst-nb keeps the last glue files it read in an ``lru_cache`` for the life of the
    process: a second build in one process (sphinx-autobuild, tests) would paste old values."""
    from myst_nb.ext.glue import crossref

    cache_clear = getattr(crossref.read_glue_cache, "cache_clear", None)
    if cache_clear is not None:
        cache_clear()


class _Executed(NotebookClientBase):  # type: ignore[misc]
    """A client for a notebook that is already executed (its outputs are rendered as-is)."""


def render_notebook(document: nodes.document, notebook: NotebookNode) -> list[nodes.Node]:
    """The nodes of an executed notebook rendered by myst-nb for ``document``'s page (a page
    variant shown by a directive): myst-nb's own parse, into a fragment of the page."""
    from docutils import nodes as docutils_nodes
    from myst_nb.core.loggers import SphinxDocLogger
    from myst_nb.core.nb_to_tokens import notebook_to_tokens
    from myst_nb.core.render import load_renderer
    from myst_parser.parsers.mdit import create_md_parser
    from sphinx.util.docutils import new_document

    env = document.settings.env
    fragment = new_document(document["source"], document.settings)
    logger = SphinxDocLogger(fragment)
    nb_config = env.mystnb_config
    parser = create_md_parser(env.myst_config, mystnb_sphinx.SphinxNbRenderer)
    parser.options["document"] = fragment
    parser.options["nb_config"] = nb_config
    renderer: Any = parser.renderer
    mdit_env: dict[str, Any] = {}
    fragment.attributes["nb_renderer"] = load_renderer(nb_config.render_plugin)(renderer, logger)
    renderer.setup_render(parser.options, mdit_env)
    tokens = notebook_to_tokens(notebook, parser, mdit_env, logger)
    with _Executed(notebook, None, nb_config, logger) as client:
        parser.options["nb_client"] = client
        renderer.render(tokens, parser.options, mdit_env)
    fragment.attributes.pop("nb_renderer", None)
    found = [n for n in fragment.children if not isinstance(n, docutils_nodes.docinfo)]
    for top in found:  # they belong to the page now (the fragment is not kept)
        for node in top.findall():
            node.document = document
    return found
