project = "nbcache-modes"
extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "cache"
nbcache_path = ".nbcache"
nb_execution_timeout = 60
nb_execution_excludepatterns = ["excluded/*"]
nb_kernel_rgx_aliases = {"my-.*": "python3"}
exclude_patterns = ["_build", "conf.py"]
