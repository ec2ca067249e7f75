# sphinx-nbcache with a fixed nbcache_jobs = 2 (one notebook per CPU here) and the thread caps
# off: two kernels at once, each with one BLAS / OpenMP thread per CPU.
extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "cache"
nbcache_path = os.path.join(_HERE, ".nbcache")
nb_execution_timeout = 300
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
nbcache_jobs = 2
nbcache_kernel_threads = 0  # leave OMP_NUM_THREADS and the like alone

bench_cache_dirs = [".nbcache"]
bench_exec_regex = r"nbcache: ran "
