project = "nbcache-inline"
extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "inline"  # {eval} shows values the page computed
nbcache_path = ".nbcache"
exclude_patterns = ["_build", "conf.py"]
