# sphinx-nbcache as benchmarks/engines/nbcache.py (nbcache_jobs = 0: one notebook per CPU,
# more while kernels wait) with the thread caps off: every kernel's BLAS / OpenMP pools start
# one thread per CPU, as without sphinx-nbcache. Measured side by side with the caps.
extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "cache"
nbcache_path = os.path.join(_HERE, ".nbcache")
nb_execution_timeout = 300
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
nbcache_kernel_threads = 0  # leave OMP_NUM_THREADS and the like alone

bench_cache_dirs = [".nbcache"]
bench_exec_regex = r"nbcache: ran "
