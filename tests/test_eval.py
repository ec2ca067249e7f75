"""Inline expressions ({eval}) run through the engine: evaluated at their places in the page's
kernel, their values cached with the outputs and shown by myst-nb's eval roles from the cache."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import nbformat
import pytest

from sphinx_nbcache.config import Options
from sphinx_nbcache.errors import ExpressionError
from sphinx_nbcache.notebooks.expressions import Expression, Values, expressions_in
from sphinx_nbcache.notebooks.runnable import key_of
from sphinx_nbcache.records import Outputs

HAS_JUPYTER_BOOK = importlib.util.find_spec("jupyter_book") is not None
ROOTS = Path(__file__).parent / "roots"


def shown(html: str, text: str) -> list[str]:
    """The values rendered after ``text`` (myst-nb renders an inline value in a span)."""
    return re.findall(re.escape(text) + r"\s*<span[^>]*>([^<]*)</span>", html)


def test_expressions_are_found_at_their_places() -> None:
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("Before: {eval}`a`, not `{eval}`\n\n```\n{eval}`b`\n```"),
            nbformat.v4.new_code_cell("a = 1"),
            nbformat.v4.new_markdown_cell(
                "text\n\n:::{note}\nNested {eval}`a + 1`\n:::\n\n```{eval} c\n```\n"
            ),
            nbformat.v4.new_code_cell("c = 2"),
            nbformat.v4.new_markdown_cell("no expression here"),
        ]
    )
    assert expressions_in(notebook) == (
        Expression("a", 0, 0, 0),
        Expression("a + 1", 1, 2, 3),
        Expression("c", 1, 2, 6),
    )


def test_only_expressions_and_their_places_are_in_the_key() -> None:
    options = Options(cache_path=Path("/nonexistent"))

    def key(*cells: nbformat.NotebookNode) -> str:
        return key_of(nbformat.v4.new_notebook(cells=list(cells)), options)

    code = nbformat.v4.new_code_cell("x = 1")
    md = nbformat.v4.new_markdown_cell
    plain = key(md("prose"), code)
    assert key(md("other prose"), code) == plain  # no expression: the key never changed
    with_eval = key(code, md("x is {eval}`x`"))
    assert with_eval != plain
    assert key(code, md("now x is {eval}`x`!")) == with_eval  # prose around it
    assert key(code, md("x is {eval}`x + 0`")) != with_eval  # the expression
    assert key(md("x is {eval}`x`"), code) != with_eval  # its place among the code cells


def test_eval_page_is_cached_and_shows_values_at_their_places(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("eval")
    first = project.build()
    assert first.executed == Counter({"stats": 1, "cachemode": 1}), first.status
    html = project.html("stats")
    assert shown(html, "The mean is") == ["5.0"]
    assert shown(html, "the label is still") == ["first"]  # inside a note, before cell 2
    assert shown(html, "Now the label is") == ["second"]  # after cell 2
    assert re.search(r"<pre><span></span>3\n</pre>", html)  # the {eval} directive
    assert shown(project.html("cachemode"), "The total is") == ["42"]
    # a failing expression: a warning at its line, naming the error
    failing = [w for w in first.warnings.splitlines() if "missing_name" in w]
    assert len(failing) == 1, first.warnings
    assert "stats.md:40:" in failing[0]
    assert "NameError" in failing[0]
    assert "[mystnb.eval]" in failing[0]
    assert "WARNING" not in first.warnings.replace(failing[0], ""), first.warnings

    # prose edited: nothing executes, the values are still shown
    project.edit("stats.md", "The mean is", "The arithmetic mean is")
    prose = project.build()
    assert prose.total == 0, prose.status
    assert shown(project.html("stats"), "The arithmetic mean is") == ["5.0"]
    assert "missing_name" in prose.warnings  # warned again where the page is shown again

    # an expression edited: the page runs once
    project.edit("stats.md", "{eval}`mean`", "{eval}`total`")
    edited = project.build()
    assert edited.executed == Counter({"stats": 1}), edited.status
    assert shown(project.html("stats"), "The arithmetic mean is") == ["15"]

    # CI restore (build folder gone, cache kept): nothing runs, the values are shown
    project.clear_build()
    restored = project.build()
    assert restored.total == 0, restored.status
    assert shown(project.html("stats"), "The arithmetic mean is") == ["15"]
    assert shown(project.html("cachemode"), "The total is") == ["42"]


BOOK = ROOTS / "jb1-book"


@pytest.mark.jb1
@pytest.mark.skipif(not HAS_JUPYTER_BOOK, reason="needs jupyter-book 1")
def test_jupyter_book_caches_eval_values(tmp_path: Path) -> None:
    book = tmp_path / "book"
    shutil.copytree(BOOK, book)
    first = book / "first.md"
    code = "```{code-cell}\nanswer = 21 * 2\n```\n"
    first.write_text(first.read_text() + f"\n{code}\nThe answer is {{eval}}`answer`.\n")
    log = tmp_path / "kernel.log"
    env = {**os.environ, "NBCACHE_TEST_LOG": str(log)}
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(book)]

    def build() -> Counter[str]:
        log.write_text("")
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "mystnb.eval" not in done.stdout + done.stderr, done.stdout + done.stderr
        return Counter(log.read_text().split())

    assert build() == Counter({"first": 1, "second": 1})
    html = book / "_build" / "html" / "first.html"
    assert shown(html.read_text(), "The answer is") == ["42"]
    shutil.rmtree(book / "_build")
    assert build().total() == 0  # CI restore: the value comes from the cache
    assert shown(html.read_text(), "The answer is") == ["42"]


def test_values_are_kept_with_the_outputs_and_old_blobs_still_read() -> None:
    values = ({"after": 1, "source": "x", "outputs": [{"output_type": "display_data"}]},)
    outputs = Outputs(({"execution_count": 1, "outputs": []},), {}, ("x = 1",), values)
    assert Outputs.from_json(outputs.to_json()) == outputs
    old = {"v": 1, "cells": [{"execution_count": 1, "outputs": []}], "metadata": {}}
    assert Outputs.from_json(old).expressions is None  # written before values were kept
    with pytest.raises(ValueError, match="expressions"):
        Outputs.from_json({**old, "expressions": [{"source": "x"}]})


def test_values_are_handed_out_in_document_order() -> None:
    def value(source: str, shown: str) -> dict[str, Any]:
        data = {"text/plain": shown}
        return {
            "after": 1,
            "source": source,
            "outputs": [{"output_type": "display_data", "data": data}],
        }

    failed = {"output_type": "error", "ename": "NameError", "evalue": "name 'y' is not defined"}
    values = Values(
        [
            value("label", "first"),
            {"after": 2, "source": "y", "outputs": [failed]},
            value("label", "second"),
            {"after": 3, "source": "z", "outputs": [{**failed, "ename": "NotEvaluated"}]},
        ]
    )
    assert values.take("label")[0]["data"]["text/plain"] == "first"
    with pytest.raises(ExpressionError, match=r"raised NameError: .* after code cell 2"):
        values.take("y")
    assert values.take("label")[0]["data"]["text/plain"] == "second"
    with pytest.raises(ExpressionError, match="was not evaluated"):
        values.take("z")
    assert values.take("label")[0]["data"]["text/plain"] == "first"  # asked again: any place
    with pytest.raises(ExpressionError, match="has no value"):
        values.take("unknown")
