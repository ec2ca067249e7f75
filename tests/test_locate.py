"""Cells are located at their line in the source file, whatever the format."""

from __future__ import annotations

import jupytext
import nbformat
import pytest

from sphinx_nbcache.notebooks.locate import cell_lines


def sample() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title\n\nimport os is mentioned in prose."),
        nbformat.v4.new_code_cell("import os\nprint(os.sep)"),
        nbformat.v4.new_code_cell("\n\nvalue = 'quote \" and \\\\ backslash'\nvalue"),
    ]
    return nb


def line_with(text: str, needle: str, after: int = 0) -> int:
    lines = text.splitlines()
    return next(i for i, line in enumerate(lines, 1) if i > after and needle in line)


@pytest.mark.parametrize("fmt", ["ipynb", "md:myst", "py:percent", "py:light", "Rmd"])
def test_code_cells_are_found_at_their_line(fmt: str) -> None:
    nb = sample()
    text = nbformat.writes(nb) if fmt == "ipynb" else jupytext.writes(nb, fmt=fmt)
    read = nbformat.reads(text, as_version=4) if fmt == "ipynb" else jupytext.reads(text, fmt=fmt)
    lines = cell_lines(read, text, is_json=fmt == "ipynb")
    prose = line_with(text, "mentioned in prose")
    assert lines[1] == line_with(text, "import os", after=prose)  # not the prose mention
    assert lines[2] == line_with(text, "value = ")  # first non-blank line of the cell


def test_myst_source_map_is_a_lower_bound() -> None:
    from myst_nb.core.read import read_myst_markdown_notebook

    text = (
        "---\nfile_format: mystnb\nkernelspec:\n  name: python3\n---\n\n"
        "x = 1 appears in prose first.\n\n```{code-cell}\n:tags: [hide-input]\nx = 1\n```\n"
    )
    nb = read_myst_markdown_notebook(text, add_source_map=True)
    code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    assert cell_lines(nb, text, is_json=False)[code] == 11
