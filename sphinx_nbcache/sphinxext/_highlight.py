"""Highlighting executed notebooks fast: give Sphinx the IPython lexers by class.

An executed notebook names its lexer in ``language_info.pygments_lexer``, "ipython3" for
Python kernels, and myst-nb highlights its code cells with it. Pygments has that lexer only as
a plugin, and Sphinx looks up a lexer it holds no class for with ``get_lexer_by_name`` for
every code block: a scan of the installed packages' entry points, about a millisecond a block,
which a page of a dozen cells pays a dozen times. Registered once by class, it is the same
lexer, found at once. A lexer the project registered itself is left alone.
"""

from __future__ import annotations

from typing import Any

__all__ = ["register_notebook_lexers"]

#: the names Python kernels put in ``language_info.pygments_lexer``
NOTEBOOK_LEXERS = ("ipython3", "ipython")


def register_notebook_lexers(app: Any) -> None:
    from pygments.lexers import find_lexer_class_by_name
    from pygments.util import ClassNotFound
    from sphinx.highlighting import lexer_classes

    for name in NOTEBOOK_LEXERS:
        if name in lexer_classes:
            continue
        try:
            lexer = find_lexer_class_by_name(name)  # the one lookup, plugins included
        except ClassNotFound:  # no IPython lexers installed: Sphinx warns as it would
            continue
        app.add_lexer(name, lexer)
