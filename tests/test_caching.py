"""What executes, build after build, for every supported format (counted inside the kernels)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from sphinx.highlighting import lexer_classes

NOTEBOOKS = {"nb_ipynb", "nb_myst", "nb_mystnb", "nb_percent", "nb_rmd"}
OUTPUTS = {
    "nb_ipynb": "ipynb says 25",
    "nb_myst": "myst says 42",
    "nb_mystnb": "mystnb-value",
    "nb_percent": "percent says 9",
    "nb_rmd": "rmd says 4",
}


def assert_outputs(project, pages=OUTPUTS) -> None:  # type: ignore[no-untyped-def]
    for page, text in pages.items():
        assert text in project.html(page), f"output of {page} missing from its HTML"


def test_each_format_executes_once_and_only_when_code_changes(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("formats")

    cold = project.build()
    assert cold.executed == Counter(NOTEBOOKS), cold.status
    assert "WARNING" not in cold.warnings, cold.warnings
    assert_outputs(project)
    assert "42" in project.html("index")  # glue from nb_myst, shown on another page
    assert "nbcache: ran nb_percent" in cold.status
    # myst-nb's "Using jupyter-cache at ..." line is gone (it is not used); ours says who is
    assert "notebooks execute through the cache at " in cold.status
    assert "Using jupyter-cache" not in cold.status
    assert f"{project.src / '.nbcache'} (" in cold.status
    # executed pages highlight as ipython3: Sphinx knows that lexer by class (no plugin scan)
    assert lexer_classes["ipython3"].__name__ == "IPython3Lexer"
    assert "myst-ansi" in lexer_classes  # stream outputs: myst-nb's plugin lexer, by class
    assert '<div class="highlight-ipython3 notranslate">' in project.html("nb_ipynb")

    assert project.build().total == 0  # no-op

    # prose edits in every format
    project.edit("nb_myst.md", "Some prose.", "Some edited prose.")
    project.edit("nb_percent.py", "# Prose in a percent script.", "# Edited prose.")
    project.edit("nb_rmd.Rmd", "Prose in R Markdown.", "Edited R Markdown prose.")
    project.edit("nb_ipynb.ipynb", "Prose in JSON.", "Edited prose in JSON.")
    prose = project.build()
    assert prose.total == 0
    assert "Edited prose in JSON." in project.html("nb_ipynb")
    assert_outputs(project)

    # presentational tags and render options
    nb_path = project.src / "nb_ipynb.ipynb"
    notebook = json.loads(nb_path.read_text())
    notebook["cells"][2]["metadata"] = {
        "tags": ["remove-input"],
        "mystnb": {"number_source_lines": True},
    }
    notebook["cells"][2]["execution_count"] = 7
    nb_path.write_text(json.dumps(notebook, indent=1))
    assert project.build().total == 0
    assert "ipynb says 25" in project.html("nb_ipynb")

    # a code edit re-executes exactly that page
    project.edit("nb_percent.py", 'print("percent says", 3 * 3)', 'print("percent says", 3 * 4)')
    code = project.build()
    assert code.executed == Counter({"nb_percent": 1})
    assert "percent says 12" in project.html("nb_percent")

    # CI restore: build folder gone, cache kept
    project.clear_build()
    restored = project.build()
    assert restored.total == 0
    assert_outputs(project, {**OUTPUTS, "nb_percent": "percent says 12"})

    # cache cleared, build folder kept: unchanged pages are found stale and re-run
    project.clear_cache()
    cleared = project.build()
    assert cleared.executed == Counter(NOTEBOOKS)
    assert_outputs(project, {**OUTPUTS, "nb_percent": "percent says 12"})

    # renaming a page does not re-execute it
    (project.src / "nb_rmd.Rmd").rename(project.src / "renamed.Rmd")
    project.edit("index.md", "nb_rmd\n", "renamed\n")
    renamed = project.build()
    assert renamed.total == 0
    assert "rmd says 4" in project.html("renamed")


def test_parallel_read_build(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("formats")
    cold = project.build(parallel=2, nbcache_jobs=2)
    assert cold.executed == Counter(NOTEBOOKS), cold.status + cold.warnings
    assert "WARNING" not in cold.warnings, cold.warnings
    # more notebooks than workers: kernels are forked, so the readers start at once
    assert "reading pages while the notebooks execute" in cold.status
    assert_outputs(project)
    assert "42" in project.html("index")
    again = project.build(parallel=2)
    assert again.total == 0
    project.clear_build()
    assert project.build(parallel=2).total == 0
    assert_outputs(project)


def test_cache_folder_is_outside_build_and_sources(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("formats")
    project.build(nbcache_jobs=1)
    cache = project.src / ".nbcache"
    assert (cache / "nbcache.db").is_file()
    blobs = list((cache / "blobs").glob("*/*.json"))
    assert len(blobs) == len(NOTEBOOKS)
    assert not (project.src / "_build" / ".nbcache").exists()
    assert not any(Path(project.src / "_build" / "html").rglob("blobs"))
