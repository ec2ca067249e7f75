"""Thin ``on_<event>`` handlers: each hands its event to :class:`BuildState`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sphinx.errors import ConfigError as SphinxConfigError
from sphinx.errors import SphinxError
from sphinx.util import logging

from ..config import OPTION_DEFAULTS, Options
from ..errors import ConfigError, StoreError
from . import _mystnb
from ._highlight import register_notebook_lexers
from ._state import BuildState, Rendered

__all__ = [
    "on_build_finished",
    "on_builder_inited",
    "on_config_inited",
    "on_env_before_read_docs",
    "on_env_get_outdated",
    "on_env_merge_info",
    "on_env_purge_doc",
    "on_env_updated",
    "on_source_read",
]

logger = logging.getLogger("sphinx_nbcache")

_MYSTNB_OPTIONS = (
    "nb_execution_mode",
    "nb_execution_cache_path",
    "nb_execution_excludepatterns",
    "nb_execution_timeout",
    "nb_execution_allow_errors",
    "nb_execution_raise_on_error",
    "nb_execution_show_tb",
    "nb_execution_in_temp",
    "nb_kernel_rgx_aliases",
    "nb_custom_formats",
)

#: A notebook that shows why the real one could not be read (replaces unreadable .ipynb text).
_PLACEHOLDER = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {},
    "cells": [],
}


def options_of(app: Any) -> Options:
    config = app.config
    values = {name: getattr(config, name, None) for name in (*OPTION_DEFAULTS, *_MYSTNB_OPTIONS)}
    try:
        return Options.from_mapping(values, base_dir=app.confdir or app.srcdir)
    except ConfigError as exc:
        raise SphinxConfigError(f"sphinx-nbcache: {exc}") from None


def on_config_inited(app: Any, config: Any) -> None:
    """Validate the options early; keep the cache folder out of Sphinx's sources."""
    options = options_of(app)
    try:
        relative = options.cache_path.relative_to(Path(app.srcdir).resolve())
    except ValueError:
        return
    pattern = f"{relative.as_posix()}/**"
    if pattern not in config.exclude_patterns:
        config.exclude_patterns = [*config.exclude_patterns, pattern]


def on_builder_inited(app: Any) -> None:
    _mystnb.install()
    env = app.env
    for name in ("nbcache_memos", "nbcache_rendered"):
        if not hasattr(env, name):
            setattr(env, name, {})
    if not hasattr(env, "nbcache_token"):
        env.nbcache_token = None  # the cache's change token the doctrees agree with
    options = options_of(app)
    state = BuildState(options, md_config=getattr(env, "myst_config", None))
    _mystnb.register(app, state)
    # myst-nb has just printed "Using jupyter-cache at ...": say who executes instead
    if options.mode in ("cache", "auto", "force"):
        logger.info(
            "sphinx-nbcache: notebooks execute through the cache at %s (%d at a time); "
            "myst-nb's jupyter-cache is not used",
            options.cache_path,
            options.jobs,
        )


def _state(app: Any) -> BuildState | None:
    return _mystnb.state_for_env(app.env)


def on_env_get_outdated(
    app: Any, env: Any, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    state = _state(app)
    if state is None:
        return []
    try:  # the cache is opened here, unless nothing changed since the last build
        again = state.plan(env, env.nbcache_memos, env.nbcache_rendered, added | changed, removed)
    except StoreError as exc:
        raise SphinxConfigError(f"sphinx-nbcache: {exc}") from None
    return sorted(again)


def on_env_before_read_docs(app: Any, env: Any, docnames: list[str]) -> None:
    """Read cheap pages first; under ``-j``, finish executing before Sphinx forks readers
    (a fork while the executor thread starts a kernel would inherit its pipes)."""
    state = _state(app)
    if state is None:
        return
    docnames[:] = state.read_order(docnames)
    state.reading = len(docnames)
    for docname in docnames:  # Sphinx itself aborts on undecodable text: say which and why
        planned = state.planned.get(docname)
        if planned is not None and planned.verdict == "unreadable":
            try:
                planned.page.path.read_text(encoding=app.config.source_encoding)
            except (UnicodeDecodeError, LookupError) as exc:
                raise SphinxError(
                    f"sphinx-nbcache: {planned.page.path} is not {app.config.source_encoding} "
                    f"text ({exc.__class__.__name__}), so Sphinx cannot read it: save it as "
                    "UTF-8, or add it to exclude_patterns"
                ) from None
            except OSError:
                pass
    if app.parallel > 1:
        state.execute_all(app.verbosity)


def on_source_read(app: Any, docname: str, source: list[str]) -> None:
    """Unreadable notebooks: warn at the page and hand myst-nb something it can render."""
    state = _state(app)
    if state is None or not state.warn_unreadable(docname):
        return
    path = str(app.env.doc2path(docname))
    source[0] = json.dumps(_PLACEHOLDER) if path.endswith(".ipynb") else ""


def on_env_updated(app: Any, env: Any) -> list[str]:
    """After reading, before writing (in this process, so forked writers inherit it)."""
    state = _state(app)
    if state is None:
        return []
    kept = state.settle(env)
    if not state.unchanged:  # pages with outputs are about to be written
        register_notebook_lexers(app)
    root = app.config.root_doc
    if kept and not state.reading and root in env.all_docs:
        # Sphinx saves the environment only when a page was read or is to be written: name
        # the root page, so that the token is kept and the next build skips the cache
        return [root]
    return []


def on_env_purge_doc(app: Any, env: Any, docname: str) -> None:
    getattr(env, "nbcache_rendered", {}).pop(docname, None)


def on_env_merge_info(app: Any, env: Any, docnames: list[str], other: Any) -> None:
    ours: dict[str, Rendered] = env.nbcache_rendered
    theirs: dict[str, Rendered] = getattr(other, "nbcache_rendered", {})
    for docname in docnames:
        if docname in theirs:
            ours[docname] = theirs[docname]


def on_build_finished(app: Any, exception: BaseException | None) -> None:
    state = _state(app)
    if state is None:
        return
    try:
        state.finish(cancel=exception is not None)
    finally:
        _mystnb.unregister(app)
