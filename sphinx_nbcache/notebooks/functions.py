"""A notebook as a function: its signature, and the notebook that runs for one call.

Three cell tags, as papermill and notebook_restified use them:

``parameters``
    A code cell of default values (``x = 1``). The names it assigns are the parameters the
    notebook declares. Given values are written as literals into a new cell tagged
    ``injected-parameters`` right after it (so they override the defaults), and the cache key
    includes them.
``skip``
    Cells left out when the notebook is *called* (plots, prints, exploration). A page build
    or a page variant runs them; ``skip-execution`` keeps its own meaning everywhere.
``return``
    One code cell holding one expression: its value, JSON-encoded, is the call's result. A
    notebook without one returns ``None``.

:func:`prepare` makes the notebook that runs; :func:`returned` reads the value back from its
outputs. Both are pure functions of notebooks: running and caching is
:mod:`sphinx_nbcache.workflows.calls`' job.
"""

from __future__ import annotations

import ast
import copy
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nbformat

from ..errors import ParameterError, SignatureError

__all__ = [
    "INJECTED_TAG",
    "PARAMETERS_TAG",
    "RETURN_MIME",
    "RETURN_TAG",
    "SKIP_TAG",
    "Signature",
    "plain_value",
    "prepare",
    "returned",
    "signature",
]

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
SKIP_TAG = "skip"
RETURN_TAG = "return"
#: The output that carries a call's return value (``{"value": ...}``).
RETURN_MIME = "application/vnd.nbcache.return+json"

_MAGIC = re.compile(r"^\s*[%!]")


@dataclass(frozen=True)
class Signature:
    """What a notebook takes and gives when called."""

    parameters: dict[str, str]  # declared name -> the default's source text
    returns: bool  # has a ``return`` cell
    language: str  # the kernel's language ("python" when it says nothing)

    def check(self, given: Mapping[str, Any], path: str) -> dict[str, Any]:
        """``given`` as plain built-in values (:func:`plain_value`); :class:`ParameterError`
        for a name not declared, or a value that is no literal."""
        checked: dict[str, Any] = {}
        for raw_name, raw_value in dict(given).items():
            try:
                name = plain_value(raw_name)
            except ValueError as exc:
                raise ParameterError(path, f"a parameter name: {exc}") from None
            if not isinstance(name, str) or name not in self.parameters:
                declared = ", ".join(sorted(self.parameters)) or "none"
                hint = (
                    "tag the cell of default values `parameters`"
                    if not self.parameters
                    else f"declared: {declared}"
                )
                raise ParameterError(path, f"no parameter {name!r} ({hint})")
            try:
                checked[name] = plain_value(raw_value)
            except ValueError as exc:
                raise ParameterError(path, f"parameter {name!r}: {exc}") from None
        return checked


def _tags(cell: Mapping[str, Any]) -> list[str]:
    tags = cell.get("metadata", {}).get("tags") or []
    return [str(t) for t in tags] if isinstance(tags, list | tuple) else []


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _code_number(notebook: Mapping[str, Any], index: int) -> int:
    """Code cells counted from 1 up to cell ``index``."""
    cells = notebook.get("cells", [])
    return sum(1 for c in cells[: index + 1] if c.get("cell_type") == "code")


def _language(notebook: Mapping[str, Any]) -> str:
    metadata = notebook.get("metadata", {})
    spec = metadata.get("kernelspec") or {}
    info = metadata.get("language_info") or {}
    language = spec.get("language") or info.get("name") or "python"
    return str(language).lower()


def signature(notebook: Mapping[str, Any], path: str) -> Signature:
    """The parameters a notebook declares and whether it returns a value."""
    declared: dict[str, str] = {}
    returns = False
    cells = notebook.get("cells", [])
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        tags = _tags(cell)
        if PARAMETERS_TAG in tags:
            declared.update(_assigned(_source(cell), path, _code_number(notebook, index)))
        if RETURN_TAG in tags:
            if returns:
                raise SignatureError(
                    path,
                    "more than one cell is tagged `return`; keep the tag on one cell",
                    _code_number(notebook, index),
                )
            returns = True
    return Signature(declared, returns, _language(notebook))


