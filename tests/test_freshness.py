"""Never stale: what a notebook reads, imports and runs on is part of its result.

One project, edited the way users edit, with executions counted inside the kernels: a page
runs again exactly when something its outputs came from changed.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest
import sphinx

from sphinx_nbcache.cli import main

pytestmark = pytest.mark.kernel

PAGES = Counter({"importer": 1, "reader": 1, "writer": 1, "plain": 1, "pkg": 1})


def fake_package(site: Path, version: str) -> None:
    """A distribution ``fakepkg`` of the given version, importable from ``site``."""
    site.mkdir(exist_ok=True)
    # as pip's uninstall does: the old bytecode goes too (a new fakepkg.py of the same size
    # written within the same second would otherwise be shadowed by it)
    shutil.rmtree(site / "__pycache__", ignore_errors=True)
    (site / "fakepkg.py").write_text(f"VERSION = {version!r}\n")
    for old in site.glob("fakepkg-*.dist-info"):
        shutil.rmtree(old)
    dist = site / f"fakepkg-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakepkg\nVersion: {version}\n")
    (dist / "top_level.txt").write_text("fakepkg\n")


@pytest.fixture
def deps(project_factory, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    """The ``deps`` project, and a folder holding ``fakepkg`` 1.0 where the kernels import it
    (``PYTHONPATH``) and where the build checks its version (``sys.path``)."""
    site = tmp_path / "site"
    fake_package(site, "1.0")
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.syspath_prepend(str(site))
    return project_factory("deps"), site


def why(capsys, src: Path, page: Path, whole: bool = False) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """``nbcache why``: its verdict line (``whole``: then what the result depended on)."""
    code = main(["why", str(page), "--docs", str(src)])
    out = capsys.readouterr().out.strip()
    return code, out if whole else out.splitlines()[0]


def test_a_result_is_reused_exactly_while_what_it_read_is_unchanged(deps, capsys) -> None:  # type: ignore[no-untyped-def]
    project, site = deps
    src = project.src

    cold = project.build()
    assert cold.executed == PAGES, cold.status
    assert "helper says 41" in project.html("importer")
    assert "rows: 1" in project.html("reader")
    assert "written by the writer" in project.html("writer")
    assert "fakepkg 1.0" in project.html("pkg")
    code, out = why(capsys, src, src / "importer.md")
    assert code == 0
    assert out.startswith("importer: fresh: helpers.py and ")  # the packages vary

    assert project.build().total == 0  # no-op

    project.edit("importer.md", "Some prose.", "Some other prose.")
    assert project.build().total == 0  # prose

    project.edit(
        "plain.md",
        '```{code-cell}\nprint("plain one")',
        '```{code-cell}\n:tags: [remove-input]\nprint("plain one")',
    )
    assert project.build().total == 0  # a tag that does not change execution

    project.edit("plain.md", 'print("plain two")', 'print("plain 2")')
    assert project.build().executed == Counter({"plain": 1})  # code

    text = (src / "plain.md").read_text()
    one, two = 'print("plain one")', 'print("plain 2")'
    (src / "plain.md").write_text(text.replace(one, "@@").replace(two, one).replace("@@", two))
    assert project.build().executed == Counter({"plain": 1})  # cells swapped

    (src / "plain.md").rename(src / "renamed.md")
    assert project.build().total == 0  # rename
    shutil.copy(src / "renamed.md", src / "sub" / "copied.md")
    assert project.build().total == 0  # copy

    # a helper module: only its importer runs again, and says why first
    (src / "helpers.py").write_text("def value():\n    return 42\n")
    code, out = why(capsys, src, src / "importer.md")
    assert code == 1
    assert out == "importer: stale: helpers.py changed (imported in code cell 2)"
    assert (
        "\n  helpers.py (imported in code cell 2)\n"
        in why(capsys, src, src / "importer.md", True)[1]
    )
    assert project.build().executed == Counter({"importer": 1})
    assert "helper says 42" in project.html("importer")

    # a data file: only its reader
    (src / "data.csv").write_text("a,b\n1,2\n7,8\n")
    assert "stale: data.csv changed (read in code cell 2)" in why(capsys, src, src / "reader.md")[1]
    assert project.build().executed == Counter({"reader": 1})
    assert "rows: 2" in project.html("reader")

    # a package version: only the page that imports it
    fake_package(site, "2.0")
    assert why(capsys, src, src / "pkg.md")[1] == "pkg: stale: fakepkg 1.0 -> 2.0"
    assert project.build().executed == Counter({"pkg": 1})
    assert "fakepkg 2.0" in project.html("pkg")
    # ... also with the build folder gone (CI restore): what the cache folder remembers of
    # the environment does not vouch for a package installed since
    assert (src / ".nbcache" / "environment.json").exists()
    fake_package(site, "3.0")
    project.clear_build()
    assert project.build().executed == Counter({"pkg": 1})
    assert "fakepkg 3.0" in project.html("pkg")

    # the reader copied where data.csv differs: it runs there; the same data there: reused
    shutil.copy(src / "reader.md", src / "sub" / "reader.md")
    assert project.build().executed == Counter({"reader": 1})
    assert "rows: 3" in project.html("sub/reader")
    (src / "sub" / "reader.md").unlink()
    (src / "sub" / "data.csv").write_text((src / "data.csv").read_text())
    shutil.copy(src / "reader.md", src / "sub" / "reader.md")
    assert project.build().total == 0
    assert "rows: 2" in project.html("sub/reader")

    # moved where helpers.py is not: it runs (and fails); moved back: the result that
    # imported helpers.py is valid again, and the failure is not served there
    (src / "importer.md").rename(src / "sub" / "importer.md")
    moved = project.build()
    assert moved.executed == Counter({"importer": 1})
    assert "ModuleNotFoundError" in moved.warnings
    (src / "sub" / "importer.md").rename(src / "importer.md")
    back = project.build()
    assert back.total == 0
    assert "ModuleNotFoundError" not in back.warnings
    assert "helper says 42" in project.html("importer")

    # a file the notebook wrote: gone with the build folder (CI), put back from the cache
    assert (src / "out.txt").read_text() == "written by the writer"
    (src / "out.txt").unlink()
    project.clear_build()
    ci = project.build()
    assert ci.total == 0
    assert (src / "out.txt").read_text() == "written by the writer"
    assert "written by the writer" in project.html("writer")
    # ... and never over a file the user changed
    (src / "out.txt").write_text("mine")
    project.clear_build()
    kept = project.build()
    assert kept.total == 0
    assert (src / "out.txt").read_text() == "mine"
    assert "out.txt differs from the file this notebook wrote" in kept.warnings

    # allow_errors toggled: nothing raised, nothing runs; a fresh environment: nothing runs
    assert project.build(nb_execution_allow_errors=True).total == 0
    assert project.build(freshenv=True).total == 0
    code, out = why(capsys, src, src / "reader.md")
    assert code == 0
    assert out.startswith("reader: fresh:")
    assert main(["status", str(src), "--check", "--json"]) == 0
    states = json.loads(capsys.readouterr().out)
    assert all(s["reason"] for s in states if s["status"] == "cached")


def test_declared_dependencies_and_the_environment_scope(deps) -> None:  # type: ignore[no-untyped-def]
    project, site = deps
    src = project.src
    (src / "notes.txt").write_text("first notes")
    assert project.build().executed == PAGES

    # what tracing cannot see, declared in conf.py: a new declaration runs the page once,
    # then a change in the files it matches runs it again
    declared = {"nbcache_dependencies": {"read*": ["sub/*.csv"]}}
    assert project.build(**declared).executed == Counter({"reader": 1})
    assert project.build(**declared).total == 0
    (src / "sub" / "data.csv").write_text("x\n1\n")
    assert project.build(**declared).executed == Counter({"reader": 1})
    (src / "sub" / "more.csv").write_text("y\n")  # a new file the glob matches
    assert project.build(**declared).executed == Counter({"reader": 1})

    # ... or in the notebook's metadata
    project.edit("plain.md", "kernelspec:", "nbcache:\n  depends: [notes.txt]\nkernelspec:")
    assert project.build(**declared).executed == Counter({"plain": 1})
    (src / "notes.txt").write_text("other notes")
    assert project.build(**declared).executed == Counter({"plain": 1})

    # nbcache_environment = "kernel": package versions are not part of the result
    fake_package(site, "2.0")
    assert project.build(nbcache_environment="kernel", **declared).total == 0
    assert project.build(**declared).executed == Counter({"pkg": 1})


def test_a_python_kernel_that_refuses_the_tracer_is_a_located_warning(  # type: ignore[no-untyped-def]
    project_factory, monkeypatch, tmp_path, capsys
) -> None:
    """A kernel whose start-up shadows ``exec`` (a user's start-up lines can) cannot run the
    dependency tracer: the page still runs, its result records why, and the build says at the
    page that this result will not follow the files it reads."""
    kernels = tmp_path / "jupyter" / "kernels" / "shadowed"
    kernels.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    argv.append("--IPKernelApp.exec_lines=['exec = None']")
    spec = {"argv": argv, "display_name": "shadowed", "language": "python"}
    (kernels / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    project = project_factory("deps")
    project.edit("reader.md", "  name: python3", "  name: shadowed")

    build = project.build()
    assert build.executed == PAGES, build.status
    assert "rows: 1" in project.html("reader")  # it ran
    untraced = [line for line in build.warnings.splitlines() if "could not watch" in line]
    assert len(untraced) == 1, build.warnings
    assert "reader.md" in untraced[0]
    assert "TypeError" in untraced[0]  # why: 'NoneType' object is not callable
    if sphinx.version_info >= (8,):  # Sphinx 8 appends [type.subtype] to warnings
        assert "[nbcache.untraced]" in untraced[0]
    assert project.build().total == 0  # cached like any result
    code, out = why(capsys, project.src, project.src / "reader.md", whole=True)
    assert code == 0
    assert "what it read is not known (its kernel refused the tracer: TypeError" in out, out


def test_installed_versions_are_read_as_importlib_metadata_reads_them() -> None:
    """The build reads a package's version from its metadata's ``Version:`` header (without
    the ``email`` package); every distribution installed here must read as
    ``importlib.metadata.version`` reads it, and a missing one as None."""
    from importlib import metadata

    from sphinx_nbcache.plan.environment import installed_version

    names = {d.metadata["Name"] for d in metadata.distributions() if d.metadata["Name"]}
    assert {"sphinx", "nbformat", "ipykernel"} <= {n.lower() for n in names}
    assert {n: installed_version(n) for n in names} == {n: metadata.version(n) for n in names}
    assert installed_version("no-such-distribution-nbcache") is None


def test_environment_answers_are_recalled_only_while_their_stamp_holds(  # type: ignore[no-untyped-def]
    monkeypatch, tmp_path
) -> None:
    """The kernel spec and the package versions found out once are kept in the cache folder
    (a build with its build folder gone then asks neither ``jupyter_client`` nor the package
    metadata); installing a package there, a damaged memory file or another interpreter's
    entry make them be found out again, never served."""
    from sphinx_nbcache._atomic import umask
    from sphinx_nbcache.plan import environment
    from sphinx_nbcache.plan.environment import MEMORY_NAME, KernelEnvironment

    site = tmp_path / "site"
    fake_package(site, "1.0")
    monkeypatch.syspath_prepend(str(site))
    memory = tmp_path / "cache" / MEMORY_NAME
    KernelEnvironment(memory).version("python3", "fakepkg")
    KernelEnvironment(memory).remember()  # the cache folder does not exist: nothing kept
    assert not memory.parent.exists()
    memory.parent.mkdir()

    first = KernelEnvironment(memory)
    assert first.version("python3", "fakepkg") == "1.0"
    assert first.version("python3", "no-such-distribution-nbcache") is None
    fingerprint = first.fingerprint("python3")
    assert fingerprint.startswith("python3:")
    first.remember()
    kept = memory.stat()
    assert kept.st_mode & 0o777 == 0o666 & ~umask()  # as shared as the rest of the cache

    asked: list[str] = []
    real_spec, real_version = environment._spec, environment.installed_version
    monkeypatch.setattr(environment, "_spec", lambda *a: asked.append("spec") or real_spec(*a))
    monkeypatch.setattr(
        environment, "installed_version", lambda d: asked.append(d) or real_version(d)
    )
    second = KernelEnvironment(memory)
    assert second.version("python3", "fakepkg") == "1.0"
    assert second.version("python3", "no-such-distribution-nbcache") is None
    assert second.fingerprint("python3") == fingerprint
    assert second.stamp(["python3"], "packages") == first.stamp(["python3"], "packages")
    assert asked == []  # all recalled
    second.remember()  # nothing new: the file is not written again
    assert memory.stat().st_mtime_ns == kept.st_mtime_ns

    fake_package(site, "2.0")  # an upgrade changes the folder on sys.path
    third = KernelEnvironment(memory)
    assert third.version("python3", "fakepkg") == "2.0"
    assert asked == ["spec", "fakepkg"]
    third.remember()
    assert KernelEnvironment(memory).version("python3", "fakepkg") == "2.0"
    assert asked == ["spec", "fakepkg"]  # the new answers are recalled

    memory.write_text('{"format": 1, "entries": [{"variables": 3}]}')  # damaged
    fourth = KernelEnvironment(memory)
    assert fourth.fingerprint("python3") == fingerprint
    assert asked == ["spec", "fakepkg", "spec"]
    fourth.remember()  # written anew
    assert KernelEnvironment(memory).fingerprint("python3") == fingerprint
    assert asked == ["spec", "fakepkg", "spec"]

    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "elsewhere"))  # chooses other kernels
    assert KernelEnvironment(memory).fingerprint("python3") == fingerprint
    assert asked == ["spec", "fakepkg", "spec", "spec"]


def test_a_ci_restore_sees_every_change_since_the_last_build(deps) -> None:  # type: ignore[no-untyped-def]
    """With the build folder gone, the cache folder's copy of the last build's verdicts is
    checked like the database's results: a data file, a helper module or a package changed
    since runs exactly the pages that used them."""
    project, site = deps
    src = project.src
    (src / "writer.md").unlink()  # no files to put back: the last build is kept
    assert project.build().executed == PAGES - Counter({"writer": 1})
    assert list((src / ".nbcache" / "builds").glob("*.json"))
    project.clear_build()
    assert project.build().total == 0

    (src / "data.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    project.clear_build()
    assert project.build().executed == Counter({"reader": 1})
    assert "rows: 3" in project.html("reader")

    (src / "helpers.py").write_text("def value():\n    return 43\n")
    project.clear_build()
    assert project.build().executed == Counter({"importer": 1})
    assert "helper says 43" in project.html("importer")

    fake_package(site, "2.0")
    project.clear_build()
    assert project.build().executed == Counter({"pkg": 1})
    assert "fakepkg 2.0" in project.html("pkg")
    project.clear_build()
    assert project.build().total == 0
