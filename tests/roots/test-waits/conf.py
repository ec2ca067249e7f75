project = "nbcache-waits"
extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "cache"
nbcache_path = ".nbcache"
nbcache_jobs = 2
nb_execution_timeout = 30  # a read that waits for nothing fails in 30 s, not a minute
exclude_patterns = ["_build", "conf.py"]
