"""Thin ``on_<event>`` handlers: each hands its event to :class:`BuildState`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from sphinx.errors import ConfigError as SphinxConfigError
from sphinx.errors import SphinxError
from sphinx.util import logging

from ..config import MYSTNB_OPTIONS, OPTIONS, Options
from ..errors import ConfigError, StoreError
from ..options import unknown_options
from . import _mystnb, _variants
from ._highlight import register_notebook_lexers
from ._memory import env_memos, env_pasted, env_rendered, env_token, set_env_token
from ._state import BuildState

if TYPE_CHECKING:
    from docutils import nodes
    from sphinx.application import Sphinx
    from sphinx.config import Config
    from sphinx.environment import BuildEnvironment

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

#: A notebook that shows why the real one could not be read (replaces unreadable .ipynb text).
_PLACEHOLDER = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {},
    "cells": [],
}


def options_of(app: Sphinx) -> Options:
    config = app.config
    values = {name: getattr(config, name, None) for name in (*OPTIONS, *MYSTNB_OPTIONS)}
    try:
        return Options.from_mapping(values, base_dir=app.confdir or app.srcdir)
    except ConfigError as exc:
        raise SphinxConfigError(f"sphinx-nbcache: {exc}") from None


def on_config_inited(app: Sphinx, config: Config) -> None:
    """Validate the options early, warn about misspelt ones; keep the cache folder out of
    Sphinx's sources."""
    options = options_of(app)
    warn_unknown_options(config, app.confdir)
    try:
        relative = options.cache_path.relative_to(Path(app.srcdir).resolve())
    except ValueError:
        return
    pattern = f"{relative.as_posix()}/**"
    if pattern not in config.exclude_patterns:
        config.exclude_patterns = [*config.exclude_patterns, pattern]


def warn_unknown_options(config: Config, confdir: str | Path | None) -> None:
    """A warning for each ``nbcache_*`` name in ``conf.py`` (or ``_config.yml``) that is no
    option, naming the closest option: Sphinx itself ignores names it does not know."""
    raw = getattr(config, "_raw_config", None)
    names = set(raw) if isinstance(raw, dict) else set(config.__dict__)
    names |= set(getattr(config, "overrides", {}) or {})  # -D, jupyter-book's _config.yml
    found = unknown_options(names)
    if not found:
        return
    conf = Path(confdir, "conf.py") if confdir else None
    try:
        lines = conf.read_text(encoding="utf-8").splitlines() if conf is not None else []
    except (OSError, UnicodeDecodeError):
        lines = []
    for name, close in found:
        hint = f"did you mean {close!r}?" if close else "see the options in the documentation"
        line = next((n for n, text in enumerate(lines, 1) if text.startswith(name)), None)
        logger.warning(
            f"sphinx-nbcache: {name!r} is not an option of sphinx-nbcache and is ignored; {hint}",
            location=f"{conf}:{line}" if line is not None else None,  # (no env yet: a path)
            type="nbcache",
            subtype="config",
        )


def on_builder_inited(app: Sphinx) -> None:
    _mystnb.install()
    _mystnb.forget_glue_reads()  # another build in this process: values pasted anew
    env = app.env
    env_memos(env)  # created if missing
    env_rendered(env)
    set_env_token(env, env_token(env))
    options = options_of(app)
    state = BuildState(options, root=Path(app.srcdir), md_config=getattr(env, "myst_config", None))
    _mystnb.register(app, state)
    if options.mode in ("cache", "auto", "force"):  # myst-nb's own cache line is hidden
        at_once = f"{options.jobs} at a time"
        if options.max_jobs > options.jobs and options.executor == "local":
            at_once += f", up to {options.max_jobs} while the CPUs are idle"
        logger.info(
            "sphinx-nbcache: notebooks execute through the cache at %s (executor %s, %s)",
            state.engine.describe_store(),
            options.executor,
            at_once,
        )


def _state(app: Sphinx) -> BuildState | None:
    return _mystnb.state_for_env(app.env)


def on_env_get_outdated(
    app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    state = _state(app)
    if state is None:
        return []
    try:  # the cache is opened here, unless nothing changed since the last build
        again = state.plan(env, added | changed, removed)
        if state.from_memory:  # (else planned with the pages) variants of the pages read
            again |= _variants.plan_for_reading(state, env, added | changed | again)
            state.engine.start(state.variants.values())
    except (StoreError, ConfigError) as exc:
        raise SphinxConfigError(f"sphinx-nbcache: {exc}") from None
    # a page pasting a value glued in a page read again is read (and written) again too
    moved = added | changed | set(again)
    pasting = {doc for doc, sources in env_pasted(env).items() if sources & moved}
    return sorted(set(again) | (pasting - added - changed))


def on_doctree_read(app: Sphinx, doctree: nodes.document) -> None:
    """Remember which documents this one pastes glued values from."""
    if _state(app) is None:
        return
    sources = _mystnb.pasted_from(doctree)
    pasted = env_pasted(app.env)
    if sources:
        pasted[app.env.docname] = sources
    else:
        pasted.pop(app.env.docname, None)


def on_env_before_read_docs(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    """Read cheap pages first; under ``-j``, readers start while the notebooks execute when
    every kernel is forked from a warm process, else executing finishes before Sphinx forks
    its readers (a fork while the executor thread starts a kernel would inherit the pipes of
    that start and hang it)."""
    state = _state(app)
    if state is None:
        return
    state.announce()
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
        if state.engine.may_fork_while_executing():
            logger.info("nbcache: reading pages while the notebooks execute (forked kernels)")
        else:
            state.execute_all()


def on_source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    """Unreadable notebooks: warn at the page and hand myst-nb something it can render."""
    state = _state(app)
    if state is None or not state.warn_unreadable(docname):
        return
    path = str(app.env.doc2path(docname))
    source[0] = json.dumps(_PLACEHOLDER) if path.endswith(".ipynb") else ""


def on_env_updated(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """After reading, before writing (in this process, so forked writers inherit it)."""
    state = _state(app)
    if state is None:
        return []
    kept = state.settle(env)
    kept = state.restamp(env) or kept
    if not state.unchanged:  # pages with outputs are about to be written
        register_notebook_lexers(app)
    root = app.config.root_doc
    if kept and not state.reading and root in env.all_docs:
        # Sphinx saves the environment only when a page was read or is to be written: name
        # the root page, so that the token (or the stamp) is kept for the next build
        return [root]
    return []


def on_env_purge_doc(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    env_rendered(env).pop(docname, None)
    env_pasted(env).pop(docname, None)
    _variants.purge(env, docname)


def on_env_merge_info(
    app: Sphinx, env: BuildEnvironment, docnames: list[str], other: BuildEnvironment
) -> None:
    rendered, pasted = env_rendered(other), env_pasted(other)
    for docname in docnames:
        if docname in rendered:
            env_rendered(env)[docname] = rendered[docname]
        if docname in pasted:
            env_pasted(env)[docname] = pasted[docname]
    _variants.merge(env, docnames, other)


def on_build_finished(app: Sphinx, exception: BaseException | None) -> None:
    state = _state(app)
    if state is None:
        return
    try:
        state.finish(cancel=exception is not None, env=app.env)
    finally:
        _mystnb.unregister(app)
