# sphinx-nbcache as benchmarks/engines/nbcache.py, with the local executor in a thread of the
# build's process (nbcache_executor_process = False): what running it apart saves, side by side.
extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "cache"
nbcache_path = os.path.join(_HERE, ".nbcache")
nb_execution_timeout = 300
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
nbcache_executor_process = False

bench_cache_dirs = [".nbcache"]
bench_exec_regex = r"nbcache: ran "
