"""The ``nbcache`` command: ``main`` parses the arguments and runs one command.

``main`` is the console entry point (``nbcache = "sphinx_nbcache.cli:main"``). Nothing heavy is
imported until a command needs it: ``nbcache --version`` and ``--help`` load the parser only.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nbcache`` with ``argv`` (default: the command line); returns the exit status."""
    from .app import main as run

    return run(argv)
