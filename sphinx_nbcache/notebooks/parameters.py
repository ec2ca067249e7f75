"""Parameters as people write them: a YAML (or JSON) mapping, or one literal value.

The one place they are parsed: the ``nbcache-notebook`` directive's ``:parameters:``, the CLI's
``-y`` and ``-p`` (as papermill reads them), and the REST endpoint's query values (JSON only).
YAML aliases (``*a``) are refused everywhere: a few characters of them expand to millions of
values. What Python itself refuses to read (an integer of thousands of digits, nesting deeper
than its stack) is a :class:`~sphinx_nbcache.errors.ParameterError`, never a crash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import ParameterError

__all__ = ["json_literal", "literal", "mapping"]


def mapping(
    text: str, where: str, what: str = "parameters", like: str = "{station: west}"
) -> dict[str, Any]:
    """A YAML (or JSON) mapping of parameters ({} for empty text); :class:`ParameterError`
    naming ``where`` and ``what`` otherwise, with an example of what to write (``like``)."""
    import yaml

    if not text.strip():
        return {}
    try:
        value = _load_yaml(text, where)
    except yaml.YAMLError as exc:
        raise ParameterError(where, f"{what} is not YAML ({exc})") from None
    if not isinstance(value, Mapping):
        raise ParameterError(where, f"{what} must be a mapping: give a mapping, like {like}")
    return {str(k): v for k, v in value.items()}


def literal(raw: str, where: str = "a value") -> Any:
    """A YAML/JSON literal (``1``, ``true``, ``[1, 2]``), else the text itself; a YAML alias
    is a :class:`ParameterError` naming ``where``."""
    import yaml

    if not raw.strip():
        return raw
    try:
        value = _load_yaml(raw, where)
    except yaml.YAMLError:
        return raw
    if isinstance(value, dict | list) and raw.strip()[0] not in "[{":
        return raw  # "a: b" or "- x" given as one value: the text was meant
    return value


def json_literal(raw: str, where: str) -> Any:
    """A JSON literal (``5``, ``true``, ``null``, ``"text"``, ``[1, 2]``, ``{"a": 1}``), else
    the text itself: how the REST endpoint reads query values. JSON has no aliases, so the
    value is never larger than its text."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw  # not JSON: the text was meant
    except (ValueError, RecursionError) as exc:
        raise ParameterError(where, f"cannot read the value: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _load_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load`` without aliases (an alias is a ParameterError naming ``where``)."""
    import yaml

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise ParameterError(
                    where, "YAML aliases (*name) are not accepted: write the value out"
                )
            return super().compose_node(parent, index)

    try:
        return yaml.load(text, Loader=NoAliases)
    except (ValueError, RecursionError) as exc:  # a 5000-digit integer, deep nesting
        raise ParameterError(where, f"cannot read the value: {_short(exc)}") from None
