"""The Sphinx extension: ``extensions = ["myst_nb", "sphinx_nbcache"]``.

The only package that imports Sphinx. ``setup()`` registers the options and connects thin
handlers (``_handlers``) to the build events; the build's state lives in ``_state``; myst-nb is
touched only in ``_mystnb``. Per-page data lives in the environment (``env.nbcache_memos``,
``env.nbcache_rendered``) and is merged after parallel reads; ``env.nbcache_token`` is the
cache's change token the doctrees agree with (a build with nothing changed never opens the
cache).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import __version__
from ..config import OPTIONS
from ..workflows import kinds as _kinds  # noqa: F401  (the workflows' dependency kinds)
from . import _handlers, _mystnb, _variants

if TYPE_CHECKING:
    from sphinx.application import Sphinx

__all__ = ["ENV_VERSION", "setup"]

#: Bump when the layout of our environment data changes (Sphinx then re-reads everything).
ENV_VERSION = 8


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("myst_nb")
    _mystnb.hide_jupyter_cache_line()  # myst-nb would name a cache that is not used
    for name, spec in OPTIONS.items():
        app.add_config_value(name, spec.default, spec.rebuild, types=spec.types)
    app.connect("config-inited", _handlers.on_config_inited)
    app.connect("builder-inited", _handlers.on_builder_inited, priority=600)
    app.connect("env-get-outdated", _handlers.on_env_get_outdated)
    app.connect("env-before-read-docs", _handlers.on_env_before_read_docs)
    app.connect("source-read", _handlers.on_source_read, priority=100)
    app.connect("env-updated", _handlers.on_env_updated)
    app.connect("doctree-read", _handlers.on_doctree_read)
    app.connect("env-purge-doc", _handlers.on_env_purge_doc)
    app.connect("env-merge-info", _handlers.on_env_merge_info)
    app.connect("build-finished", _handlers.on_build_finished)
    app.setup_extension("sphinx_nbcache.sphinxext._report")  # the nbcache-report directive
    _variants.setup(app)  # the nbcache-notebook directive
    return {
        "version": __version__,
        "env_version": ENV_VERSION,
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }
