project = "nbcache-inline"
extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "inline"  # myst-nb's live-kernel mode: {eval} reads kernel variables
nbcache_path = ".nbcache"
exclude_patterns = ["_build", "conf.py"]
