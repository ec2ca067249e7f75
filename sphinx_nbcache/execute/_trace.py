"""What a notebook read, imported and wrote while it ran (Python kernels).

Before the first cell, :data:`TRACER` is executed silently in the kernel (no output, no
execution count, nothing left in the user's namespace): it installs an audit hook
(``sys.addaudithook``) that notes every file opened for reading or writing and every module
imported, with the cell (execution count) that did it first. After the last cell (also after
a failure), :func:`collect` asks for the notes through a silent ``user_expressions`` request,
and :func:`dependencies` turns them into :class:`~sphinx_nbcache.records.Dependencies`,
hashing each file on the machine that ran the notebook:

* files read from inside the project, and the source files of modules imported from it (a
  file the notebook wrote before reading or importing it, ``%%file mathfoo.py`` then
  ``import mathfoo``, is an output, not an input: an artifact, never a reason to run again);
* files and modules it looked for and did not find (``FileNotFoundError``,
  ``ModuleNotFoundError``), recorded as absent: creating them changes the result;
* the distributions it imported, with their versions, and the Python version.

Files written inside the project are the run's artifacts (:func:`artifacts`). What the hook
cannot see (a subprocess, another kernel, a C library opening files itself, the network) is
not recorded: declare it with ``nbcache_dependencies`` or the notebook's ``nbcache.depends``.
"""

from __future__ import annotations

import ast
import fnmatch
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..dependencies import CODE, GLOB, PAGES, UNTRACED, VARIANTS, Dependencies, name_of
from ..notebooks.hashing import code_cells
from ..plan.environment import kernel_fingerprint
from .inkernel import MODULE, TRACER

if TYPE_CHECKING:
    import nbformat

    from ._job import Job

__all__ = [
    "artifacts",
    "code_cell_numbers",
    "collect",
    "collect_expression",
    "dependencies",
    "install",
    "raised",
    "recorded",
    "sha256_file",
]


def collect_expression() -> dict[str, str]:
    """The ``user_expressions`` that return the notes (as JSON text)."""
    return {"nbcache": f"__import__('sys').modules[{MODULE!r}].report()"}


def parse_report(reply: Mapping[str, Any]) -> dict[str, Any] | None:
    """The notes from an ``execute_reply`` to :func:`collect_expression` (None if absent)."""
    found = (reply.get("content") or {}).get("user_expressions", {}).get("nbcache") or {}
    if found.get("status") != "ok":
        return None
    text = (found.get("data") or {}).get("text/plain")
    try:
        report = json.loads(ast.literal_eval(text)) if isinstance(text, str) else None
    except (ValueError, SyntaxError):
        return None
    return report if isinstance(report, dict) else None


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _ignored(relative: str, ignore: Iterable[str]) -> bool:
    return any(
        fnmatch.fnmatchcase(part, pattern) for part in relative.split("/") for pattern in ignore
    )


def _relative(path: str, cwd: str) -> str:
    return Path(os.path.relpath(path, cwd)).as_posix()


def _written_before(opened: list[Any] | None, imported: int) -> bool:
    """True if the notebook's first use of a module's source was to write it, in a cell
    before the one that imported it or in that cell (writing, then importing): the module is
    the run's output. Imported first (from bytecode: the source never read), then written:
    the first import used the file as it was, an input."""
    if not opened:
        return False
    mode, cell = opened[0], opened[1]
    return mode == "w" and isinstance(cell, int) and 0 < cell <= imported


def dependencies(
    report: Mapping[str, Any],
    ignore: Iterable[str],
    environment: Mapping[str, str],
    cell_numbers: Mapping[int, int],
) -> Dependencies:
    """The run's dependencies from the kernel's notes: paths relative to the page's folder
    (the kernel's working directory), each file hashed now; ``cell_numbers`` maps execution
    counts to code cell numbers."""
    root, cwd = str(report["root"]), str(report["cwd"])
    ignore = tuple(ignore)
    files: dict[str, str] = {}
    cells: dict[str, int] = {}
    imports: set[str] = set()

    def note(path: str, count: int, imported: bool) -> None:
        if not _inside(path, root):
            return
        relative = _relative(path, cwd)
        if _ignored(relative, ignore) or relative in files:
            return
        files[relative] = sha256_file(path) if os.path.isfile(path) else ""
        if count in cell_numbers:
            cells[relative] = cell_numbers[count]
        if imported:
            imports.add(relative)

    searched = [p for p in report.get("path", ()) if _inside(p, root)]
    opened: dict[str, list[Any]] = report.get("files", {})
    for name, (origin, count) in sorted(report.get("modules", {}).items()):
        if origin and origin.endswith((".pyc", ".pyo")):
            origin = origin.rsplit(".", 1)[0] + ".py"
        if origin and _written_before(opened.get(origin), count):
            continue  # ``%%file mathfoo.py`` then ``import mathfoo``: an output (artifact)
        if origin:
            note(origin, count, True)
        elif count:  # looked for and not found: record where it would have been
            first = name.split(".")[0]
            for folder in searched:
                for candidate in (f"{first}.py", f"{first}/__init__.py"):
                    note(os.path.join(folder, candidate), count, True)
    for path, (mode, count) in sorted(report.get("files", {}).items()):
        if mode == "r" and not path.endswith((".pyc", ".pyo")) and not os.path.isdir(path):
            note(path, count, False)
    read = (
        (CODE, report.get("code")),  # results read, calls: the notebook's key
        (VARIANTS, report.get("variants")),  # variants read: the directives' digest
        (PAGES, report.get("listings")),  # read_notebooks(folder): the names of its pages
    )
    for kind, found in read:
        for target, digest in sorted((found or {}).items()):
            if _inside(target, root):
                files[name_of(kind, _relative(target, cwd))] = str(digest)
    for pattern, digest in sorted(report.get("read_globs", {}).items()):  # results read
        files.setdefault(name_of(GLOB, pattern), str(digest))
    packages = {**(report.get("read_packages") or {}), **(report.get("packages") or {})}
    python = str(report.get("python", ""))
    if environment.get("scope") == "off":
        packages, python = {}, ""
    elif environment.get("scope") == "kernel":
        packages = {}
    environment = {k: v for k, v in environment.items() if k != "scope"}
    return Dependencies(
        files=tuple(sorted(files.items())),
        packages=tuple(sorted((str(k), str(v)) for k, v in packages.items())),
        environment=tuple(
            sorted({**environment, **({"python": python} if python else {})}.items())
        ),
        cells=tuple(sorted(cells.items())),
        imports=tuple(sorted(imports)),
    )


