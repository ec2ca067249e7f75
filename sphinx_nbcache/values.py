"""How the value of each option is read and checked (what ``config.Options.from_mapping`` uses):
each checker names the option and says what was expected."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError
from .options import ENV_OVERRIDES

__all__ = [
    "aliases",
    "declared",
    "from_environment",
    "mapping",
    "names",
    "optional_url",
    "rules",
    "seconds",
    "timeout",
    "whole",
]


def whole(value: Any, name: str, minimum: int = 0) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(name, f"expected a whole number, got {value!r}") from None
    if number < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {number}")
    return number


def seconds(value: Any, name: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(name, f"expected seconds, got {value!r}") from None
    if seconds < 1:
        raise ConfigError(name, f"must be at least 1 second, got {seconds:g}")
    return seconds


def optional_url(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(name, f"expected a string (a URL), got {type(value).__name__}")
    return value


def from_environment(variable: str) -> Any:
    value = os.environ[variable]
    if ENV_OVERRIDES[variable] != "nbcache_blobs_options":
        return value
    try:
        return json.loads(value)
    except ValueError:  # the value holds credentials: never shown
        raise ConfigError(
            ENV_OVERRIDES[variable],
            f"the environment variable {variable} is not a JSON object; give one, for "
            'example {"endpoint_url": "https://...", "key": "...", "secret": "..."}',
        ) from None


def mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(name, f"expected a dict, got {type(value).__name__}")
    return {str(k): v for k, v in value.items()}


def declared(value: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    name = "nbcache_dependencies"
    if not isinstance(value, Mapping):
        raise ConfigError(name, 'expected a dict {"page glob": ["file glob", ...]}')
    pairs = []
    for page, files in value.items():
        files = [files] if isinstance(files, str) else files
        if not isinstance(files, list | tuple) or not all(isinstance(f, str) for f in files):
            raise ConfigError(name, f"{page!r}: expected a list of file globs")
        pairs.append((str(page), tuple(files)))
    return tuple(pairs)


def rules(value: Any) -> tuple[tuple[str, str], ...]:
    name, rules = "nbcache_freeze_normalise", []
    for rule in [value] if isinstance(value, str) else value:
        pair = [rule, "<normalised>"] if isinstance(rule, str) else rule
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            raise ConfigError(name, f"{rule!r}: expected a regex or a [regex, replacement] pair")
        try:
            re.compile(pair[0])
        except (re.error, TypeError) as exc:
            raise ConfigError(name, f"bad regex {pair[0]!r}: {exc}") from None
        rules.append((str(pair[0]), str(pair[1])))
    return tuple(rules)


def names(value: Any, name: str, what: str = "environment variable names") -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(name, f"expected a list of {what}")
    return tuple(value)


def timeout(value: Any, name: str) -> float | None:
    """myst-nb semantics: a number of seconds per cell; -1, 0 or None mean no limit."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(name, f"expected seconds, got {value!r}") from None
    return None if seconds <= 0 else seconds


def aliases(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise ConfigError("nb_kernel_rgx_aliases", "expected a dict of regex -> kernel name")
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError("nb_kernel_rgx_aliases", f"bad regex {pattern!r}: {exc}") from None
    return tuple((str(k), str(v)) for k, v in value.items())
