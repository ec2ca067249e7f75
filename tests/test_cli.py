"""The ``nbcache`` command, driven as a user would, against caches made by real builds."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from sphinx_nbcache.cli import main

NOTEBOOKS = {"nb_ipynb", "nb_myst", "nb_mystnb", "nb_percent", "nb_rmd"}

pytestmark = pytest.mark.kernel


def nbcache(capsys, *argv) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def executed(project) -> Counter[str]:  # type: ignore[no-untyped-def]
    return Counter(line for line in project.log.read_text().split() if line)


def row(out: str, page: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(page + " "))


def test_execute_then_build_executes_nothing(project_factory, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("formats")
    src = project.src

    code, out, _ = nbcache(capsys, "status", src, "--check")
    assert code == 1
    assert all("stale" in row(out, name) for name in NOTEBOOKS), out
    assert "plain" not in out
    assert "conf" not in out

    project.log.write_text("")
    code, out, err = nbcache(capsys, "execute", src, "-j", "2")
    assert code == 0, out + err
    assert executed(project) == Counter(NOTEBOOKS)
    assert "5 executed, 0 failed" in out
    assert nbcache(capsys, "status", src, "--check")[0] == 0

    # the CLI and Sphinx agree on every key: the build executes nothing
    build = project.build()
    assert build.total == 0, build.status
    assert "percent says 9" in project.html("nb_percent")
    assert "42" in project.html("index")  # glue data came through the cache

    code, out, _ = nbcache(capsys, "list", "--docs", src, "--json")
    records = json.loads(out)
    assert {r["page"] for r in records} == NOTEBOOKS
    assert all(r["status"] == "ok" and r["cell_times"] and r["size"] > 0 for r in records)

    # show: by short id (a unique prefix) and by page name or path
    first = records[0]
    code, out, _ = nbcache(capsys, "show", first["key"][:8], "--docs", src)
    assert code == 0
    assert first["key"] in out
    assert "run time per code cell" in out
    code, out, _ = nbcache(capsys, "show", "nb_percent", "--docs", src, "--json")
    assert json.loads(out)["page"] == "nb_percent"
    assert len(json.loads(out)["cell_times"]) == 2

    # merge writes the page with its cached outputs
    merged = tmp_path / "merged.ipynb"
    assert nbcache(capsys, "merge", src / "nb_ipynb.ipynb", merged)[0] == 0
    assert "ipynb says 25" in merged.read_text()

    # a code edit: status says which cell, diff shows it, --check fails
    project.edit("nb_percent.py", 'print("percent says", 3 * 3)', 'print("percent says", 3 * 4)')
    code, out, _ = nbcache(capsys, "status", src, "--check")
    assert code == 1
    assert "changed since cached: code cell 2 changed" in row(out, "nb_percent")
    code, out, _ = nbcache(capsys, "diff", src / "nb_percent.py")
    assert '-print("percent says", 3 * 3)' in out
    assert '+print("percent says", 3 * 4)' in out
    code, out, _ = nbcache(capsys, "diff", src / "nb_percent.py", "--json")
    assert json.loads(out)["same"] is False
    code, _, err = nbcache(capsys, "merge", src / "nb_percent.py", tmp_path / "x.ipynb")
    assert code == 2
    assert "nbcache execute" in err

    # invalidate forces a page to run again at the next build
    code, out, _ = nbcache(capsys, "invalidate", src / "nb_rmd.Rmd")
    assert code == 0
    assert "nb_rmd" in out
    assert project.build().executed == Counter({"nb_percent": 1, "nb_rmd": 1})

    # export, then import into an empty cache: a fresh checkout builds without executing
    archive = tmp_path / "cache.tar.gz"
    code, out, _ = nbcache(capsys, "export", archive, "--docs", src)
    assert code == 0
    assert archive.is_file()
    project.clear_cache()
    project.clear_build()
    code, out, _ = nbcache(capsys, "import", archive, "--docs", src, "--json")
    assert code == 0
    assert len(json.loads(out)["added"]) >= 5
    assert project.build().total == 0
    code, out, _ = nbcache(capsys, "import", archive, "--docs", src)
    assert "0 added" in out
    assert "kept" in out

    # prune and clear
    code, out, _ = nbcache(capsys, "prune", "--max-entries", "2", "--grace", "0", "--docs", src)
    assert code == 0
    assert len(json.loads(nbcache(capsys, "list", "--docs", src, "--json")[1])) == 2
    code, _, err = nbcache(capsys, "clear", "--docs", src)
    assert code == 2
    assert "--yes" in err
    assert nbcache(capsys, "clear", "--yes", "--docs", src)[0] == 0
    assert json.loads(nbcache(capsys, "list", "--docs", src, "--json")[1]) == []


def test_failures_and_errors_are_one_line_with_exit_codes(project_factory, capsys) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("failing")
    src = project.src
    code, out, _ = nbcache(capsys, "execute", src)
    assert code == 1
    assert "fails: failed in code cell 2: ZeroDivisionError: division by zero" in out
    assert "1 executed, 1 failed" in out
    code, out, _ = nbcache(capsys, "status", src, "--check", "--json")
    assert code == 1
    verdicts = {s["page"]: s["status"] for s in json.loads(out)}
    assert verdicts == {"fails": "failed", "tolerated": "cached"}

    code, out, _ = nbcache(capsys, "show", "fails", "--docs", src)
    assert "ZeroDivisionError" in out
    assert "--traceback" in out
    assert "----> " not in out
    code, out, _ = nbcache(capsys, "show", "fails", "--docs", src, "--traceback")
    assert "----> " in out
    assert "inner(1)" in out

    # the build reuses the cached failure instead of executing again
    build = project.build()
    assert build.total == 0
    assert "cached failure" in build.warnings

    # our own errors: one line on stderr, exit 2, a traceback only with --verbose
    for argv in (["show", "nosuchpage", "--docs", src], ["import", src / "missing.tar.gz"]):
        code, out, err = nbcache(capsys, *argv)
        assert code == 2
        assert err.startswith("error: ")
        assert len(err.strip().splitlines()) == 1
    code, _, err = nbcache(capsys, "show", "nosuchpage", "--docs", src, "--verbose")
    assert "Traceback" in err
    (src / "conf.py").write_text("x = 1 / 0\n")
    code, _, err = nbcache(capsys, "status", src)
    assert code == 2
    assert "ZeroDivisionError at line 1" in err


def test_import_jupyter_cache_from_a_real_mystnb_build(project_factory, capsys) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("formats")
    src = project.src
    jcache = src / "_build" / ".jupyter_cache"
    peer = project.build(extensions=["myst_nb"], nb_execution_cache_path=str(jcache))
    assert peer.executed == Counter(NOTEBOOKS)  # myst-nb + jupyter-cache ran them
    assert (jcache / "global.db").is_file()

    code, out, err = nbcache(capsys, "import-jupyter-cache", jcache, "--docs", src)
    assert code == 0, out + err
    assert "5 added" in out
    project.clear_build()  # also removes the jupyter-cache folder
    build = project.build()
    assert build.total == 0, build.status
    assert "myst says 42" in project.html("nb_myst")


def test_console_script_runs_without_sphinx(tmp_path: Path) -> None:
    code = (
        "import sys, sphinx_nbcache.api, sphinx_nbcache.cli; "
        "assert 'sphinx' not in sys.modules; "
        "sys.exit(sphinx_nbcache.cli.main(['list', '--cache', sys.argv[1], '--json']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "c")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    usage = subprocess.run(
        [sys.executable, "-m", "sphinx_nbcache.cli", "prune", "--cache", str(tmp_path / "c")],
        capture_output=True,
        text=True,
    )
    assert usage.returncode == 2
    assert "--max-entries" in usage.stderr


def test_a_new_users_mistakes_get_one_clear_answer(project_factory, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("failing")
    src = project.src
    (src / "julia.md").write_text(
        "---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n"
        "  name: julia-1.9\n  display_name: Julia\n---\n\n# Julia\n\n```{code-cell}\n1 + 1\n```\n"
    )
    # a folder that does not exist, or that is not a docs folder: rc 2, saying what is wrong
    code, _, err = nbcache(capsys, "status", tmp_path / "does-not-exist")
    assert code == 2
    assert "no folder" in err
    assert "does-not-exist" in err
    (tmp_path / "not-docs").mkdir()
    for argv in (["status", tmp_path / "not-docs"], ["list", "--docs", tmp_path / "not-docs"]):
        code, _, err = nbcache(capsys, *argv)
        assert code == 2
        assert "holds no conf.py and no jupyter-book _config.yml" in err
    # looking creates nothing
    for argv in (["status", src], ["list", "--docs", src], ["show", "fails", "--docs", src]):
        nbcache(capsys, *argv)
        assert not (src / ".nbcache").exists(), argv

    code, out, err = nbcache(capsys, "execute", src)
    assert code == 1
    # a kernel that never started is not a run: no run time, and the hint fits the kernel
    assert "julia could not start: NoSuchKernel" in err
    assert "ran julia" not in out + err
    assert "ipykernel" not in out + err
    assert "Traceback" not in out + err
    assert "'julia-1.9' kernel" in out
    assert "3 notebook pages: 1 executed, 1 failed, 1 could not start, 0 from cache" in out
    assert out.strip().splitlines()[-1].startswith("failing: fails, julia; see `nbcache show fails")
    code, out, _ = nbcache(capsys, "execute", src)  # the failure is cached: counted as such
    counts = "0 executed, 1 failed (1 from cache), 1 could not start, 1 from cache"
    assert f"3 notebook pages: {counts}" in out
    # one numbering: the second code cell, as the build's warning says
    code, out, _ = nbcache(capsys, "show", "fails", "--docs", src)
    assert "in code cell 2: ZeroDivisionError" in out
    assert "notebook execution failed in code cell 2" in project.build().warnings
    # merge of a page that never ran says why
    code, _, err = nbcache(capsys, "merge", src / "julia.md", tmp_path / "j.ipynb")
    assert code == 2
    assert "julia has no outputs: its kernel did not start" in err
    assert "<record>" not in err

    # a damaged database: every command says so on stderr, status --check fails, nothing is
    # moved aside by looking, and the next build reports (and repairs) the damage
    (src / ".nbcache" / "nbcache.db").write_bytes(b"\0garbage" * 500)
    code, out, err = nbcache(capsys, "status", src, "--check")
    assert code == 1
    assert "notice:" in err
    assert "damaged" in err
    assert not list((src / ".nbcache").glob("nbcache.db.damaged-*"))
    code, out, err = nbcache(capsys, "list", "--docs", src)
    assert "damaged" in err
    build = project.build()
    assert "was unreadable" in build.warnings


def test_version_and_help_load_no_notebook_library() -> None:
    """``--version`` and ``--help`` import the parser only (with the serve extra installed,
    nbformat -> jsonschema alone took 3 s)."""
    code = (
        "import sys\n"
        "from sphinx_nbcache.cli import main\n"
        "for argv in (['--version'], ['--help'], ['execute', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('nbformat', 'jsonschema', 'sqlalchemy', 'rich', 'jupyter_client', 'sphinx',\n"
        "         'sphinx_nbcache.api', 'sphinx_nbcache.engine.core')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_no_project_is_an_error_and_creates_nothing(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".git").mkdir()  # the search for a project stops here
    (tmp_path / "page.ipynb").write_text("{}")
    monkeypatch.chdir(tmp_path)
    for argv in (["status"], ["execute"], ["execute", "page.ipynb"], ["list"], ["report"]):
        code, _, err = nbcache(capsys, *argv)
        assert code == 2, argv
        assert "no docs project found: looked for conf.py" in err
        assert str(tmp_path) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [".git", "page.ipynb"]
    # with --cache, a cache folder alone is fine (it is what was asked for)
    assert nbcache(capsys, "list", "--cache", tmp_path / "c")[0] == 0


def test_one_id_options_why_and_the_cache_folder(project_factory, capsys) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("failing")
    src = project.src
    conf = src / "conf.py"
    conf.write_text(conf.read_text() + "nbcache_job = 2\n")
    code, out, err = nbcache(capsys, "execute", src)
    assert code == 1
    assert "'nbcache_job' in " in err
    assert "did you mean 'nbcache_jobs'?" in err
    # the cache folder carries its own .gitignore, written once, when it was created
    ignore = src / ".nbcache" / ".gitignore"
    assert ignore.read_text().splitlines()[-1] == "*"
    ignore.unlink()
    nbcache(capsys, "execute", src)
    assert not ignore.exists()  # removed on purpose: the cache is meant to be committed

    # one id: the one status, list and show give (the result's id, not its key)
    [record] = [r for r in json.loads(nbcache(capsys, "list", "--docs", src, "--json")[1])
                if r["page"] == "tolerated"]  # fmt: skip
    assert record["dependencies"]  # so its result id is not its key
    shown = record["id"]
    assert not record["key"].startswith(shown)
    assert shown in row(nbcache(capsys, "status", src)[1], "tolerated")
    assert shown in row(nbcache(capsys, "report", src)[1], "tolerated")
    assert re.search(rf"^id +{shown} *$", nbcache(capsys, "show", shown, "--docs", src)[1], re.M)
    assert record["cpu_time"] is not None
    assert record["peak_memory"] > 0

    # why names what the result was checked against
    code, out, _ = nbcache(capsys, "why", "tolerated", "--docs", src)
    assert "checked against:" in out
    assert "python: " in out

    # a bad value is the value's fault, not conf.py's
    conf.write_text(conf.read_text() + "nbcache_jobs = 'two'\n")
    code, _, err = nbcache(capsys, "status", src)
    assert code == 2
    assert "invalid value for 'nbcache_jobs': expected a whole number, got 'two'" in err
    assert f"(set in {conf})" in err
    assert "cannot run" not in err


def test_run_takes_a_page_name(project_factory, capsys) -> None:  # type: ignore[no-untyped-def]
    src = project_factory("functions").src
    argv = ["run", "stations/station", "--docs", src, "-p", "site", "west", "-p", "readings"]
    code, out, err = nbcache(capsys, *argv, "[5, 5]", "--json")
    assert code == 0, err
    assert json.loads(out)["result"] == {"site": "west", "total": 10}
    code, _, err = nbcache(capsys, "run", "functions/nope", "--docs", src)
    assert code == 2
    assert "no page 'functions/nope'" in err
