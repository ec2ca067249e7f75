"""Frozen results in git: `nbcache freeze` writes what each page shows into `_freeze/`, a build
with no kernel and no cache shows them, re-freezing writes the same bytes, and
`nbcache freeze --check` catches a code edit and a data change."""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sphinx_nbcache.cli import main
from sphinx_nbcache.config import Options
from sphinx_nbcache.errors import ConfigError, CorruptCacheError
from sphinx_nbcache.freeze.normalise import Normaliser
from sphinx_nbcache.freeze.reading import read_frozen
from sphinx_nbcache.freeze.writing import write_frozen
from sphinx_nbcache.records import Outputs, Record

KERNEL = "nbcache-freeze"  # the test pages' kernel: installed only where the test says


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[bool], None]:
    """Install (True) or remove (False) the pages' kernel: a kernel spec in a JUPYTER_PATH
    folder of its own, so without it this environment has no such kernel at all."""
    folder = tmp_path / "jupyter"
    spec = folder / "kernels" / KERNEL / "kernel.json"
    spec.parent.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))

    def installed(present: bool) -> None:
        if present:
            monkeypatch.setenv("JUPYTER_PATH", str(folder))
        else:
            monkeypatch.delenv("JUPYTER_PATH", raising=False)

    installed(True)
    return installed


def nbcache(*args: str, capsys: Any) -> tuple[int, str]:
    capsys.readouterr()
    status = main(list(args))
    out = capsys.readouterr()
    return status, out.out + out.err


def snapshot(folder: Path) -> dict[str, bytes]:
    files = (path for path in folder.rglob("*") if path.is_file())
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in files}


def shows_everything(project: Any) -> None:
    noisy = project.html("noisy")
    assert "total of y: 30" in noisy
    assert "an object: &lt;object object at 0x&lt;address&gt;&gt;" in noisy
    assert "a date in the data: 2001-02-03" in noisy
    assert "<img" in noisy
    assert "The total is <span" in noisy
    assert "plain output 42" in project.html("plain")


def test_freeze_then_a_build_with_no_kernel_and_no_cache(  # type: ignore[no-untyped-def]
    project_factory, kernel, capsys
) -> None:
    project = project_factory("freeze")
    assert project.build().executed == Counter({"noisy": 1, "plain": 1})
    status, out = nbcache("freeze", "--docs", str(project.src), capsys=capsys)
    assert status == 0, out
    frozen = project.src / "_freeze"
    files = snapshot(frozen)
    assert sorted(files)[1:] == ["noisy.json", "plain.json"]
    [image] = [name for name in files if name.startswith("noisy.files/")]
    assert image.endswith(".png")
    assert files[image].startswith(b"\x89PNG")
    text = files["noisy.json"].decode()
    assert "0x<address>" in text  # noise normalised
    assert "a temporary folder: <tmp>" in text
    assert "ran at <timestamp>" in text
    assert "2001-02-03" in text  # a date in the data is kept
    assert "a local warning\\n" not in text  # stderr left out (the source says it)
    record = json.loads(text)
    assert sorted(record["dependencies"]["files"]) == ["data.csv", "helpers.py"]
    assert "kernel" not in record["dependencies"]["environment"]  # a path on this machine

    # CI: no kernel, no cache, no build folder; nothing may execute
    kernel(False)
    project.clear_cache()
    project.clear_build()
    build = project.build(nbcache_frozen_only=True)
    assert build.total == 0, build.status
    assert "WARNING" not in build.warnings, build.warnings
    shows_everything(project)
    assert nbcache("freeze", "--check", "--docs", str(project.src), capsys=capsys)[0] == 0

    # and without the frozen results this environment cannot run the pages
    shutil.rmtree(frozen)
    project.clear_cache()
    project.clear_build()
    assert f"no kernel named {KERNEL!r}" in project.build().warnings


def test_refreezing_writes_the_same_bytes(  # type: ignore[no-untyped-def]
    project_factory, kernel, capsys
) -> None:
    project = project_factory("freeze")
    project.build()
    docs = str(project.src)
    assert nbcache("freeze", "--docs", docs, capsys=capsys)[0] == 0
    first = snapshot(project.src / "_freeze")
    status, out = nbcache("freeze", "--docs", docs, capsys=capsys)  # nothing changed
    assert status == 0
    assert "2 unchanged" in out, out
    # executed again from scratch: other addresses, temporary folders, times, same bytes
    (project.src / "_freeze").rename(project.src / "_first")
    project.clear_cache()
    assert project.build().executed == Counter({"noisy": 1, "plain": 1})
    assert nbcache("freeze", "--docs", docs, capsys=capsys)[0] == 0
    assert snapshot(project.src / "_freeze") == first


