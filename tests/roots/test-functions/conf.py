project = "nbcache-functions"
extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "cache"
nbcache_path = ".nbcache"
nbcache_jobs = 2
nb_execution_timeout = 120
# notebooks only ever called as functions (by path), never pages of their own
exclude_patterns = ["_build", "conf.py", "functions"]
