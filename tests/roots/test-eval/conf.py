project = "nbcache-eval"
extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "inline"  # myst-nb's mode for {eval}: cached by sphinx-nbcache
nbcache_path = ".nbcache"
exclude_patterns = ["_build", "conf.py"]
