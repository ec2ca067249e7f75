"""Highlighting executed notebooks fast: give Sphinx the IPython lexers by class.

An executed notebook names its lexer in ``language_info.pygments_lexer``, "ipython3" for
Python kernels, and myst-nb highlights its code cells with it. Pygments has that lexer only as
a plugin, and Sphinx looks up a lexer it holds no class for with ``get_lexer_by_name`` for
every code block: a scan of the installed packages' entry points, about a millisecond a block,
which a page of a dozen cells pays a dozen times. Registered once by class, it is the same
lexer, found at once. A lexer the project registered itself is left alone.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["register_notebook_lexers"]

#: the names Python kernels put in ``language_info.pygments_lexer``, and the classes that
#: pygments' plugin entry points name for them (IPython >= 9; IPython.lib.lexers before)
NOTEBOOK_LEXERS = {"ipython3": "IPython3Lexer", "ipython": "IPythonLexer"}
_MODULES = ("ipython_pygments_lexers", "IPython.lib.lexers")


def register_notebook_lexers(app: Any) -> None:
    from sphinx.highlighting import lexer_classes

    missing = [name for name in NOTEBOOK_LEXERS if name not in lexer_classes]
    if not missing:
        return
    for module_name in _MODULES:  # imported directly: a plugin lookup scans every package
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in missing:
            lexer = getattr(module, NOTEBOOK_LEXERS[name], None)
            if lexer is not None:
                app.add_lexer(name, lexer)
        return
