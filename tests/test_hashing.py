"""The cache key moves with what can change outputs, and only with that."""

from __future__ import annotations

import copy
from pathlib import Path

import jupytext
import nbformat
import pytest

from sphinx_nbcache.config import Options
from sphinx_nbcache.notebooks.hashing import HASH_VERSION, KEY_PATTERN, notebook_key

OPTIONS = Options(cache_path=Path("/nonexistent"))


def notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title\n\nProse."),
        nbformat.v4.new_code_cell("x = 1\nprint(x)"),
        nbformat.v4.new_raw_cell("raw"),
        nbformat.v4.new_code_cell("x + 1", metadata={"tags": ["hide-input"]}),
    ]
    return nb


def key(nb: nbformat.NotebookNode, options: Options = OPTIONS) -> str:
    return notebook_key(nb, options.for_notebook(nb.metadata))


def edited(change) -> nbformat.NotebookNode:  # type: ignore[no-untyped-def]
    nb = copy.deepcopy(notebook())
    change(nb)
    return nb


BASE = key(notebook())


def test_key_shape() -> None:
    assert KEY_PATTERN.fullmatch(BASE)
    assert HASH_VERSION >= 1


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda nb: nb.cells[0].update(source="Other prose."), id="markdown"),
        pytest.param(lambda nb: nb.cells[2].update(source="other raw"), id="raw"),
        pytest.param(
            lambda nb: nb.cells.insert(0, nbformat.v4.new_markdown_cell("new")), id="new-md"
        ),
        pytest.param(
            lambda nb: nb.cells[1].update(
                outputs=[nbformat.v4.new_output("stream", text="1\n")], execution_count=3
            ),
            id="outputs",
        ),
        pytest.param(lambda nb: nb.cells[1].update(id="renamed-id"), id="cell-id"),
        pytest.param(lambda nb: nb.cells[3].metadata.update(tags=["remove-input"]), id="tag"),
        pytest.param(
            lambda nb: nb.cells[3].metadata.update(mystnb={"code_prompt_show": "x"}), id="mystnb"
        ),
        pytest.param(lambda nb: nb.metadata.update(title="T", authors=[]), id="nb-metadata"),
        pytest.param(lambda nb: nb.cells[1].update(source="x = 1\r\nprint(x)\n\n"), id="eol"),
    ],
)
def test_presentational_edits_keep_the_key(change) -> None:  # type: ignore[no-untyped-def]
    assert key(edited(change)) == BASE


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda nb: nb.cells[1].update(source="x = 2\nprint(x)"), id="code"),
        pytest.param(lambda nb: nb.cells.reverse(), id="order"),
        pytest.param(lambda nb: nb.cells.append(nbformat.v4.new_code_cell("3")), id="new-cell"),
        pytest.param(lambda nb: nb.cells[3].metadata.update(tags=["skip-execution"]), id="skip"),
        pytest.param(
            lambda nb: nb.cells[3].metadata.update(tags=["raises-exception"]), id="raises"
        ),
        pytest.param(lambda nb: nb.metadata.kernelspec.update(name="ir"), id="kernel"),
        pytest.param(lambda nb: nb.metadata.update(execution={"allow_errors": True}), id="allow"),
    ],
)
def test_execution_relevant_edits_change_the_key(change) -> None:  # type: ignore[no-untyped-def]
    assert key(edited(change)) != BASE


def test_kernel_aliases_apply_before_hashing() -> None:
    aliased = edited(lambda nb: nb.metadata.kernelspec.update(name="my-env-py"))
    options = Options(cache_path=Path("/x"), kernel_aliases=(("my-.*", "python3"),))
    assert key(aliased, options) == BASE


def test_global_allow_errors_is_in_the_key() -> None:
    options = Options(cache_path=Path("/x"), allow_errors=True)
    assert key(notebook(), options) != BASE


def test_timeout_is_not_in_the_key() -> None:
    options = Options(cache_path=Path("/x"), timeout=999)
    assert key(notebook(), options) == BASE


@pytest.mark.parametrize("fmt", ["md:myst", "py:percent", "py:light", "Rmd"])
def test_converting_the_format_keeps_the_key(fmt: str) -> None:
    text = jupytext.writes(notebook(), fmt=fmt)
    assert key(jupytext.reads(text, fmt=fmt)) == BASE
