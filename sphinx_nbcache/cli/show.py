"""How the ``nbcache`` command shows things: rich tables for people, JSON for scripts.

Everything shown comes from a cache, an archive or a notebook someone else may have written,
so it is printed as text, never as Rich markup (the consoles have markup off; styles come from
:func:`line`), with control characters made visible (:func:`visible`): a page named
``[/red]`` or a traceback holding ESC sequences prints as those characters."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..dependencies import Dependencies
from ..notebooks.scraps import Scrap
from ..plan.verdicts import PageState
from ..records import Record

__all__ = [
    "ID_LENGTH",
    "console",
    "dependency_lines",
    "format_memory",
    "format_seconds",
    "format_size",
    "format_time",
    "line",
    "page_json",
    "parse_size",
    "print_json",
    "record_json",
    "record_panel",
    "records_table",
    "short_id",
    "states_table",
    "visible",
]

ID_LENGTH = 10  # characters of a key shown as a record id (any unique prefix is accepted)
STYLES = {
    "cached": "green",
    "ok": "green",
    "failed": "red",
    "error": "red",
    "unreadable": "red",
    "stale": "yellow",
    "excluded": "dim",
    "off": "dim",
    "as-is": "dim",
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*", re.IGNORECASE)


#: characters shown escaped: C0 and C1 controls, DEL, and the bidirectional overrides that
#: reorder what a terminal shows ("Trojan source")
_HIDDEN = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in [*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
}
_LINES = {k: v for k, v in _HIDDEN.items() if chr(k) not in "\n\t"}


def visible(value: object, lines: bool = False) -> str:
    """``value`` as text a terminal shows as it is: control characters escaped (``\\x1b``);
    with ``lines``, newlines and tabs are kept."""
    return str(value).translate(_LINES if lines else _HIDDEN)


def line(*parts: str | tuple[str, str]) -> Text:
    """One line of text: plain parts, and (text, style) parts; all of it made visible."""
    return Text.assemble(
        *(visible(p) if isinstance(p, str) else (visible(p[0]), p[1]) for p in parts)
    )


def console(stderr: bool = False) -> Console:
    """A console on the current stdout/stderr (wide when not a terminal, so nothing wraps);
    strings printed on it are never read as markup."""
    stream = sys.stderr if stderr else sys.stdout
    wide = None if stream.isatty() else 200
    return Console(file=stream, width=wide, highlight=False, soft_wrap=False, markup=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def short_id(key: str) -> str:
    """How a record is named everywhere: the start of its result id (``Record.id``; for a
    result that recorded no dependencies, the same as its key)."""
    return key[:ID_LENGTH]


def format_time(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def format_seconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


def format_memory(size: int | None) -> str:
    """A peak memory figure (``-``: not known)."""
    return "-" if size is None else format_size(size)


def format_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def parse_size(text: str) -> int:
    """``500``, ``20K``, ``1.5MB``, ``2GiB`` -> bytes (powers of 1024)."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (examples: 500K, 20MB, 1G)")
    power = " kmgt".index(match.group(2).lower() or " ")
    return int(float(match.group(1)) * 1024**power)


def record_json(record: Record, size: int | None = None) -> dict[str, Any]:
    data = record.to_json()
    data["id"] = short_id(record.id)
    if size is not None:
        data["size"] = size
    return data


def page_json(state: PageState) -> dict[str, Any]:
    return {
        "page": state.page.name,
        "path": str(state.page.path),
        "status": state.verdict,
        "reason": state.reason,
        "key": state.key,
        "record": state.record.to_json() if state.record is not None else None,
    }


def dependency_lines(deps: Dependencies) -> list[str]:
    """What a result depended on, one entry a line: ``helpers.py (imported in code cell 2)``,
    then its packages and its kernel (``why`` names every file, not a count)."""
    cells, imports = dict(deps.cells), set(deps.imports)
    lines = []
    for entry, _digest in deps.entries():
        if entry.kind.name == "file":
            cell = cells.get(entry.target)
            verb = "imported" if entry.target in imports else "read"
            where = f" ({verb} in code cell {cell})" if cell is not None else ""
            lines.append(visible(f"{entry.target}{where}"))
        else:
            lines.append(visible(f"{entry.target} ({entry.kind.counted_as})"))
    if deps.packages:
        shown = ", ".join(f"{name} {version}" for name, version in deps.packages[:8])
        more = len(deps.packages) - 8
        lines.append(visible(f"packages: {shown}" + (f" and {more} more" if more > 0 else "")))
    for name, value in deps.environment:
        lines.append(visible(f"{name}: {value}"))
    return lines