def test_check_catches_a_code_edit_and_a_data_change(  # type: ignore[no-untyped-def]
    project_factory, kernel, capsys
) -> None:
    project = project_factory("freeze")
    project.build()
    docs = str(project.src)
    assert nbcache("freeze", "--docs", docs, capsys=capsys)[0] == 0
    assert nbcache("freeze", "--check", "--docs", docs, capsys=capsys)[0] == 0

    project.edit("plain.md", "6 * 7", "6 * 8")
    status, out = nbcache("freeze", "--check", "--docs", docs, capsys=capsys)
    assert status == 1
    assert "plain: out of date: changed since frozen: code cell 1 changed" in out, out
    assert "noisy: fresh" in out

    project.edit("data.csv", "2,20", "2,21")
    status, out = nbcache("freeze", "--check", "--docs", docs, capsys=capsys)
    assert status == 1
    assert "noisy: out of date: data.csv changed (read in code cell 1)" in out, out

    # CI without a kernel: each out-of-date page is a warning saying what changed, its
    # stale outputs never shown
    kernel(False)
    project.clear_cache()
    build = project.build(nbcache_frozen_only=True)
    assert build.total == 0
    warned = [w for w in build.warnings.splitlines() if "not executed (nbcache_frozen_only)" in w]
    assert len(warned) == 2, build.warnings
    assert any("plain.md" in w and "code cell 1 changed" in w for w in warned)
    assert any("noisy.md" in w and "data.csv changed" in w for w in warned)
    assert "plain output 4" not in project.html("plain")
    assert "total of y: " not in project.html("noisy")

    # where a kernel may run, the out-of-date pages execute; freezing brings them up to date
    kernel(True)
    assert project.build().executed == Counter({"noisy": 1, "plain": 1})
    status, out = nbcache("freeze", "--docs", docs, capsys=capsys)
    assert status == 0
    assert "2 written" in out
    assert nbcache("freeze", "--check", "--docs", docs, capsys=capsys)[0] == 0

    # a new page with no frozen result: missing
    (project.src / "new.md").write_text((project.src / "plain.md").read_text())
    status, out = nbcache("freeze", "--check", "--docs", docs, capsys=capsys)
    assert status == 1
    assert "new: missing" in out


def test_noise_rules(tmp_path: Path) -> None:
    created = 1_700_000_000.0  # 2023-11-14
    noise = Normaliser([(r"run \d+", "run N")], tmp_path, created)
    assert noise.text(f"{tmp_path}/data.csv") == "<docs>/data.csv"
    assert noise.text("<Thing at 0x7f3a2b4c5d60>") == "<Thing at 0x<address>>"
    assert noise.text("0xFF stays") == "0xFF stays"
    assert noise.text("at 2023-11-14T10:11:12.5 and 2023-11-15") == "at <timestamp> and <date>"
    assert noise.text("data from 2001-02-03 10:00") == "data from 2001-02-03 10:00"
    assert noise.text("Wall time: 1.2 ms") == "Wall time: <time>"
    assert noise.text("this is run 12") == "this is run N"
    options = Options.from_mapping({"nbcache_freeze_normalise": [r"id=\w+", [r"x+", "x"]]}, ".")
    assert options.freeze_normalise == ((r"id=\w+", "<normalised>"), (r"x+", "x"))
    with pytest.raises(ConfigError, match="bad regex"):
        Options.from_mapping({"nbcache_freeze_normalise": ["("]}, ".")
    with pytest.raises(ConfigError, match="pair"):
        Options.from_mapping({"nbcache_freeze_normalise": [["a", "b", "c"]]}, ".")


def test_a_tampered_frozen_file_is_not_read(tmp_path: Path) -> None:
    record = Record("a" * 64, "ok", None, kernel="python3", page="page")
    png = {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo="}, "metadata": {}}
    outputs = Outputs(({"execution_count": 1, "outputs": [png]},), {}, ("x = 1",))
    options = Options(cache_path=tmp_path / "cache")
    write_frozen(tmp_path, "page", record, outputs, options, None)
    found = read_frozen(tmp_path, "page")
    assert found is not None
    assert found[1].cells[0]["outputs"][0]["data"]["image/png"] == "iVBORw0KGgo="
    text = (tmp_path / "page.json").read_text()
    [name] = [p.name for p in (tmp_path / "page.files").iterdir()]
    (tmp_path / "page.json").write_text(text.replace(name, "../../../etc/passwd"))
    with pytest.raises(CorruptCacheError, match="bad image name"):
        read_frozen(tmp_path, "page")
    (tmp_path / "page.json").write_text(text.replace('"page": "page"', '"page": "other"'))
    with pytest.raises(CorruptCacheError, match="not 'page'"):
        read_frozen(tmp_path, "page")
