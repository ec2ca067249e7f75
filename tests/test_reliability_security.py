"""Stored data is never trusted: keys are validated before they name files, nothing is
unpickled or evaluated, files follow the user's umask, and no secret is written."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
from collections import Counter
from pathlib import Path

import pytest
from _reliability import keep_pages

import sphinx_nbcache
from sphinx_nbcache.errors import CorruptCacheError
from sphinx_nbcache.records import Outputs, Record
from sphinx_nbcache.store import Store

GOOD = "a" * 64


def _tamper(db: Path, sql: str, *args: object) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(sql, args)
    conn.close()


@pytest.mark.parametrize("column", ["key", "blob"], ids=["key-with-dotdot", "blob-with-dotdot"])
def test_tampered_rows_never_become_paths(tmp_path: Path, column: str) -> None:
    store = Store(tmp_path / "cache")
    store.put(Record(GOOD, "ok", None, page="p"), Outputs(({"outputs": []},)))
    store.close()
    secret = tmp_path / "secret.json"
    secret.write_text("{}")
    _tamper(tmp_path / "cache" / "nbcache.db", f"UPDATE results SET {column} = ?", "../../secret")
    store = Store(tmp_path / "cache")
    assert store.records() == []  # an invalid row reads as absent
    assert store.lookup([GOOD, "../../secret"]) == {}
    with pytest.raises(CorruptCacheError, match="invalid blob id"):
        store.blobs.path("../../secret")
    with pytest.raises(CorruptCacheError):
        store.load_outputs(Record(GOOD, "ok", "../" * 3 + "x" * 55))
    store.collect_garbage(grace=0)
    store.close()
    assert secret.exists()


def test_tampered_blob_id_in_a_build_re_executes(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("reliability")
    keep_pages(project.src, "p1")
    assert project.build().executed == Counter({"p1": 1})
    _tamper(project.src / ".nbcache" / "nbcache.db", "UPDATE results SET blob = '../../conf'")
    # ... and in the last build's verdicts kept beside it (a fresh build folder plans from them)
    (kept,) = (project.src / ".nbcache" / "builds").glob("*.json")
    data = json.loads(kept.read_text())
    data["pages"]["p1"]["record"]["blob"] = "../../conf"
    kept.write_text(json.dumps(data))
    project.clear_build()
    again = project.build()
    assert again.executed == Counter({"p1": 1})
    assert "output of p1" in project.html("p1")


def test_no_pickle_or_eval_of_stored_data() -> None:
    package = Path(sphinx_nbcache.__file__).parent
    for module in (
        *package.glob("store/*.py"),
        *package.glob("execute/*.py"),
        package / "engine" / "runner.py",
    ):
        code = module.read_text()
        if module.name == "_trace.py":
            # the one exec: the kernel runs our own constant tracer (its parameters are
            # literals), never anything read from the store
            line = 'expression = {"nbcache": f"exec({code!r}, '
            assert line in code
            assert code.count("exec(") == 1, "an exec( besides the tracer's"
            code = code.replace(line, "")
        if module.name == "_process.py":
            # the executor's process and the build talk over a socket pair made by the build
            # and handed to its own child as a file descriptor (nobody else can connect):
            # jobs and the finisher pickle there, as multiprocessing's do; nothing is read
            # from the store or a file with pickle
            assert "socket.socketpair()" in code
            assert "pass_fds=(theirs.fileno(),)" in code
            assert not re.search(r"pickle\.load\(|\bopen\(", code)
            code = re.sub(r"\bpickle\b", "", code)
        for banned in (r"\bpickle\b", r"\beval\(", r"\bexec\(", r"\bmarshal\b", r"yaml\.load\("):
            assert not re.search(banned, code), f"{banned} in {module.name}"


def test_cache_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        store = Store(tmp_path / "cache")
        stored = store.put(Record(GOOD, "ok", None), Outputs(({"outputs": []},)))
        store.close()
    finally:
        os.umask(old)
    assert stored.blob is not None
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "cache" / "nbcache.db").stat().st_mode) == 0o640
    assert stat.S_IMODE(store.blobs.path(stored.blob).stat().st_mode) == 0o640


def test_no_secret_reaches_the_store_or_the_log(project_factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    secret = "s3cr3t-T0KEN-value"
    monkeypatch.setenv("NBCACHE_TEST_SECRET", secret)  # the kernels inherit it
    project = project_factory("reliability")
    keep_pages(project.src, "p1")
    build = project.build()
    cache = project.src / ".nbcache"
    written = [build.warnings, build.status, (cache / "nbcache.db").read_bytes().decode("latin-1")]
    written += [p.read_text() for p in cache.glob("blobs/*/*.json")]
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    for text in written:
        assert secret not in text
        assert not uuid.search(text), "a kernel session key or message id was stored"
    outputs = json.loads(written[-1])
    assert "p1" in json.dumps(outputs)
