"""What a page is: its file, how it reads as a notebook, its cache key, and its outputs merged in.

``pages`` (a page's name and path; finding them), ``project`` (a docs folder outside Sphinx:
its ``conf.py`` options and pages), ``readers`` (path or text -> notebook, as myst-nb reads
it), ``hashing`` (notebook -> cache key: what invalidates), ``functions`` (parameters, ``skip``
and ``return`` cells), ``merge`` (source + stored outputs -> the notebook rendered), ``scraps``
(values glued in outputs), ``locate`` (cell -> source line). Pure functions of files and
notebooks: nothing here touches the store or runs a kernel.
"""
