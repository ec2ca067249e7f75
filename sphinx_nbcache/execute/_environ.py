"""The environment a local kernel gets: the build's own, without the build's secrets.

A notebook can read its environment (``os.environ``, ``/proc/self/environ``), so the variables
that hold the cache's credentials and the build's keys never reach a kernel, nor the warm
process kernels are forked from (a forked process keeps the environment it was started with in
``/proc/self/environ``). A kernel that must read a store itself gets its credentials only
where the project names them in ``nbcache_executor_env``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

__all__ = ["SECRET_VARIABLES", "kernel_environment"]

#: the build's secrets: the store's location and credentials, a server's token, the signing key
SECRET_VARIABLES = frozenset(
    {
        "NBCACHE_DATABASE",
        "NBCACHE_BLOBS",
        "NBCACHE_BLOBS_OPTIONS",
        "NBCACHE_JUPYTER_TOKEN",
        "NBCACHE_SIGNING_KEY",
    }
)


def kernel_environment(
    extra: Mapping[str, str] | None = None, passed: Iterable[str] = ()
) -> dict[str, str]:
    """This process's environment without :data:`SECRET_VARIABLES` (except those ``passed``
    on purpose: ``nbcache_executor_env``), with ``extra`` added."""
    kept = set(passed)
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES or k in kept}
    env.update(extra or {})
    return env
