# sphinx-nbcache as benchmarks/engines/nbcache.py, with every kernel started the usual way
# (no warm process forking them): what forked kernels save, measured side by side.
extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "cache"
nbcache_path = os.path.join(_HERE, ".nbcache")
nb_execution_timeout = 300
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
nbcache_fork_kernels = False

bench_cache_dirs = [".nbcache"]
bench_exec_regex = r"nbcache: ran "
