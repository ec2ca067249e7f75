"""Signed results: a store whose readers use only results made by whoever holds the key.

With ``NBCACHE_SIGNING_KEY`` in its environment, a build signs every result it stores: an
HMAC-SHA256, under that key, of what a reader is shown and trusts (the result's id, which
covers its key and its recorded dependencies; its status and failure; the blob of its
outputs, which is content-addressed; the files it put back; its page, kernel and parameters).
A build configured with ``nbcache_require_signatures = True`` uses only results whose
signature verifies under its key, and treats every other as absent (it runs the page itself),
saying once how many it refused. So a CI job holding the key writes results that other CI
runs use; someone who can write the shared database and bucket but has not the key (a
contributor's job, a fork) cannot plant results those runs will show. The key is symmetric:
whoever verifies could sign, so it stays with the builds that write the trusted results.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from .._json import canonical_json

if TYPE_CHECKING:
    from ..records import Record

__all__ = ["SIGNATURE_VERSION", "Signer"]

SIGNATURE_VERSION = "v1"


class Signer:
    """Signs results with a key, and checks them (``required``: only those are used)."""

    __slots__ = ("_key", "required")

    def __init__(self, key: str, required: bool = False) -> None:
        self._key = key.encode("utf-8")
        self.required = required

    def __repr__(self) -> str:
        return f"Signer(required={self.required})"  # never the key

    def sign(self, record: Record) -> str:
        digest = hmac.new(self._key, _message(record), hashlib.sha256).hexdigest()
        return f"{SIGNATURE_VERSION}:{digest}"

    def verifies(self, record: Record) -> bool:
        return record.signature is not None and hmac.compare_digest(
            record.signature, self.sign(record)
        )


def _message(record: Record) -> bytes:
    """What a signature covers: everything a reader is shown and trusts of a result."""
    return canonical_json(
        {
            "id": record.id,
            "key": record.key,
            "status": record.status,
            "blob": record.blob,
            "failure": record.failure.to_json() if record.failure else None,
            "artifacts": [a.to_json() for a in record.artifacts],
            "page": record.page,
            "kernel": record.kernel,
            "parameters": None if record.parameters is None else dict(record.parameters),
            "allow_errors": record.allow_errors,
            "raised": record.raised,
        }
    ).encode("utf-8")
