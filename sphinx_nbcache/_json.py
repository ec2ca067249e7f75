"""One spelling of a JSON value, for hashing and comparing: sorted keys, no spaces, UTF-8."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["canonical_json"]


def canonical_json(value: Any) -> str:
    """``value`` as JSON with sorted keys and no spaces (the same value, the same text)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