def artifacts(
    report: Mapping[str, Any], ignore: Iterable[str], limit: int
) -> tuple[dict[str, tuple[bytes, float]], list[str]]:
    """Files the notebook wrote inside the project, relative to its folder: (content, mtime),
    at most ``limit`` bytes in all; and the paths left out for the limit."""
    root, cwd = str(report["root"]), str(report["cwd"])
    ignore = tuple(ignore)
    kept: dict[str, tuple[bytes, float]] = {}
    left_out: list[str] = []
    total = 0
    for path, (mode, _count) in sorted(report.get("files", {}).items()):
        if mode != "w" or not _inside(path, root) or not os.path.isfile(path):
            continue
        relative = _relative(path, cwd)
        if _ignored(relative, ignore):
            continue
        size = os.path.getsize(path)
        if total + size > limit:
            left_out.append(relative)
            continue
        with open(path, "rb") as handle:
            kept[relative] = (handle.read(), os.path.getmtime(path))
        total += size
    return kept, left_out


async def install(
    client: Any, root: str, scope: str, store: tuple[tuple[str, str], ...] = ()
) -> str | None:
    """Run :data:`TRACER` silently in the client's kernel; None if it is in place, else why
    not (the run then records only the kernel it ran on, and why: ``Dependencies.untraced``).

    It goes as a user expression, ``exec`` of one string literal in a namespace of its own:
    run as a cell, IPython would tokenize its lines and ipykernel hash them in pure Python, in
    every kernel."""
    kc = client.kc
    code = (
        TRACER.replace("__ROOT__", repr(root))
        .replace("__SCOPE__", repr(scope))
        .replace("__STORE__", repr(dict(store)))
    )
    expression = {"nbcache": f"exec({code!r}, {{'get_ipython': get_ipython}})"}
    msg_id = kc.execute("", silent=True, store_history=False, user_expressions=expression)
    if hasattr(msg_id, "__await__"):
        msg_id = await msg_id
    reply = await client.async_wait_for_reply(msg_id)
    if not reply or reply["content"].get("status") != "ok":
        return "the kernel did not answer the tracer's request"
    found = reply["content"].get("user_expressions", {}).get("nbcache", {})
    if isinstance(found, dict) and found.get("status") == "ok":
        return None
    if isinstance(found, dict) and found.get("ename"):
        return f"{found['ename']}: {found.get('evalue', '')}".strip()
    return "the kernel does not evaluate user expressions"


async def collect(client: Any) -> dict[str, Any] | None:
    """The tracer's notes (None if the kernel cannot say)."""
    kc = client.kc
    msg_id = kc.execute("", silent=True, store_history=False, user_expressions=collect_expression())
    if hasattr(msg_id, "__await__"):
        msg_id = await msg_id
    reply = await client.async_wait_for_reply(msg_id)
    return parse_report(reply) if reply else None


def code_cell_numbers(cells: Iterable[Mapping[str, Any]]) -> dict[int, int]:
    """The tracer's cell counter (the k-th cell that ran) -> code cell number (from 1):
    cells that did not run (``skip-execution``) have no execution count."""
    ran = [n for n, cell in enumerate(cells, 1) if isinstance(cell.get("execution_count"), int)]
    return dict(enumerate(ran, 1))


def recorded(
    job: Job, report: dict[str, Any] | None, cells: Any, untraced: str | None = None
) -> tuple[Dependencies | None, dict[str, tuple[bytes, float]]]:
    """What the run depended on, and the files it wrote (both from the tracer's notes);
    ``untraced``: why a Python kernel ran without the tracer (kept as ``Dependencies.untraced``)."""
    environment: dict[str, str] = {"scope": job.environment}
    if job.environment != "off":
        environment["kernel"] = kernel_fingerprint(job.kernel)
    if report is None:
        known = [("kernel", environment["kernel"])] if job.environment != "off" else []
        if untraced:
            known.append((UNTRACED, untraced))  # sorted after "kernel"
        return (Dependencies(environment=tuple(known)) if known else None), {}
    from ._job import DEFAULT_IGNORE

    ignore = job.files.ignore if job.files is not None else DEFAULT_IGNORE
    numbers = code_cell_numbers(cells)
    try:
        found = dependencies(report, ignore, environment, numbers)
        written, _left_out = artifacts(report, ignore, job.artifact_limit)
    except (OSError, KeyError, TypeError, ValueError):
        return None, {}
    return found, written


def raised(notebook: nbformat.NotebookNode) -> bool:
    """True if a code cell not tagged ``raises-exception`` has an error output (the run
    would have stopped there without allow_errors)."""
    for cell in code_cells(notebook):
        if "raises-exception" in (cell.get("metadata", {}).get("tags") or ()):
            continue
        if any(o.get("output_type") == "error" for o in cell.get("outputs", ())):
            return True
    return False
