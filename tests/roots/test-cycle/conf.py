project = "nbcache-cycle"
extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "cache"
nbcache_path = ".nbcache"
nbcache_jobs = 1
nb_execution_timeout = 120
exclude_patterns = ["_build", "conf.py"]
