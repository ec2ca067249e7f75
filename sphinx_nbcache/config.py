"""One frozen, typed snapshot of the options, shared by the Sphinx path and the CLI.

sphinx-nbcache honours myst-nb's ``nb_execution_*`` options (same names, same meaning) and adds
its own ``nbcache_*`` options. :func:`Options.from_mapping` reads both from any mapping (a
Sphinx config, a parsed ``conf.py``, CLI flags); :meth:`Options.for_notebook` applies the
per-notebook overrides (``metadata.mystnb`` and ``metadata.execution``) the way myst-nb does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Literal, NamedTuple

from .errors import ConfigError
from .options import (
    AUTO_JOBS_FACTOR,
    ENV_OVERRIDES,
    MYSTNB_OPTIONS,
    OPTION_DEFAULTS,
    OPTIONS,
    OptionSpec,
)
from .values import (
    aliases,
    declared,
    from_environment,
    mapping,
    names,
    optional_url,
    rules,
    seconds,
    timeout,
    whole,
)

__all__ = [
    "DEFAULT_CACHE_DIR",
    "ENVIRONMENT_SCOPES",
    "MODES",
    "MYSTNB_OPTIONS",
    "OPTIONS",
    "OPTION_DEFAULTS",
    "CustomFormat",
    "EnvironmentScope",
    "Mode",
    "OptionSpec",
    "Options",
]

Mode = Literal["cache", "auto", "force", "off", "inline"]
#: What a run records about the environment it ran in (``nbcache_environment``):
#: ``packages``: Python version, kernel spec and the versions of the distributions imported;
#: ``kernel``: Python version and kernel spec only; ``off``: nothing.
EnvironmentScope = Literal["packages", "kernel", "off"]
ENVIRONMENT_SCOPES: tuple[EnvironmentScope, ...] = ("packages", "kernel", "off")
#: ``inline`` is myst-nb's live-kernel mode (``{eval}`` roles show values computed by the
#: page): such pages run and are cached like ``cache`` pages, their expressions evaluated at
#: their places and their values cached with the outputs.
MODES: tuple[Mode, ...] = ("cache", "auto", "force", "off", "inline")
DEFAULT_CACHE_DIR = ".nbcache"


class CustomFormat(NamedTuple):
    """One ``nb_custom_formats`` entry: a suffix read by a function given by import path."""

    suffix: str
    reader: str  # "package.module.function"
    kwargs: tuple[tuple[str, Any], ...] = ()
    commonmark_only: bool = False


#: the default of Options' mapping fields (never mutated: Options is immutable)
_NO_MAPPING: Mapping[str, Any] = {}
#: Options fields its repr leaves out: they may hold credentials
_SECRET_FIELDS = frozenset({"blobs_options", "executor_token", "signing_key"})


class Options(NamedTuple):
    """Everything that decides what runs and how; immutable, cheap to copy, picklable.

    A ``NamedTuple``, like the other records a build keeps (``Memo``, ``Page``,
    ``Dependencies``, ...), not a frozen dataclass: a dataclass generates and compiles its
    methods when its module is imported (~17 M instructions for these ~40 fields, a quarter
    of what a build with nothing to do adds to Sphinx's own work); a NamedTuple costs a
    seventh of that. Change one with ``options._replace(timeout=10)``.
    """

    cache_path: Path
    mode: Mode = "cache"
    jobs: int = 1
    max_jobs: int = 1  # more notebooks at once while the CPUs are idle (local kernels)
    prestart: int = 1
    timeout: float | None = 30.0  # per cell, seconds; None = no limit
    allow_errors: bool = False
    raise_on_error: bool = False
    show_traceback: bool = True
    in_temp: bool = False
    exclude_patterns: tuple[str, ...] = ()
    kernel_aliases: tuple[tuple[str, str], ...] = ()
    custom_formats: tuple[CustomFormat, ...] = ()
    retry_failed: bool = False
    output_limit: int = 1_000_000
    max_entries: int = 0
    max_size: int = 0
    metadata_key: str = "mystnb"
    database: str | None = None  # SQLAlchemy URL; None: SQLite in cache_path
    blobs: str | None = None  # fsspec URL or folder; None: <cache_path>/blobs
    blobs_options: Mapping[str, Any] = _NO_MAPPING  # may hold credentials: never shown
    executor: str = "local"
    executor_url: str | None = None
    executor_token: str | None = None  # a secret: never shown
    signing_key: str | None = None  # NBCACHE_SIGNING_KEY (a secret: never shown)
    require_signatures: bool = False
    executor_env: tuple[str, ...] = ()
    executor_options: Mapping[str, Any] = _NO_MAPPING
    executor_process: bool = True  # the local executor in a process of its own
    files_limit: int = 50_000_000
    environment: EnvironmentScope = "packages"
    #: (page glob, file globs) pairs from ``nbcache_dependencies``
    dependencies: tuple[tuple[str, tuple[str, ...]], ...] = ()
    artifact_limit: int = 50_000_000
    artifact_patterns: tuple[str, ...] = ()  # risky artifacts restored all the same
    lease_seconds: float = 60.0
    serve_jobs: int = 1
    fork_kernels: bool = True
    kernel_threads: int | None = None  # None: CPUs // jobs; 0: not capped
    freeze_folder: Path | None = None  # frozen results (None: no docs folder, none read)
    #: (regex, replacement) pairs applied to frozen outputs after the built-in ones
    freeze_normalise: tuple[tuple[str, str], ...] = ()
    freeze_stderr: bool = False
    frozen_only: bool = False  # a build never executes: results come from the cache or frozen
    progress_interval: float = 30.0  # seconds between "still running" lines; 0: none
    report_json: Path | None = None  # the JSON report written after each build
    report_junit: Path | None = None  # the JUnit XML report written after each build
    extra: Mapping[str, Any] = _NO_MAPPING

    def __repr__(self) -> str:
        pairs = zip(self._fields, self, strict=True)
        shown = (f"{n}={v!r}" for n, v in pairs if n not in _SECRET_FIELDS)
        return f"Options({', '.join(shown)})"

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], base_dir: str | Path) -> Options:
        """Build the snapshot from option values (missing keys take their defaults).

        ``base_dir`` is the folder relative cache paths are resolved against (Sphinx's confdir).
        """

        def get(name: str, default: Any = None) -> Any:
            value = values.get(name, default)
            return default if value is None else value

        for variable, name in ENV_OVERRIDES.items():
            if os.environ.get(variable):
                values = {**values, name: from_environment(variable)}

        mode = str(get("nb_execution_mode", "cache"))
        if mode not in MODES:
            raise ConfigError("nb_execution_mode", f"{mode!r} is not one of {', '.join(MODES)}")
        cache = get("nbcache_path") or get("nb_execution_cache_path") or DEFAULT_CACHE_DIR
        cache_path = Path(base_dir, os.path.expanduser(str(cache))).resolve()
        fixed = whole(get("nbcache_jobs", 0), "nbcache_jobs", minimum=0)
        jobs = fixed or (os.cpu_count() or 1)
        max_raw = get("nbcache_max_jobs")
        if max_raw is None:
            max_jobs = jobs if fixed else AUTO_JOBS_FACTOR * jobs
        else:
            max_jobs = max(jobs, whole(max_raw, "nbcache_max_jobs", minimum=1))
        prestart_raw = get("nbcache_prestart")
        prestart = jobs if prestart_raw is None else whole(prestart_raw, "nbcache_prestart", 0)
        timeout_raw = get("nb_execution_timeout", 30)
        environment = str(get("nbcache_environment", "packages"))
        if environment not in ENVIRONMENT_SCOPES:
            raise ConfigError(
                "nbcache_environment",
                f"{environment!r} is not one of {', '.join(ENVIRONMENT_SCOPES)}",
            )
        token = get("nbcache_executor_token") or os.environ.get("NBCACHE_JUPYTER_TOKEN")
        signing_key = os.environ.get("NBCACHE_SIGNING_KEY") or None
        require_signatures = bool(get("nbcache_require_signatures", False))
        if require_signatures and signing_key is None:
            raise ConfigError(
                "nbcache_require_signatures",
                "signatures are required but NBCACHE_SIGNING_KEY is not set in the environment; "
                "set it (the key the results were signed with), or turn the option off",
            )
        return cls(
            cache_path=cache_path,
            mode=mode,  # checked against MODES above
            jobs=jobs,
            max_jobs=max_jobs,
            prestart=prestart,
            timeout=timeout(timeout_raw, "nb_execution_timeout"),
            allow_errors=bool(get("nb_execution_allow_errors", False)),
            raise_on_error=bool(get("nb_execution_raise_on_error", False)),
            show_traceback=bool(get("nbcache_show_traceback", True))
            or bool(get("nb_execution_show_tb", False)),
            in_temp=bool(get("nb_execution_in_temp", False)),
            exclude_patterns=tuple(str(p) for p in get("nb_execution_excludepatterns", ())),
            kernel_aliases=aliases(get("nb_kernel_rgx_aliases", {})),
            custom_formats=_custom_formats(get("nb_custom_formats", {})),
            retry_failed=bool(get("nbcache_retry_failed", False)),
            output_limit=whole(get("nbcache_output_limit", 1_000_000), "nbcache_output_limit", 0),
            max_entries=whole(get("nbcache_max_entries", 0), "nbcache_max_entries", 0),
            max_size=whole(get("nbcache_max_size", 0), "nbcache_max_size", 0),
            database=optional_url(get("nbcache_database"), "nbcache_database"),
            blobs=optional_url(get("nbcache_blobs"), "nbcache_blobs"),
            blobs_options=mapping(get("nbcache_blobs_options", {}), "nbcache_blobs_options"),
            executor=str(get("nbcache_executor", "local")),
            executor_url=optional_url(get("nbcache_executor_url"), "nbcache_executor_url"),
            executor_token=None if token is None else str(token),
            signing_key=signing_key,
            require_signatures=require_signatures,
            executor_env=names(get("nbcache_executor_env", ()), "nbcache_executor_env"),
            executor_options=mapping(
                get("nbcache_executor_options", {}), "nbcache_executor_options"
            ),
            executor_process=bool(get("nbcache_executor_process", True)),
            files_limit=whole(get("nbcache_files_limit", 50_000_000), "nbcache_files_limit", 0),
            environment=environment,  # checked against ENVIRONMENT_SCOPES above
            dependencies=declared(get("nbcache_dependencies", {})),
            artifact_limit=whole(
                get("nbcache_artifact_limit", 50_000_000), "nbcache_artifact_limit", 0
            ),
            artifact_patterns=names(
                get("nbcache_artifact_patterns", ()), "nbcache_artifact_patterns", "file globs"
            ),
            lease_seconds=seconds(get("nbcache_lease_seconds", 60), "nbcache_lease_seconds"),
            serve_jobs=whole(get("nbcache_serve_jobs", 0), "nbcache_serve_jobs", 0) or jobs,
            fork_kernels=bool(get("nbcache_fork_kernels", True)),
            kernel_threads=None
            if get("nbcache_kernel_threads") is None
            else whole(get("nbcache_kernel_threads"), "nbcache_kernel_threads", 0),
            freeze_folder=Path(base_dir, str(get("nbcache_freeze_folder", "_freeze"))).resolve(),
            freeze_normalise=rules(get("nbcache_freeze_normalise", ())),
            freeze_stderr=bool(get("nbcache_freeze_stderr", False)),
            frozen_only=bool(get("nbcache_frozen_only", False)),
            progress_interval=_interval(get("nbcache_progress_interval", 30)),
            report_json=_report_path(get("nbcache_report_json"), "nbcache_report_json", base_dir),
            report_junit=_report_path(
                get("nbcache_report_junit"), "nbcache_report_junit", base_dir
            ),
        )

    # -- per notebook -------------------------------------------------------------------------

    def for_notebook(self, metadata: Mapping[str, Any]) -> Options:
        """These options with the notebook's own overrides applied.

        ``metadata.<metadata_key>`` (``mystnb``) carries myst-nb option names without the
        ``nb_`` prefix; nbclient's ``metadata.execution.{timeout,allow_errors}`` wins over both.
        """
        changes: dict[str, Any] = {}
        own = metadata.get(self.metadata_key)
        if isinstance(own, Mapping):
            if own.get("execution_mode") in MODES:
                changes["mode"] = own["execution_mode"]
            if "execution_timeout" in own:
                changes["timeout"] = timeout(own["execution_timeout"], "execution_timeout")
            if "execution_allow_errors" in own:
                changes["allow_errors"] = bool(own["execution_allow_errors"])
            if "execution_in_temp" in own:
                changes["in_temp"] = bool(own["execution_in_temp"])
            if "execution_raise_on_error" in own:
                changes["raise_on_error"] = bool(own["execution_raise_on_error"])
        execution = metadata.get("execution")
        if isinstance(execution, Mapping):
            if "timeout" in execution:
                changes["timeout"] = timeout(execution["timeout"], "execution.timeout")
            if "allow_errors" in execution:
                changes["allow_errors"] = bool(execution["allow_errors"])
        return self._replace(**changes) if changes else self

    def kernel_alias(self, name: str) -> str:
        """The kernel name after ``nb_kernel_rgx_aliases`` (first full match wins)."""
        for pattern, alias in self.kernel_aliases:
            if re.fullmatch(pattern, name):
                return alias
        return name

    def is_excluded(self, path: str | Path) -> bool:
        """True if ``nb_execution_excludepatterns`` keeps this file from executing."""
        posix = PurePosixPath(Path(path).as_posix())
        return any(posix.match(pattern) for pattern in self.exclude_patterns)

    def format_for(self, path: str | Path) -> CustomFormat | None:
        """The custom format whose suffix ends ``path`` (longest suffix first), if any."""
        name = str(path)
        for fmt in sorted(self.custom_formats, key=lambda f: len(f.suffix), reverse=True):
            if name.endswith(fmt.suffix):
                return fmt
        return None

    @property
    def notebook_suffixes(self) -> tuple[str, ...]:
        """Suffixes that are always notebooks (``.md`` is one only with notebook top matter)."""
        return (".ipynb", *(f.suffix for f in self.custom_formats))


def _interval(value: Any) -> float:
    """``nbcache_progress_interval``: seconds (0: no "still running" lines)."""
    name = "nbcache_progress_interval"
    if isinstance(value, bool):
        raise ConfigError(name, f"expected seconds (0 for none), got {value!r}")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(name, f"expected seconds (0 for none), got {value!r}") from None
    if seconds < 0 or seconds != seconds:
        raise ConfigError(name, f"expected seconds (0 for none), got {value!r}")
    return seconds


def _report_path(value: Any, name: str, base_dir: str | Path) -> Path | None:
    """A report file's path, relative to the docs folder (None: not written)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str | os.PathLike):
        raise ConfigError(name, f"expected a file path, got {type(value).__name__}")
    return Path(base_dir, os.path.expanduser(value)).resolve()


def _custom_formats(value: Any) -> tuple[CustomFormat, ...]:
    if not isinstance(value, Mapping):
        raise ConfigError("nb_custom_formats", "expected a dict of suffix -> reader")
    formats = []
    for suffix, spec in value.items():
        kwargs: Any
        if isinstance(spec, str):
            reader, kwargs, commonmark = spec, {}, False
        elif isinstance(spec, list | tuple) and 1 <= len(spec) <= 3:
            reader = spec[0]
            kwargs = spec[1] if len(spec) > 1 else {}
            commonmark = bool(spec[2]) if len(spec) > 2 else False
        else:
            raise ConfigError(
                "nb_custom_formats", f"{suffix!r}: expected 'module.reader' or [reader, kwargs]"
            )
        if not isinstance(reader, str) or not isinstance(kwargs, Mapping):
            raise ConfigError(
                "nb_custom_formats", f"{suffix!r}: the reader must be an import path string"
            )
        formats.append(CustomFormat(str(suffix), reader, tuple(kwargs.items()), commonmark))
    return tuple(formats)
