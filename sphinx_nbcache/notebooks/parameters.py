"""Parameters as people write them: a YAML (or JSON) mapping, or one literal value.

The one place they are parsed, for the ``nbcache-notebook`` directive's ``:parameters:``, the
CLI's ``-y`` and ``-p`` (as papermill reads them) and the REST endpoint's query values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ParameterError

__all__ = ["literal", "mapping"]


def mapping(
    text: str, where: str, what: str = "parameters", like: str = "{station: west}"
) -> dict[str, Any]:
    """A YAML (or JSON) mapping of parameters ({} for empty text); :class:`ParameterError`
    naming ``where`` and ``what`` otherwise, with an example of what to write (``like``)."""
    import yaml

    if not text.strip():
        return {}
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ParameterError(where, f"{what} is not YAML ({exc})") from None
    if not isinstance(value, Mapping):
        raise ParameterError(where, f"{what} must be a mapping: give a mapping, like {like}")
    return {str(k): v for k, v in value.items()}


def literal(raw: str) -> Any:
    """A YAML/JSON literal (``1``, ``true``, ``[1, 2]``), else the text itself."""
    import yaml

    if not raw.strip():
        return raw
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if isinstance(value, dict | list) and raw.strip()[0] not in "[{":
        return raw  # "a: b" or "- x" given as one value: the text was meant
    return value
