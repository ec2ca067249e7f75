"""``python -m sphinx_nbcache.cli``: the ``nbcache`` command."""

import sys

from . import main

sys.exit(main())
