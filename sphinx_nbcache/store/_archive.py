"""Move a cache between machines and CI runs: ``export`` to a ``.tar.gz``, ``import`` it back.

An archive holds ``nbcache-archive.json`` (format, version, every record) and one
``blobs/<id>.json`` per outputs blob, byte for byte. Importing never extracts to disk: each
member is read into memory, so a member name cannot point outside the cache; only regular files
with exactly those names are accepted. Keys must match :data:`.KEY_PATTERN`,
blobs must hash to their id and parse as outputs. Importing merges: a key the cache already
holds is replaced only by a *newer* result with different outputs; everything else is kept.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .._atomic import write_atomically
from ..errors import ArchiveError, CorruptCacheError
from ..notebooks.hashing import KEY_PATTERN
from ..records import Outputs, Record
from ._blobs import blob_id, outputs_bytes
from ._store import Store

__all__ = ["ARCHIVE_FORMAT", "ImportReport", "export_archive", "import_archive", "merge_record"]

ARCHIVE_FORMAT = "sphinx-nbcache-archive"
ARCHIVE_VERSION = 1
MANIFEST = "nbcache-archive.json"
_BLOB_MEMBER = re.compile(r"blobs/([0-9a-f]{64})\.json")


@dataclass
class ImportReport:
    """What an import did, record by record."""

    added: list[str] = field(default_factory=list)  # keys new to the cache
    replaced: list[str] = field(default_factory=list)  # keys whose older result was replaced
    kept: list[str] = field(default_factory=list)  # keys the cache already had (same or newer)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (what, why)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "replaced": self.replaced,
            "kept": self.kept,
            "rejected": [{"item": item, "reason": why} for item, why in self.rejected],
        }


def export_archive(store: Store, target: str | Path) -> int:
    """Write every usable record of ``store`` (not transient errors) to ``target``.

    Returns the number of records written. The file appears whole or not at all.
    """
    target = Path(target)
    records: list[dict[str, Any]] = []
    blobs: dict[str, bytes] = {}
    for record in store.records():
        if record.status == "error":
            continue  # kept for one build's report only
        wanted = [record.blob] if record.blob is not None else []
        wanted += [artifact.blob for artifact in record.artifacts]
        try:
            for stored in wanted:
                if stored not in blobs:
                    blobs[stored] = store.blobs.get(stored)
        except CorruptCacheError:
            continue  # a damaged entry is not worth moving
        records.append(record.to_json())
    manifest = {
        "format": ARCHIVE_FORMAT,
        "version": ARCHIVE_VERSION,
        "created": time.time(),
        "records": records,
    }

    def write(raw: IO[bytes]) -> None:
        with tarfile.open(fileobj=raw, mode="w:gz") as tar:
            _add(tar, MANIFEST, json.dumps(manifest, ensure_ascii=False).encode("utf-8"))
            for blob_id, data in sorted(blobs.items()):
                _add(tar, f"blobs/{blob_id}.json", data)

    target = target.resolve()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, write)
    except OSError as exc:
        raise ArchiveError(str(target), f"cannot write here: {exc}") from None
    return len(records)


def import_archive(store: Store, source: str | Path) -> ImportReport:
    """Merge the archive at ``source`` into ``store`` (see the module docstring)."""
    manifest, blobs, report = _read(Path(source))
    for data in manifest["records"]:
        try:
            record = Record.from_json(data)
        except (ValueError, TypeError, KeyError) as exc:
            report.rejected.append((str(data)[:80], f"not a valid record: {exc}"))
            continue
        if not KEY_PATTERN.fullmatch(record.key):
            report.rejected.append((record.key[:80], "invalid key"))
            continue
        missing = [a.blob for a in record.artifacts if a.blob not in blobs]
        if missing:
            report.rejected.append((record.key, f"artifact blob {missing[0][:12]} missing"))
            continue
        for artifact in record.artifacts:
            store.blobs.put(blobs[artifact.blob])
        outputs = None
        if record.blob is not None:
            blob = blobs.get(record.blob)
            if blob is None:
                report.rejected.append((record.key, f"blob {record.blob[:12]} missing or damaged"))
                continue
            try:
                outputs = Outputs.from_json(json.loads(blob))
            except (ValueError, KeyError, TypeError) as exc:
                report.rejected.append((record.key, f"blob is not valid outputs: {exc}"))
                continue
        merge_record(store, record, outputs, report)
    return report


def merge_record(
    store: Store, record: Record, outputs: Outputs | None, report: ImportReport
) -> None:
    """Store ``record`` unless the cache holds the same result or a newer one for its id."""
    existing = store.by_id(record.id)
    if existing is None:
        store.put(record, outputs)
        report.added.append(record.key)
        return
    same = existing.blob == _blob_of(outputs) and existing.status == record.status
    if same or record.created <= existing.created:
        report.kept.append(record.key)
        return
    store.put(record, outputs)
    report.replaced.append(record.key)


def _blob_of(outputs: Outputs | None) -> str | None:
    """The blob id ``Store.put`` gives these outputs."""
    return None if outputs is None else blob_id(outputs_bytes(outputs))


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _read(source: Path) -> tuple[dict[str, Any], dict[str, bytes], ImportReport]:
    """The manifest and the verified blobs of an archive; nothing is written to disk."""
    report = ImportReport()
    manifest: Any = None
    blobs: dict[str, bytes] = {}
    try:
        with tarfile.open(source, mode="r:*") as tar:
            for member in tar:
                match = _BLOB_MEMBER.fullmatch(member.name)
                if not member.isfile() or (member.name != MANIFEST and match is None):
                    report.rejected.append((member.name[:120], "unexpected archive member"))
                    continue
                handle = tar.extractfile(member)
                data = handle.read() if handle is not None else b""
                if match is None:
                    manifest = json.loads(data)
                elif hashlib.sha256(data).hexdigest() != match.group(1):
                    report.rejected.append((member.name, "content does not match its hash"))
                else:
                    blobs[match.group(1)] = data
    except FileNotFoundError:
        raise ArchiveError(
            str(source), "no such file; give the path of an `nbcache export`"
        ) from None
    except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
        raise ArchiveError(str(source), f"not a readable .tar.gz archive ({exc})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArchiveError(str(source), f"its {MANIFEST} is not valid JSON ({exc})") from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != ARCHIVE_FORMAT
        or not isinstance(manifest.get("records"), list)
    ):
        raise ArchiveError(
            str(source), f"not an `nbcache export` archive (no valid {MANIFEST}); nothing imported"
        )
    if manifest.get("version") != ARCHIVE_VERSION:
        raise ArchiveError(
            str(source),
            f"archive version {manifest.get('version')!r} is not {ARCHIVE_VERSION}: "
            "export it again with this version of sphinx-nbcache",
        )
    return manifest, blobs, report
