project = "nbcache-freeze"
extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "cache"
nbcache_path = ".nbcache"
exclude_patterns = ["_build", "conf.py", "helpers.py"]
