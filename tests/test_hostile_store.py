"""A shared cache under attack: what its readers trust, and what a writer cannot make them do.

Each test performs one row of issue 24's table against the real thing (a real build, real
kernels, a real PostgreSQL server where the row needs one) and checks the outcome; docs/security.md
says the rules and docs/reliability.md lists the rows.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import insert

from sphinx_nbcache.api import open_cache
from sphinx_nbcache.dependencies import Dependencies
from sphinx_nbcache.records import Artifact, Outputs, Record
from sphinx_nbcache.store import Store
from sphinx_nbcache.store._blobs import outputs_bytes
from sphinx_nbcache.store._rows import to_row
from sphinx_nbcache.store._schema import results
from sphinx_nbcache.store._signing import Signer

pytestmark = [pytest.mark.kernel]

DB_PASSWORD = "pg-Pa55-never-in-a-kernel"
SECRETS = {
    "NBCACHE_SIGNING_KEY": "signing-key-never-in-a-kernel",
    "NBCACHE_JUPYTER_TOKEN": "jupyter-token-never-in-a-kernel",
}


@pytest.mark.services
def test_secrets_never_enter_a_kernel(project_factory, postgres_url, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """The build's database URL (password included), its signing key and its server token are
    in the build's environment; a notebook that reads another page's result (through the
    build) sees none of them: not in its environment, not in /proc/self/environ, not in what
    the tracer was told."""
    database = postgres_url.replace("://postgres@", f"://postgres:{DB_PASSWORD}@", 1)
    assert DB_PASSWORD in database
    monkeypatch.setenv("NBCACHE_DATABASE", database)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    dump = tmp_path / "kernel-sees.json"
    monkeypatch.setenv("NBCACHE_TEST_DUMP", str(dump))
    project = project_factory("trust")
    built = project.build()
    assert built.executed == Counter({"source": 1, "reader": 1}), built.warnings
    assert "read value: 42" in project.html("reader")  # the read worked, through the build
    seen = dump.read_text()
    for secret in (DB_PASSWORD, *SECRETS.values()):
        assert secret not in seen
    kernel = json.loads(seen)
    assert "link" in kernel["store"]
    assert "database" not in kernel["store"]
    assert "NBCACHE_DATABASE" not in kernel["environ"]
    with open_cache(project.src) as cache:  # the results are in PostgreSQL, as configured
        assert {r.page for r in cache.records()} == {"source", "reader"}


def _plant(store: Store, record: Record) -> None:
    """Write a row as someone with write access to a shared database would: straight into the
    table, self-consistent (its id matches its content), no validation of ours on the way."""
    with store.db.write() as connection:
        connection.execute(insert(results), [to_row(record, 0)])


def _current(src: Path, page: str) -> Record:
    with open_cache(src) as cache:
        state = cache.current(page)
        assert state.record is not None, state.reason
        return state.record


def test_a_tampered_record_never_makes_a_build_read_what_it_names(project_factory):  # type: ignore[no-untyped-def]
    """Records planted in the database that name ``code:/dev/zero``, ``glob:../../**``, an
    absolute file, or a FIFO put in the project: no build or ``why`` reads, walks or blocks on
    them; the first three are not results at all, the FIFO makes its record stale."""
    project = project_factory("trust")
    project.build()
    src = project.src
    good = _current(src, "source")
    os.mkfifo(src / "data.fifo")  # a reader of it would block forever
    planted = {
        "code:/dev/zero": Dependencies(files=(("code:/dev/zero", "x"),)),
        "glob:../../**": Dependencies(files=(("glob:../../**", "x"),)),
        "/etc/passwd": Dependencies(files=(("/etc/passwd", "x"),)),
        "data.fifo": Dependencies(files=(("code:data.fifo", "y"), ("data.fifo", "x"))),
    }
    with open_cache(src) as cache:
        for number, deps in enumerate(planted.values(), 1):
            newer = good._replace(dependencies=deps, created=time.time() + number)
            _plant(cache.store, newer)
        stored = cache.store.lookup([good.key])[good.key]
    kept = {r.dependencies for r in stored}
    assert planted["code:/dev/zero"] not in kept  # an absolute path: no result at all
    assert planted["/etc/passwd"] not in kept
    assert {planted["glob:../../**"], planted["data.fifo"]} <= kept  # relative: read, judged
    with open_cache(src) as cache:
        folder = src.resolve()
        check = cache.engine().freshness
        said = {name: check.check(deps, "python3", folder) for name, deps in planted.items()}
    assert said["glob:../../**"] == "glob:../../** cannot be checked here (glob dependency)"
    assert said["data.fifo"] is not None  # not a regular file: changed, and never opened
    with open_cache(src) as cache:
        state = cache.current("source")
    assert state.verdict == "cached"
    assert state.record == good  # the good one, still valid
    begin = time.monotonic()
    again = project.build()
    assert time.monotonic() - begin < 120  # nothing blocked (pytest's timeout would say so)
    assert again.total == 0, again.warnings
    assert "read value: 42" in project.html("reader")


def _blob(store: Store, data: bytes) -> str:
    return store.blobs.put(data)


def test_planted_artifacts_never_change_what_runs(project_factory):  # type: ignore[no-untyped-def]
    """A result planted in the cache that lists, as files its notebook wrote, a module beside
    the pages (``pandas.py``), ``conf.py`` and a git hook: a build from that cache writes none
    of them (a data file it lists is put back); the project may allow one by pattern."""
    project = project_factory("trust")
    project.build()
    src = project.src
    good = _current(src, "source")
    conf = (src / "conf.py").read_text()
    files: dict[str, bytes] = {
        "pandas.py": b"raise SystemExit('planted')\n",
        "conf.py": b"extensions = ['planted']\n",
        ".git/hooks/pre-commit": b"#!/bin/sh\necho planted\n",
        "data/table.csv": b"a,b\n1,2\n",
    }
    with open_cache(src) as cache:
        artifacts = tuple(
            Artifact(path, _blob(cache.store, data), len(data), time.time())
            for path, data in files.items()
        )
        cache.store.remove([good.id])  # who can write the database can delete a row too
        _plant(cache.store, good._replace(artifacts=artifacts))
    project.clear_build()
    built = project.build()
    assert built.total == 0, built.warnings
    assert (src / "conf.py").read_text() == conf
    assert not (src / "pandas.py").exists()
    assert not (src / ".git").exists()
    assert (src / "data" / "table.csv").read_bytes() == files["data/table.csv"]
    assert "pandas.py would change what runs" in built.warnings
    project.clear_build()
    allowed = project.build(nbcache_artifact_patterns=["pandas.py"])
    assert (src / "pandas.py").read_bytes() == files["pandas.py"]
    assert not (src / ".git").exists()
    assert (src / "conf.py").read_text() == conf
    assert allowed.total == 0


def test_required_signatures_refuse_results_planted_without_the_key(  # type: ignore[no-untyped-def]
    project_factory, monkeypatch
):
    """CI builds with the key and signs; someone who can write the database but has not the
    key plants a result of the same page with other outputs (unsigned, and another signed
    under a key of their own). A build that requires signatures shows the signed result and
    refuses both, saying how many; one that does not require them shows the planted one."""
    monkeypatch.setenv("NBCACHE_SIGNING_KEY", "the-ci-key")
    project = project_factory("trust")
    project.build()
    src = project.src
    good = _current(src, "source")
    assert good.signature is not None
    assert good.signature.startswith("v1:")
    with open_cache(src) as cache:
        outputs = cache.outputs(good)
        text = json.dumps(outputs.to_json()).replace("the value is 42", "the value is 666")
        forged = Outputs.from_json(json.loads(text))
        blob = cache.store.blobs.put(outputs_bytes(forged))
        deps = good.dependencies
        assert deps is not None
        for number, signature in enumerate([None, Signer("their-key").sign(good)], 1):
            planted = good._replace(
                blob=blob,
                created=time.time() + number,
                signature=signature,
                # one more file looked for and absent: another id, as valid as the good one
                dependencies=deps._replace(files=((f"x{number}.py", ""), *deps.files)),
            )
            _plant(cache.store, planted)
    project.clear_build()
    trusting = project.build()
    assert "the value is 666" in project.html("source")  # a writer without the key got in
    assert trusting.total == 0
    project.clear_build()
    careful = project.build(nbcache_require_signatures=True)
    assert "the value is 42" in project.html("source")
    assert careful.total == 0, careful.warnings  # the signed result is there: nothing runs
    assert careful.warnings.count("refused: their signature does not verify") == 1
    assert "2 cached result(s) refused" in careful.warnings
    monkeypatch.delenv("NBCACHE_SIGNING_KEY")
    project.clear_build()
    with pytest.raises(Exception, match="NBCACHE_SIGNING_KEY is not set"):
        project.build(nbcache_require_signatures=True)
