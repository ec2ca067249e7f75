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
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from .errors import ConfigError

__all__ = ["DEFAULT_CACHE_DIR", "MODES", "OPTION_DEFAULTS", "CustomFormat", "Mode", "Options"]

Mode = Literal["cache", "auto", "force", "off", "inline"]
#: ``inline`` is myst-nb's live-kernel mode (``{eval}`` roles read variables from the kernel
#: while the page renders): those pages are left to myst-nb, executed and not cached.
MODES: tuple[Mode, ...] = ("cache", "auto", "force", "off", "inline")
DEFAULT_CACHE_DIR = ".nbcache"

#: Our own options and their defaults (the Sphinx glue registers exactly these).
OPTION_DEFAULTS: dict[str, Any] = {
    "nbcache_path": None,  # cache folder; None: nb_execution_cache_path, else <confdir>/.nbcache
    "nbcache_jobs": 0,  # notebooks executing at once; 0: one per CPU
    "nbcache_prestart": None,  # kernels started ahead of need; None: as many as nbcache_jobs
    "nbcache_retry_failed": False,  # re-execute notebooks whose cached result is a failure
    "nbcache_show_traceback": True,  # put the kernel traceback into failure warnings
    "nbcache_output_limit": 1_000_000,  # bytes of text kept per output; the rest is cut
    "nbcache_max_entries": 0,  # results kept in the cache (least recently used go); 0: no limit
    "nbcache_max_size": 0,  # bytes of stored outputs kept (least recently used go); 0: no limit
}


@dataclass(frozen=True)
class CustomFormat:
    """One ``nb_custom_formats`` entry: a suffix read by a function given by import path."""

    suffix: str
    reader: str  # "package.module.function"
    kwargs: tuple[tuple[str, Any], ...] = ()
    commonmark_only: bool = False


@dataclass(frozen=True)
class Options:
    """Everything that decides what runs and how; immutable, cheap to copy, picklable."""

    cache_path: Path
    mode: Mode = "cache"
    jobs: int = 1
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
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], base_dir: str | Path) -> Options:
        """Build the snapshot from option values (missing keys take their defaults).

        ``base_dir`` is the folder relative cache paths are resolved against (Sphinx's confdir).
        """

        def get(name: str, default: Any = None) -> Any:
            value = values.get(name, default)
            return default if value is None else value

        mode = str(get("nb_execution_mode", "cache"))
        if mode not in MODES:
            raise ConfigError("nb_execution_mode", f"{mode!r} is not one of {', '.join(MODES)}")
        cache = get("nbcache_path") or get("nb_execution_cache_path") or DEFAULT_CACHE_DIR
        cache_path = Path(base_dir, os.path.expanduser(str(cache))).resolve()
        jobs = _int(get("nbcache_jobs", 0), "nbcache_jobs", minimum=0) or (os.cpu_count() or 1)
        prestart_raw = get("nbcache_prestart")
        prestart = jobs if prestart_raw is None else _int(prestart_raw, "nbcache_prestart", 0)
        timeout_raw = get("nb_execution_timeout", 30)
        return cls(
            cache_path=cache_path,
            mode=mode,  # checked against MODES above
            jobs=jobs,
            prestart=prestart,
            timeout=_timeout(timeout_raw, "nb_execution_timeout"),
            allow_errors=bool(get("nb_execution_allow_errors", False)),
            raise_on_error=bool(get("nb_execution_raise_on_error", False)),
            show_traceback=bool(get("nbcache_show_traceback", True))
            or bool(get("nb_execution_show_tb", False)),
            in_temp=bool(get("nb_execution_in_temp", False)),
            exclude_patterns=tuple(str(p) for p in get("nb_execution_excludepatterns", ())),
            kernel_aliases=_aliases(get("nb_kernel_rgx_aliases", {})),
            custom_formats=_custom_formats(get("nb_custom_formats", {})),
            retry_failed=bool(get("nbcache_retry_failed", False)),
            output_limit=_int(get("nbcache_output_limit", 1_000_000), "nbcache_output_limit", 0),
            max_entries=_int(get("nbcache_max_entries", 0), "nbcache_max_entries", 0),
            max_size=_int(get("nbcache_max_size", 0), "nbcache_max_size", 0),
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
                changes["timeout"] = _timeout(own["execution_timeout"], "execution_timeout")
            if "execution_allow_errors" in own:
                changes["allow_errors"] = bool(own["execution_allow_errors"])
            if "execution_in_temp" in own:
                changes["in_temp"] = bool(own["execution_in_temp"])
            if "execution_raise_on_error" in own:
                changes["raise_on_error"] = bool(own["execution_raise_on_error"])
        execution = metadata.get("execution")
        if isinstance(execution, Mapping):
            if "timeout" in execution:
                changes["timeout"] = _timeout(execution["timeout"], "execution.timeout")
            if "allow_errors" in execution:
                changes["allow_errors"] = bool(execution["allow_errors"])
        return replace(self, **changes) if changes else self

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


def _int(value: Any, name: str, minimum: int = 0) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(name, f"expected a whole number, got {value!r}") from None
    if number < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {number}")
    return number


def _timeout(value: Any, name: str) -> float | None:
    """myst-nb semantics: a number of seconds per cell; -1, 0 or None mean no limit."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(name, f"expected seconds, got {value!r}") from None
    return None if seconds <= 0 else seconds


def _aliases(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise ConfigError("nb_kernel_rgx_aliases", "expected a dict of regex -> kernel name")
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError("nb_kernel_rgx_aliases", f"bad regex {pattern!r}: {exc}") from None
    return tuple((str(k), str(v)) for k, v in value.items())


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
