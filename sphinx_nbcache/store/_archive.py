"""Move a cache between machines and CI runs: ``export`` to a ``.tar.gz``, ``import`` it back.

An archive holds ``nbcache-archive.json`` (format, version, every record) and one
``blobs/<id>.json`` per outputs blob, byte for byte. Importing never extracts to disk: only
regular files with exactly those names are accepted, so a member name cannot point outside the
cache. Keys must match :data:`.KEY_PATTERN`, blobs must hash to their id
and parse as outputs. Importing merges: a key the cache already holds is replaced only by a
*newer* result with different outputs; everything else is kept.

An archive may come from anyone, so reading it is bounded (:class:`Limits`): the size of each
member (as its header says, before a byte of it is decompressed), of all members together, and
their number; past a bound the import stops with an :class:`ArchiveError` naming the member and
the limit, having stored nothing. Members are streamed: a first pass reads the manifest and
hashes every blob in chunks; a second puts the blobs the valid records need, one at a time.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import tarfile
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

from .._atomic import write_atomically
from ..errors import ArchiveError, CorruptCacheError
from ..notebooks.hashing import KEY_PATTERN
from ..records import Outputs, Record
from ._blobs import blob_id, outputs_bytes
from ._store import Store

__all__ = [
    "ARCHIVE_FORMAT",
    "ImportReport",
    "Limits",
    "export_archive",
    "import_archive",
    "merge_record",
]

ARCHIVE_FORMAT = "sphinx-nbcache-archive"
ARCHIVE_VERSION = 1
MANIFEST = "nbcache-archive.json"
_BLOB_MEMBER = re.compile(r"blobs/([0-9a-f]{64})\.json")
_CHUNK = 2**20  # bytes read from a member at a time


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


class Limits(NamedTuple):
    """Bounds of an archive import, in bytes (an `nbcache export` comes nowhere near them)."""

    member: int = 256 * 2**20  # one blob
    manifest: int = 64 * 2**20  # nbcache-archive.json (a few KB per record)
    total: int = 4 * 2**30  # every member together, decompressed
    members: int = 200_000  # how many members


def import_archive(
    store: Store,
    source: str | Path,
    *,
    max_member: int | None = None,
    max_total: int | None = None,
    max_members: int | None = None,
) -> ImportReport:
    """Merge the archive at ``source`` into ``store`` (see the module docstring); the
    ``max_*`` arguments replace the default :class:`Limits`."""
    default = Limits()
    limits = Limits(
        member=default.member if max_member is None else max_member,
        manifest=default.manifest if max_member is None else min(default.manifest, max_member),
        total=default.total if max_total is None else max_total,
        members=default.members if max_members is None else max_members,
    )
    source = Path(source)
    manifest, verified, report = _scan(source, limits)
    records: list[Record] = []
    for data in manifest["records"]:
        try:
            record = Record.from_json(data)
        except (ValueError, TypeError, KeyError) as exc:
            report.rejected.append((str(data)[:80], f"not a valid record: {exc}"))
            continue
        if not KEY_PATTERN.fullmatch(record.key):
            report.rejected.append((record.key[:80], "invalid key"))
            continue
        missing = [a.blob for a in record.artifacts if a.blob not in verified]
        if missing:
            report.rejected.append((record.key, f"artifact blob {str(missing[0])[:12]} missing"))
            continue
        if record.blob is not None and record.blob not in verified:
            report.rejected.append((record.key, f"blob {record.blob[:12]} missing or damaged"))
            continue
        records.append(record)
    outputs_of = {r.blob for r in records if r.blob is not None}
    wanted = outputs_of | {a.blob for r in records for a in r.artifacts}
    invalid = _copy_blobs(store, source, wanted, outputs_of, limits)
    for record in records:
        outputs = None
        if record.blob is not None:
            if record.blob in invalid:
                report.rejected.append((record.key, invalid[record.blob]))
                continue
            outputs = Outputs.from_json(json.loads(store.blobs.get(record.blob)))
        merge_record(store, record, outputs, report)
    return report


def merge_record(
    store: Store, record: Record, outputs: Outputs | None, report: ImportReport
) -> None:
    """Store ``record`` unless the cache holds the same result or a newer one for its id."""
    problem = record.problem()
    if problem is not None:
        report.rejected.append((record.key, problem))
        return
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


def _members(source: Path, limits: Limits) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """The members of the archive, each checked against the limits before it is read (the
    caller reads inside :func:`_readable`)."""
    total = 0
    with tarfile.open(source, mode="r:*") as tar:
        for count, member in enumerate(tar, 1):
            name = _shown(member.name)
            if count > limits.members:
                raise _refused(source, f"it has more than {limits.members} members")
            limit = limits.manifest if member.name == MANIFEST else limits.member
            if member.size > limit:
                raise _refused(
                    source, f"member {name} is {member.size} bytes, over the limit of "
                    f"{_size(limit)} per member",
                )  # fmt: skip
            total += member.size
            if total > limits.total:
                raise _refused(
                    source, f"its members up to {name} hold more than the limit of "
                    f"{_size(limits.total)} in all",
                )  # fmt: skip
            yield tar, member
            read = getattr(tar, "members", None)  # tarfile keeps every header it read:
            if isinstance(read, list):  # none is needed again, and a bomb of headers
                read.clear()  # would fill memory with them


@contextlib.contextmanager
def _readable(source: Path) -> Iterator[None]:
    """What reading the archive can raise, as an :class:`ArchiveError`."""
    try:
        yield
    except FileNotFoundError:
        raise ArchiveError(
            str(source), "no such file; give the path of an `nbcache export`"
        ) from None
    except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
        raise ArchiveError(str(source), f"not a readable .tar.gz archive ({exc})") from None


def _shown(name: str) -> str:
    """A member name as it may be printed: quoted, cut, control characters escaped."""
    return repr(name[:120])


def _refused(source: Path, why: str) -> ArchiveError:
    return ArchiveError(
        str(source),
        f"{why}: not an `nbcache export` archive (or a tampered one); nothing imported",
    )


def _size(size: int) -> str:
    for unit, power in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 2**power:
            return f"{size / 2**power:g} {unit}"
    return f"{size} bytes"


def _chunks(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Iterator[bytes]:
    handle = tar.extractfile(member)
    if handle is None:
        return
    with handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _scan(source: Path, limits: Limits) -> tuple[dict[str, Any], set[str], ImportReport]:
    """The manifest, and the ids of the blobs whose content hashes to their id (streamed:
    one chunk in memory at a time). Nothing is written."""
    report = ImportReport()
    manifest: Any = None
    verified: set[str] = set()
    try:
        with _readable(source):
            for tar, member in _members(source, limits):
                match = _BLOB_MEMBER.fullmatch(member.name)
                if not member.isfile() or (member.name != MANIFEST and match is None):
                    report.rejected.append((member.name[:120], "unexpected archive member"))
                elif match is None:
                    manifest = json.loads(b"".join(_chunks(tar, member)))
                elif _sha256(_chunks(tar, member)) == match.group(1):
                    verified.add(match.group(1))
                else:
                    report.rejected.append((member.name, "content does not match its hash"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
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
    return manifest, verified, report


def _sha256(chunks: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def _copy_blobs(
    store: Store, source: Path, wanted: set[str], outputs: set[str], limits: Limits
) -> dict[str, str]:
    """Put the ``wanted`` blobs into the store, one at a time, checked again (the file may
    have changed since the first pass); an ``outputs`` blob only if it parses as outputs.
    Returns blob id -> why it was not put."""
    invalid: dict[str, str] = dict.fromkeys(wanted, "blob missing from the archive")
    if not wanted:
        return {}
    with _readable(source):
        for tar, member in _members(source, limits):
            match = _BLOB_MEMBER.fullmatch(member.name)
            if match is None or not member.isfile() or match.group(1) not in wanted:
                continue
            blob = match.group(1)
            data = b"".join(_chunks(tar, member))
            if hashlib.sha256(data).hexdigest() != blob:
                invalid[blob] = "blob changed while it was imported"
                continue
            if blob in outputs:
                try:
                    Outputs.from_json(json.loads(data))
                except (ValueError, KeyError, TypeError, RecursionError) as exc:
                    invalid[blob] = f"blob is not valid outputs: {exc}"
                    continue
            store.blobs.put(data)
            invalid.pop(blob, None)
    return invalid
