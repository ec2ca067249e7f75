project = "nbcache-reliability"
extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "cache"
nbcache_path = ".nbcache"
nb_execution_timeout = 60
exclude_patterns = ["_build", "conf.py"]
