project = "nbcache-artifacts"
extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "cache"
nbcache_path = ".nbcache"
nbcache_jobs = 2
nb_execution_timeout = 60
exclude_patterns = ["_build", "conf.py"]
