# sphinx-nbcache: parallel execution + SQLite/content-addressed cache, myst-nb renders.
# Appended to the harness's generated conf.py, which defines `os` and `_HERE`.
extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "cache"
# keep the cache in the project, outside _build, so "CI restore" can keep it
nbcache_path = os.path.join(_HERE, ".nbcache")
nb_execution_timeout = 300
# percent-format .py pages are read through jupytext; MyST .md notebooks are native
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
# nbcache_jobs = 0 (default): one execution per CPU, up to 4 per CPU while the CPUs sit idle

# --- harness metadata (ignored by Sphinx) -----------------------------------
# folders (relative to the project) that hold this engine's cache; "cold" deletes them
bench_cache_dirs = [".nbcache"]
# a build-log line matching this regex = one notebook execution (one line per executed page)
bench_exec_regex = r"nbcache: ran "
