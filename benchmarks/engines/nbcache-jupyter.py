# sphinx-nbcache with remote kernels on a `jupyter server` (benchmarks/scale_out.py starts one
# on 127.0.0.1 and sets NBCACHE_BENCH_JUPYTER and NBCACHE_JUPYTER_TOKEN).
extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "cache"
nbcache_path = os.path.join(_HERE, ".nbcache")
nb_execution_timeout = 300
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
nbcache_executor = "jupyter"
nbcache_executor_url = os.environ["NBCACHE_BENCH_JUPYTER"]
nbcache_jobs = 2

bench_cache_dirs = [".nbcache"]
bench_exec_regex = r"nbcache: ran "
