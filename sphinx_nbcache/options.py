"""The option table: every ``nbcache_*`` option with its default, the types Sphinx accepts and
whether changing it re-reads every page, and the myst-nb options sphinx-nbcache honours.

The Sphinx glue registers exactly these; the CLI reads them from a ``conf.py``;
:mod:`~sphinx_nbcache.config` turns their values into the frozen :class:`Options`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, NamedTuple

__all__ = [
    "AUTO_JOBS_FACTOR",
    "ENV_OVERRIDES",
    "MYSTNB_OPTIONS",
    "OPTIONS",
    "OPTION_DEFAULTS",
    "OptionSpec",
    "unknown_options",
]

_STR, _INT, _BOOL, _NONE = (str,), (int,), (bool,), (type(None),)
_DICT, _LIST = (dict,), (list, tuple)


class OptionSpec(NamedTuple):
    """One of our ``conf.py`` options: its default, the types Sphinx accepts, and whether
    changing it makes Sphinx read every page again (``"env"``) or not (``""``)."""

    default: Any
    types: tuple[type, ...]
    rebuild: Literal["", "env"] = ""


#: Our own options (the Sphinx glue registers exactly these; the CLI reads them from conf.py).
OPTIONS: dict[str, OptionSpec] = {
    # cache folder; None: nb_execution_cache_path, else <confdir>/.nbcache
    "nbcache_path": OptionSpec(None, _STR + _NONE),
    # records: any SQLAlchemy URL; None: SQLite in nbcache_path (env NBCACHE_DATABASE wins)
    "nbcache_database": OptionSpec(None, _STR + _NONE),
    # outputs and artifacts: any fsspec URL or folder; None: <nbcache_path>/blobs
    # (env NBCACHE_BLOBS wins)
    "nbcache_blobs": OptionSpec(None, _STR + _NONE),
    "nbcache_blobs_options": OptionSpec({}, _DICT),  # fsspec storage options (endpoint, keys)
    # who runs notebooks: "local", "dask", "jupyter", an entry-point name, or "module:factory"
    "nbcache_executor": OptionSpec("local", _STR),
    "nbcache_executor_url": OptionSpec(None, _STR + _NONE),  # the cluster or server
    # token of a Jupyter server (env NBCACHE_JUPYTER_TOKEN if None)
    "nbcache_executor_token": OptionSpec(None, _STR + _NONE),
    "nbcache_executor_env": OptionSpec([], _LIST),  # names of env variables passed to kernels
    "nbcache_executor_options": OptionSpec({}, _DICT),  # more keyword settings for the factory
    # the local executor (kernels, storing results) in a process of its own; False: in a
    # thread of the build's process
    "nbcache_executor_process": OptionSpec(True, _BOOL),
    "nbcache_files_limit": OptionSpec(50_000_000, _INT),  # bytes of a folder shipped per job
    "nbcache_jobs": OptionSpec(0, _INT),  # notebooks executing at once; 0: one per CPU
    # ... at most, while the CPUs sit idle (kernels waiting on I/O); None: 4 x nbcache_jobs
    # when nbcache_jobs is 0, else nbcache_jobs (a fixed number)
    "nbcache_max_jobs": OptionSpec(None, _INT + _NONE),
    # kernels started ahead of need; None: as many as nbcache_jobs
    "nbcache_prestart": OptionSpec(None, _INT + _NONE),
    # re-execute notebooks whose cached result is a failure
    "nbcache_retry_failed": OptionSpec(False, _BOOL, "env"),
    "nbcache_show_traceback": OptionSpec(True, _BOOL, "env"),  # tracebacks in failure warnings
    "nbcache_output_limit": OptionSpec(1_000_000, _INT),  # bytes of text kept per output
    # results kept in the cache (least recently used go); 0: no limit
    "nbcache_max_entries": OptionSpec(0, _INT),
    # bytes of stored outputs kept (least recently used go); 0: no limit
    "nbcache_max_size": OptionSpec(0, _INT),
    # what a result depends on besides its files: "packages", "kernel" or "off"
    "nbcache_environment": OptionSpec("packages", _STR),
    # {"page glob": ["file glob", ...]}: files pages depend on that tracing cannot see
    "nbcache_dependencies": OptionSpec({}, _DICT),
    # bytes of files a notebook writes inside the project kept with its result (per page)
    "nbcache_artifact_limit": OptionSpec(50_000_000, _INT),
    # project-relative globs of files that change what runs (code, configuration, dot-files)
    # that results from the cache may put back all the same (none by default)
    "nbcache_artifact_patterns": OptionSpec([], _LIST),
    # use only results whose signature verifies under NBCACHE_SIGNING_KEY (an environment
    # variable, never an option: results are signed whenever it is set); others are absent
    "nbcache_require_signatures": OptionSpec(False, _BOOL, "env"),
    # seconds a build's claim on a page it executes lasts unless renewed (shared stores)
    "nbcache_lease_seconds": OptionSpec(60, (int, float)),
    # notebooks executing at once for REST calls (`nbcache serve`); 0: as nbcache_jobs
    "nbcache_serve_jobs": OptionSpec(0, _INT),
    # local kernels forked from a warm process (env NBCACHE_FORK_KERNELS=0 turns it off)
    "nbcache_fork_kernels": OptionSpec(True, _BOOL),
    # threads of each local kernel's BLAS / OpenMP / numexpr / Numba pools (OMP_NUM_THREADS
    # and the like, unless the environment sets one): None: the CPUs shared by the notebooks
    # executing at once (CPUs // nbcache_jobs), 0: leave them alone, N: N threads each
    "nbcache_kernel_threads": OptionSpec(None, _INT + _NONE),
    # frozen results meant for git (`nbcache freeze`): their folder, relative to conf.py
    "nbcache_freeze_folder": OptionSpec("_freeze", _STR),
    # more noise taken out of frozen outputs: regexes, or [regex, replacement] pairs
    "nbcache_freeze_normalise": OptionSpec([], _LIST),
    "nbcache_freeze_stderr": OptionSpec(False, _BOOL),  # keep stderr in frozen outputs
    # never execute in a build: a page without a current (or frozen) result is a warning
    "nbcache_frozen_only": OptionSpec(False, _BOOL),
    # seconds between "still running" lines for a notebook still executing; 0: none
    "nbcache_progress_interval": OptionSpec(30, (int, float)),
    # after each build, the account of what ran as JSON / JUnit XML (relative to conf.py's
    # folder); None: not written
    "nbcache_report_json": OptionSpec(None, _STR + _NONE),
    "nbcache_report_junit": OptionSpec(None, _STR + _NONE),
}
OPTION_DEFAULTS: dict[str, Any] = {name: spec.default for name, spec in OPTIONS.items()}

#: myst-nb's options that we honour (same names, same meaning; myst-nb registers them).
MYSTNB_OPTIONS: tuple[str, ...] = (
    "nb_execution_mode",
    "nb_execution_cache_path",
    "nb_execution_excludepatterns",
    "nb_execution_timeout",
    "nb_execution_allow_errors",
    "nb_execution_raise_on_error",
    "nb_execution_show_tb",
    "nb_execution_in_temp",
    "nb_kernel_rgx_aliases",
    "nb_custom_formats",
)

#: with ``nbcache_jobs = 0``, up to this many notebooks per CPU while the CPUs are idle
AUTO_JOBS_FACTOR = 4
#: Environment variables that win over conf.py (for secrets kept out of the repository).

ENV_OVERRIDES = {
    "NBCACHE_DATABASE": "nbcache_database",
    "NBCACHE_BLOBS": "nbcache_blobs",
    "NBCACHE_BLOBS_OPTIONS": "nbcache_blobs_options",  # a JSON object (endpoint_url, keys)
}


def unknown_options(names: Iterable[str], prefix: str = "nbcache_") -> list[tuple[str, str | None]]:
    """Names starting with ``prefix`` that are no option, each with the closest option's name
    (None: nothing close): ``nbcache_job`` -> ``nbcache_jobs``."""
    import difflib

    known = {name[len(prefix) :]: name for name in OPTIONS if name.startswith(prefix)}
    found = []
    for name in sorted(set(names)):
        if name.startswith(prefix) and name not in OPTIONS:  # the prefix itself tells nothing
            close = difflib.get_close_matches(name[len(prefix) :], known, n=1, cutoff=0.6)
            found.append((name, known[close[0]] if close else None))
    return found
