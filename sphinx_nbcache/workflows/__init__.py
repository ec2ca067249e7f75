"""Features built on the engine: notebooks that read, call and show other notebooks.

``reads`` (``read_notebook``/``read_notebooks``: other pages' results), ``calls`` (``run``: a
notebook as a cached function), ``variants`` (the ``nbcache-notebook`` directive: a notebook
shown with parameters).
"""
