"""A Markdown file is a notebook page exactly when myst-nb says it is (its top matter)."""

from __future__ import annotations

import pytest
from myst_nb.core.read import is_myst_markdown_notebook

from sphinx_nbcache.notebooks.readers import looks_like_myst_notebook

HEADERS = {
    "mystnb": "---\nfile_format: mystnb\n---\n",
    "jupytext myst": (
        "---\njupytext:\n  text_representation:\n    format_name: myst\n"
        "kernelspec:\n  name: python3\n  display_name: Python 3\n---\n"
    ),
    "jupytext markdown": "---\njupytext:\n  text_representation:\n    format_name: markdown\n---\n",
    "dots close it": "---\nfile_format: mystnb\n...\n",
    "trailing blanks": "---\nfile_format: mystnb   \t\n---\n",
    "quoted": "---\n'file_format': \"mystnb\"\n---\n",
    "anchors": "---\nx: &f mystnb\nfile_format: *f\n---\n",
    "plain page": "# Title\n\nfile_format: mystnb\n",
    "other top matter": "---\ntitle: A page\n---\n",
    "not closed": "---\nfile_format: mystnb\n",
    "invalid yaml": "---\nfile_format: [mystnb\n---\n",
    "a list": "---\n- file_format\n- mystnb\n---\n",
    "empty": "---\n---\n",
    "tab indent": "---\njupytext:\n\ttext_representation: 1\n---\n",
}


@pytest.mark.parametrize("name", sorted(HEADERS))
def test_notebook_pages_are_recognised_as_myst_nb_recognises_them(name: str) -> None:
    text = HEADERS[name] + "\n# Title\n\n```{code-cell}\nprint(1)\n```\n"
    assert looks_like_myst_notebook(text) == is_myst_markdown_notebook(text)


def test_the_examples_cover_both_answers() -> None:
    answers = {looks_like_myst_notebook(text + "\n") for text in HEADERS.values()}
    assert answers == {True, False}