def _assigned(source: str, path: str, cell: int) -> dict[str, str]:
    """Name -> default source of each assignment in a ``parameters`` cell."""
    lines = ["" if _MAGIC.match(line) else line for line in source.splitlines()]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError as exc:
        raise SignatureError(
            path, f"the `parameters` cell is not valid Python: {exc.msg}", cell, exc.lineno
        ) from None
    found: dict[str, str] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        value = getattr(node, "value", None)
        text = ast.get_source_segment("\n".join(lines), value) if value is not None else None
        for target in targets:
            names = target.elts if isinstance(target, ast.Tuple) else [target]
            for name in names:
                if isinstance(name, ast.Name):
                    found[name.id] = text or ""
    return found


#: integers longer than this many bits (about 4,200 digits) are refused: Python will not
#: write one of more than 4,300 digits as text (``sys.get_int_max_str_digits``)
MAX_INT_BITS = 14_000


def plain_value(value: Any, depth: int = 0) -> Any:
    """``value`` rebuilt from exact built-in types (None, bool, int, float, str, list, tuple,
    dict), or :class:`ValueError` saying why it cannot be a literal.

    A subclass of one of them (a ``str`` with its own ``__repr__``, an ``IntEnum``, numpy's
    ``float64``, an ``OrderedDict``) is converted through its base type's own methods, so no
    code of the subclass runs and its ``repr`` never reaches the injected cell. Types are
    looked up with ``type()``, which an object cannot fake (``isinstance`` consults
    ``__class__``)."""
    if depth > 50:
        raise ValueError("nested too deeply (more than 50 levels)")
    kind = type(value)
    if value is None or kind is bool:
        return value
    if issubclass(kind, str):
        return _plain_text(str.__str__(value))
    if issubclass(kind, int):
        number = int.__int__(value)
        if number.bit_length() > MAX_INT_BITS:
            raise ValueError(f"an integer of {number.bit_length()} bits is too long to write out")
        return number
    if issubclass(kind, float):
        real = float.__float__(value)
        if not math.isfinite(real):
            raise ValueError(f"{float.__repr__(real)} is not a finite number")
        return real
    if issubclass(kind, list):
        return [plain_value(item, depth + 1) for item in list.__iter__(value)]
    if issubclass(kind, tuple):  # a named tuple becomes a plain one
        return tuple(plain_value(item, depth + 1) for item in tuple.__iter__(value))
    if issubclass(kind, dict):
        plain: dict[str, Any] = {}
        for key, item in dict.items(value):
            if not issubclass(type(key), str):
                raise ValueError(f"dictionary keys must be strings, not {type(key).__name__}")
            plain[_plain_text(str.__str__(key))] = plain_value(item, depth + 1)
        return plain
    raise ValueError(f"a {kind.__name__} is not a JSON value (numbers, strings, lists, dicts)")


def _plain_text(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"the text {text[max(0, exc.start - 10) : exc.end + 10]!r} is not valid Unicode "
            "(a lone surrogate)"
        ) from None
    return text


def _injected(parameters: Mapping[str, Any], with_id: bool) -> nbformat.NotebookNode:
    # sorted: the same parameters given in another order are the same call (and key)
    lines = ["# Parameters"] + [f"{name} = {parameters[name]!r}" for name in sorted(parameters)]
    cell: nbformat.NotebookNode = nbformat.v4.new_code_cell("\n".join(lines) + "\n")
    if with_id:
        cell.id = INJECTED_TAG
    else:  # nbformat 4.4 and older have no cell ids
        cell.pop("id", None)
    cell.metadata["tags"] = [INJECTED_TAG]
    return cell


