# sphinx-nbcache with each notebook a task on a Dask cluster (benchmarks/scale_out.py starts
# a scheduler and two single-threaded workers on 127.0.0.1 and sets NBCACHE_BENCH_DASK).
extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "cache"
nbcache_path = os.path.join(_HERE, ".nbcache")
nb_execution_timeout = 300
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
nbcache_executor = "dask"
nbcache_executor_url = os.environ["NBCACHE_BENCH_DASK"]

bench_cache_dirs = [".nbcache"]
bench_exec_regex = r"nbcache: ran "
