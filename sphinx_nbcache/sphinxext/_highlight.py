"""Highlighting executed notebooks fast: give Sphinx their lexers by class.

myst-nb highlights an executed notebook's code cells with the lexer its ``language_info``
names ("ipython3" for Python kernels), stream outputs with ``nb_render_text_lexer``
("myst-ansi") and tracebacks with ``nb_render_error_lexer`` ("ipythontb"). Pygments has these
only as plugins, and Sphinx looks up a lexer it holds no class for with ``get_lexer_by_name``
for every code block, which searches the installed packages' entry points each time. Here the
entry points are searched once and the same classes pygments would find are registered with
Sphinx; a lexer the project registered itself is left alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sphinx.application import Sphinx

__all__ = ["register_notebook_lexers"]

#: the names Python kernels put in ``language_info.pygments_lexer``
KERNEL_LEXERS = ("ipython3", "ipython")


def register_notebook_lexers(app: Sphinx) -> None:
    from importlib.metadata import entry_points

    from pygments.lexers import LEXERS
    from sphinx.highlighting import lexer_classes

    config = app.config
    wanted = {
        *KERNEL_LEXERS,
        getattr(config, "nb_render_text_lexer", "myst-ansi"),
        getattr(config, "nb_render_error_lexer", "ipythontb"),
    }
    missing = {name for name in wanted if name not in lexer_classes}
    if missing:  # pygments' own lexers are found without a search
        missing -= {alias for _, _, aliases, _, _ in LEXERS.values() for alias in aliases}
    if not missing:  # registered by an earlier build of this process, or by the project
        return
    # in entry-point order, the first class with the alias: what get_lexer_by_name would find
    for entry in entry_points(group="pygments.lexers"):
        if not missing:
            break
        if entry.name not in missing:  # load only the plugins named like what we look for
            continue
        try:
            lexer = entry.load()
        except Exception:  # a broken plugin: Sphinx reports it when it meets the name
            continue
        for alias in missing & set(getattr(lexer, "aliases", ())):
            app.add_lexer(alias, lexer)
        missing -= set(getattr(lexer, "aliases", ()))