def prepare(
    notebook: nbformat.NotebookNode,
    parameters: Mapping[str, Any] | None,
    *,
    path: str,
    call: bool,
) -> nbformat.NotebookNode:
    """The notebook that runs for ``parameters`` (a copy; ``notebook`` is not changed).

    Parameters are injected after the ``parameters`` cell (an earlier injection, as papermill
    leaves it, is replaced). With ``call``, ``skip`` cells are left out and the ``return``
    cell publishes its value (:func:`returned` reads it)."""
    sign = signature(notebook, path)
    given = dict(parameters or {})
    if (given or (call and sign.returns)) and sign.language != "python":
        raise SignatureError(
            path,
            f"parameters and `return` cells need a Python kernel (this one runs "
            f"{sign.language}); call it without them",
        )
    given = sign.check(given, path)
    result: nbformat.NotebookNode = copy.deepcopy(notebook)
    kept = [
        (i, c)
        for i, c in enumerate(result.cells)
        if INJECTED_TAG not in _tags(c) and not (call and SKIP_TAG in _tags(c))
    ]
    cells = [c for _i, c in kept]
    origins = [i for i, _c in kept]  # each cell's index in the notebook as written
    if given:
        at = next(i for i, c in enumerate(cells) if PARAMETERS_TAG in _tags(c))
        with_id = (result.get("nbformat"), result.get("nbformat_minor", 0)) >= (4, 5)
        cells.insert(at + 1, _injected(given, with_id))
        origins.insert(at + 1, origins[at])
    lines = result.metadata.get("source_map")
    if isinstance(lines, list) and len(lines) == len(result.cells):  # a text notebook's
        result.metadata["source_map"] = [lines[i] for i in origins]  # lines, for warnings
    if call and sign.returns:
        number = next(
            _code_number(notebook, i)
            for i, c in enumerate(notebook.cells)
            if c.get("cell_type") == "code" and RETURN_TAG in _tags(c)
        )
        for cell in cells:
            if cell.get("cell_type") == "code" and RETURN_TAG in _tags(cell):
                cell.source = _returning(_source(cell), path, number)
    result.cells = cells
    return result


def _returning(source: str, path: str, cell: int) -> str:
    """The ``return`` cell's code, publishing its expression's value as JSON."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise SignatureError(
            path, f"the `return` cell is not valid Python: {exc.msg}", cell, exc.lineno
        ) from None
    statements = tree.body
    if len(statements) != 1 or not isinstance(statements[0], ast.Expr):
        line = next((s.lineno for s in statements if not isinstance(s, ast.Expr)), None)
        if line is None and len(statements) > 1:
            line = statements[1].lineno
        raise SignatureError(
            path,
            "a `return` cell holds one expression (like `total` or `{'mean': m}`), "
            "not statements; compute the value in an earlier cell",
            cell,
            line,
        )
    # the expression keeps its line numbers (a traceback points at the user's own line)
    return (
        f"__nbcache_value__ = ({source.rstrip()}\n)\n"
        "def __nbcache_plain__(o):\n"
        "    for name in ('tolist', 'to_dict'):\n"
        "        if callable(getattr(o, name, None)):\n"
        "            return getattr(o, name)()\n"
        "    if isinstance(o, (set, frozenset)):\n"
        "        return sorted(o, key=repr)\n"
        "    raise TypeError(f'the return value holds a {type(o).__name__}, which JSON cannot "
        "encode: return numbers, strings, lists and dicts')\n"
        "__import__('IPython.display').display.publish_display_data({"
        f"{RETURN_MIME!r}: {{'value': __import__('json').loads(__import__('json').dumps("
        "__nbcache_value__, default=__nbcache_plain__))}})\n"
        "del __nbcache_value__, __nbcache_plain__"
    )


def returned(notebook: Mapping[str, Any]) -> Any:
    """The value a called notebook returned (``None`` without a ``return`` cell)."""
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code" or RETURN_TAG not in _tags(cell):
            continue
        for output in cell.get("outputs", []):
            data = output.get("data") or {}
            if RETURN_MIME in data:
                payload = data[RETURN_MIME]
                return payload.get("value") if isinstance(payload, Mapping) else payload
    return None
