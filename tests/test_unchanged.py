"""A build with nothing changed never opens the cache, yet sees every change made to it.

The cache folder's change token (``store/_token.py``) is kept in the environment once the
doctrees agree with the cache; a build that finds the same token and no changed page skips the
database altogether. Anything stored or removed since (by the CLI, an import, another build)
replaces the token, and the next build looks again.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

from sphinx_nbcache.records import Outputs
from sphinx_nbcache.store import Store

PAGES = Counter({"p1": 1, "p2": 1, "p3": 1, "p4": 1})


def _last_used(cache: Path) -> dict[str, float]:
    with sqlite3.connect(cache / "nbcache.db") as conn:
        rows = dict(conn.execute("SELECT key, last_used FROM results").fetchall())
    conn.close()
    return rows


def test_no_op_build_leaves_the_cache_alone(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("reliability")
    cache = project.src / ".nbcache"
    cold = project.build()
    assert cold.executed == PAGES, cold.status
    assert cold.app.env.nbcache_token is not None  # the doctrees agree with the cache
    token_file = (cache / "generation").read_text()
    used = _last_used(cache)
    assert len(used) == 4

    noop = project.build()
    assert noop.total == 0
    assert _last_used(cache) == used  # planning did not even mark the results as used
    assert (cache / "generation").read_text() == token_file
    assert "output of p1" in project.html("p1")

    # a page whose code changes is executed; the others are still not looked at
    project.edit("p2.md", 'print("output of p2")', 'print("output of p2, edited")')
    edited = project.build()
    assert edited.executed == Counter({"p2": 1})
    assert "output of p2, edited" in project.html("p2")
    used = _last_used(cache)
    assert project.build().total == 0
    assert _last_used(cache) == used  # settled again after executing


def test_prose_edits_are_planned_without_the_database(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("reliability")
    cache = project.src / ".nbcache"
    assert project.build().executed == PAGES
    used = _last_used(cache)

    project.edit("p1.md", "# Page p1", "# Page p1, retitled")
    prose = project.build()
    assert prose.total == 0
    html = project.html("p1")
    assert "retitled" in html
    assert "output of p1" in html
    assert _last_used(cache) == used  # the outputs came from the blob; nothing was looked up
    assert project.build().total == 0
    assert _last_used(cache) == used

    # a result removed behind the cache's back (as by a concurrent prune, after this build
    # read the token): the page's blob is gone, the database is asked, the page runs again
    store = Store(cache)
    key = store.page_keys()["p2"]
    store.close()
    with sqlite3.connect(cache / "nbcache.db") as conn:
        (blob,) = conn.execute("SELECT blob FROM results WHERE key = ?", (key,)).fetchone()
        conn.execute("DELETE FROM results WHERE key = ?", (key,))
    conn.close()
    (cache / "blobs" / blob[:2] / f"{blob}.json").unlink()
    project.edit("p2.md", "# Page p2", "# Page p2, retitled")
    rerun = project.build()
    assert rerun.executed == Counter({"p2": 1})
    assert "damaged" not in rerun.warnings
    assert "output of p2" in project.html("p2")

    # a code edit is not a prose edit: executed, through the database
    project.edit("p3.md", 'print("output of p3")', 'print("output of p3, new")')
    assert project.build().executed == Counter({"p3": 1})
    assert "output of p3, new" in project.html("p3")


def test_a_result_stored_from_outside_is_shown_by_the_next_build(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("reliability")
    cache = project.src / ".nbcache"
    assert project.build().executed == PAGES
    assert project.build().total == 0  # the fast path is in use from here on

    # another machine's result for p1 arrives (as `nbcache import` would store it)
    store = Store(cache)
    key = store.page_keys()["p1"]
    record = store.get(key)
    assert record is not None
    outputs = store.load_outputs(record)
    cells = json.loads(json.dumps(outputs.cells).replace("output of p1", "p1 from CI"))
    store.put(record, Outputs(tuple(cells), outputs.metadata, outputs.sources))
    store.close()

    seen = project.build()
    assert seen.total == 0
    assert "p1 from CI" in project.html("p1")
    assert "output of p2" in project.html("p2")

    # a removed result is executed again, and only that one
    store = Store(cache)
    store.remove([record.id])
    store.close()
    assert project.build().executed == Counter({"p1": 1})
    assert "output of p1" in project.html("p1")


def test_a_lost_token_or_cache_folder_is_noticed(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("reliability")
    cache = project.src / ".nbcache"
    assert project.build().executed == PAGES
    used = _last_used(cache)

    (cache / "generation").unlink()  # no token: the next build looks, and makes a new one
    looked = project.build()
    assert looked.total == 0
    assert _last_used(cache) != used  # it planned against the database (marked results used)
    assert (cache / "generation").read_text()
    # Sphinx saves no environment when it read no page, so the new token is kept by the next
    # build that reads one; from then on, no-op builds leave the cache alone again
    project.edit("p3.md", "# Page p3", "# Page p3, edited")
    assert project.build().total == 0
    used = _last_used(cache)
    assert project.build().total == 0
    assert _last_used(cache) == used

    project.clear_cache()
    again = project.build()
    assert again.executed == PAGES
    assert "output of p3" in project.html("p3")


def test_a_token_changed_elsewhere_is_settled_by_one_build(project_factory) -> None:  # type: ignore[no-untyped-def]
    project = project_factory("reliability")
    cache = project.src / ".nbcache"
    assert project.build().executed == PAGES
    store = Store(cache)
    store.remove(["0" * 64])  # another project, the CLI or an import wrote to the cache
    store.close()
    looked = project.build()  # the token changed: this build asks the database, reads nothing
    assert looked.total == 0
    used = _last_used(cache)
    again = project.build()  # ... and kept the new token: this one does not open the cache
    assert again.total == 0
    assert _last_used(cache) == used
    assert "output of p1" in project.html("p1")


def test_a_ci_restore_is_planned_from_the_last_build_kept_in_the_cache(project_factory) -> None:  # type: ignore[no-untyped-def]
    """The build folder gone, the cache folder kept (CI restoring its cache into a fresh
    clone): while the cache is as the last build left it, the pages are planned from what
    that build kept in the cache folder, without the database, whatever the files' times;
    anything changed since is planned through the database."""
    project = project_factory("reliability")
    src, cache = project.src, project.src / ".nbcache"
    assert project.build().executed == PAGES
    (kept,) = (cache / "builds").glob("*.json")
    used = _last_used(cache)

    project.clear_build()
    restored = project.build()
    assert restored.total == 0
    assert _last_used(cache) == used  # nothing was looked up
    assert "output of p1" in project.html("p1")
    assert "output of p4" in project.html("p4")

    # a fresh clone: the same bytes with new modification times
    for page in src.glob("p*.md"):
        page.write_bytes(page.read_bytes())
    project.clear_build()
    assert project.build().total == 0
    assert _last_used(cache) == used

    # a prose edit since (the usual commit): still without the database; the new digest is kept
    digest = json.loads(kept.read_text())["pages"]["p1"]["digest"]
    project.edit("p1.md", "# Page p1", "# Page p1, retitled")
    project.clear_build()
    assert project.build().total == 0
    assert _last_used(cache) == used
    assert "retitled" in project.html("p1")
    assert "output of p1" in project.html("p1")
    assert json.loads(kept.read_text())["pages"]["p1"]["digest"] != digest

    # a code edit since: executed
    project.edit("p2.md", 'print("output of p2")', 'print("output of p2, restored")')
    project.clear_build()
    assert project.build().executed == Counter({"p2": 1})
    assert "output of p2, restored" in project.html("p2")

    # a result removed since (the token moved): the database is asked, the page runs again
    store = Store(cache)
    record = store.get(store.page_keys()["p3"])
    assert record is not None
    store.remove([record.id])
    store.close()
    project.clear_build()
    assert project.build().executed == Counter({"p3": 1})

    # other options that decide the keys: the database (each result raised nothing: reused)
    project.clear_build()
    used = _last_used(cache)
    assert project.build(nb_execution_allow_errors=True).total == 0
    assert _last_used(cache) != used

    # a new page: the database
    (src / "p5.md").write_text((src / "p4.md").read_text().replace("p4", "p5"))
    project.clear_build()
    assert project.build().executed == Counter({"p5": 1})

    # a damaged file is not read: the database plans, and a whole file is kept again
    kept.write_text('{"format": 1, "token": ')
    project.clear_build()
    assert project.build().total == 0
    assert json.loads(kept.read_text())["token"].startswith((cache / "generation").read_text())
