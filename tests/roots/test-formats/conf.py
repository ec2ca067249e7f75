project = "nbcache-test"
extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "cache"
nbcache_path = ".nbcache"
nb_execution_timeout = 60
nb_custom_formats = {
    ".py": ["jupytext.reads", {"fmt": "py:percent"}],
    ".Rmd": ["jupytext.reads", {"fmt": "Rmd"}],
}
exclude_patterns = ["_build", "conf.py"]