def _status(status: str) -> Text:
    return Text(visible(status), style=STYLES.get(status, ""))


def states_table(states: Iterable[PageState]) -> Table:
    table = Table(title=None, show_edge=False, pad_edge=False)
    columns = ("Page", "Status", "ID", "Run time", "CPU", "Memory", "Last executed", "Detail")
    for column in columns:
        table.add_column(column, no_wrap=column != "Detail")
    for state in states:
        record = state.record
        table.add_row(
            visible(state.page.name),
            _status(state.verdict),
            short_id(record.id) if record is not None and record.key else "-",
            format_seconds(record.runtime) if record else "-",
            format_seconds(record.cpu_time) if record else "-",
            format_memory(record.peak_memory) if record else "-",
            format_time(record.created) if record else "-",
            visible(state.reason),
        )
    return table


def records_table(records: Iterable[tuple[Record, int]]) -> Table:
    """Every record; a Parameters column when some are variants or calls."""
    records = list(records)
    variants = any(record.parameters is not None for record, _size in records)
    table = Table(show_edge=False, pad_edge=False)
    columns = ["ID", "Page", "Status", "Created", "Last used", "Run time", "CPU", "Memory"]
    columns += ["Kernel", "Size"]
    for column in columns + (["Parameters"] if variants else []):
        table.add_column(column, no_wrap=column != "Parameters", overflow="fold")
    for record, size in records:
        row: list[Any] = [
            visible(short_id(record.id)),
            visible(record.page or "-"),
            _status(record.status),
            format_time(record.created),
            format_time(record.last_used),
            format_seconds(record.runtime),
            format_seconds(record.cpu_time),
            format_memory(record.peak_memory),
            visible(record.kernel or "-"),
            format_size(size),
        ]
        if variants:
            row.append(_parameters(record.parameters))
        table.add_row(*row)
    return table


def _parameters(parameters: Any) -> str:
    if parameters is None:
        return "-"
    text = visible(json.dumps(parameters, ensure_ascii=False, sort_keys=True))
    return text if len(text) <= 60 else text[:57] + "..."


def scraps_table(page: str, scraps: Iterable[Scrap]) -> Table:
    table = Table(title=Text(f"scraps of {visible(page)}"), title_justify="left")
    for column in ("name", "encoder", "preview"):
        table.add_column(column, overflow="fold")
    for scrap in scraps:
        table.add_row(visible(scrap.name), visible(scrap.encoder), visible(scrap.preview()))
    return table


def record_panel(record: Record, size: int, traceback: bool) -> list[Any]:
    """What ``nbcache show`` prints: fields, per-cell run times, the failure."""
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold")
    fields.add_column()
    timeout = "none" if record.timeout is None else f"{record.timeout:g} s per cell"
    for name, value in (
        ("id", visible(short_id(record.id))),
        ("key", visible(record.key)),
        ("page", visible(record.page or "-")),
        ("status", _status(record.status)),
        ("kernel", visible(record.kernel or "-")),
        ("created", format_time(record.created)),
        ("last used", format_time(record.last_used)),
        ("run time", format_seconds(record.runtime)),
        ("CPU time", format_seconds(record.cpu_time)),
        ("peak memory", format_memory(record.peak_memory)),
        ("timeout", timeout),
        ("outputs", format_size(size)),
    ):
        fields.add_row(name, value)
    parts: list[Any] = [fields]
    if record.cell_times:
        parts.append(Text("run time per code cell:"))
        cells = Table(show_edge=False, pad_edge=False)
        cells.add_column("code cell", justify="right")
        cells.add_column("seconds", justify="right")
        for number, seconds in enumerate(record.cell_times, 1):
            cells.add_row(str(number), "not run" if seconds is None else f"{seconds:.3f}")
        parts.append(cells)
    failure = record.failure
    if failure is not None:
        parts.append(Text(visible(f"{record.explain()} ({failure.kind})"), style="red"))
        if traceback and failure.traceback:
            parts.append(Text(visible(failure.traceback, lines=True)))
        elif failure.traceback:
            parts.append(Text("(--traceback shows the kernel traceback)", style="dim"))
    return parts
