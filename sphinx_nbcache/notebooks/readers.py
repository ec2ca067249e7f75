"""Path or text -> notebook, exactly as myst-nb reads it.

The choice of reader mirrors myst-nb's ``create_nb_reader``: a ``nb_custom_formats`` suffix
first (longest suffix wins), then ``.ipynb``, then ``.md`` files whose top matter says they are
notebooks (``file_format: mystnb`` or a jupytext header with ``format_name: myst``). Using the
same readers means the cache key we compute before Sphinx reads a page is the key of the
notebook myst-nb renders.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import nbformat

from ..config import Options
from ..errors import NotebookReadError

__all__ = [
    "MAX_NOTEBOOK_BYTES",
    "NOTEBOOK_VERSION",
    "MdConfig",
    "is_notebook",
    "load_notebook",
    "looks_like_myst_notebook",
]

if TYPE_CHECKING:
    from myst_parser.config.main import MdParserConfig

NOTEBOOK_VERSION = 4
#: the largest file read as a notebook: beyond, it is refused (a notebook of outputs is
#: rarely 50 MB; a device or a runaway file is refused before it exhausts memory)
MAX_NOTEBOOK_BYTES = 256 * 1024 * 1024
#: myst-parser's configuration, used to read MyST notebooks (None: its defaults)
MdConfig: TypeAlias = "MdParserConfig | None"


def looks_like_myst_notebook(text: str) -> bool:
    """True if a Markdown text starts with notebook top matter (myst-nb's rule)."""
    if not text.startswith("---"):
        return False
    lines = text.splitlines()
    top: list[str] = []
    for line in lines[1:]:
        if line.startswith(("---", "...")):
            break
        top.append(line.rstrip())
    else:
        return False
    meta = _load_yaml("\n".join(top))
    if not isinstance(meta, dict):
        return False
    if meta.get("file_format") == "mystnb":
        return True
    jupytext = meta.get("jupytext")
    if not isinstance(jupytext, dict):
        return False
    representation = jupytext.get("text_representation")
    return isinstance(representation, dict) and representation.get("format_name") == "myst"


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load``, with libyaml's loader when PyYAML has it (ten times faster: this
    runs for every MyST file read); None if the text is not YAML."""
    import yaml  # a dependency of myst-parser and jupytext

    loaders = [getattr(yaml, "CSafeLoader", yaml.SafeLoader), yaml.SafeLoader]
    for loader in dict.fromkeys(loaders):  # libyaml may refuse what the pure loader reads
        try:
            return yaml.load(text, Loader=loader)  # both are safe loaders
        except yaml.YAMLError:
            continue
    return None


def is_notebook(path: str | Path, options: Options, text: str | None = None) -> bool:
    """True if the file at ``path`` is a notebook page (``text`` avoids a second read)."""
    name = str(path)
    if name.endswith(options.notebook_suffixes):
        return True
    if not name.endswith(".md"):
        return False
    if text is None:
        try:
            with open(name, encoding="utf-8", errors="replace") as handle:
                text = handle.read(4096)
        except OSError:
            return False
        if text.startswith("---") and "\n---" not in text[3:] and "\n..." not in text[3:]:
            text = Path(name).read_text(encoding="utf-8", errors="replace")
    return looks_like_myst_notebook(text)


def load_notebook(
    path: str | Path,
    options: Options,
    text: str | bytes | None = None,
    md_config: MdConfig = None,
) -> nbformat.NotebookNode:
    """Read the notebook at ``path`` (or its already-loaded ``text`` or bytes).

    ``md_config`` is myst-parser's ``MdParserConfig`` used for MyST notebooks (Sphinx passes
    the project's). Raises :class:`NotebookReadError` naming the file and the reason.
    """
    name = str(path)
    if not isinstance(text, str):
        try:
            raw = read_regular_file(name) if text is None else text
        except OSError as exc:
            raise NotebookReadError(name, exc.strerror or str(exc)) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotebookReadError(
                name, f"not UTF-8 text (byte {exc.start}); save the file as UTF-8"
            ) from None
    reader = _reader_for(name, options, text, md_config)
    if reader is None:
        raise NotebookReadError(name, "not a notebook format (no reader for this file type)")
    if not text.strip():
        raise NotebookReadError(name, "the file is empty")
    try:
        notebook = reader(text)
    except NotebookReadError:
        raise
    except json.JSONDecodeError as exc:
        raise NotebookReadError(
            name, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except Exception as exc:  # readers raise anything: yaml, jupytext, nbformat errors
        raise NotebookReadError(name, f"{type(exc).__name__}: {exc}") from None
    if not isinstance(notebook, nbformat.NotebookNode) or "cells" not in notebook:
        raise NotebookReadError(name, "the reader did not return a notebook")
    return notebook


def read_regular_file(path: str | Path, limit: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; OSError for anything else (a
    FIFO would block, a device never end)."""
    import os
    import stat

    with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NONBLOCK)) as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path} is not a regular file")
        if info.st_size > limit:
            raise OSError(f"{path} is larger than {limit:,} bytes")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"{path} is larger than {limit:,} bytes")
    return data


def _read_ipynb(text: str) -> nbformat.NotebookNode:
    data = json.loads(text)
    if not isinstance(data, dict) or ("cells" not in data and "worksheets" not in data):
        raise ValueError("the JSON is not a notebook (no 'cells')")
    major = data.get("nbformat")
    if not isinstance(major, int) or major < 3:
        raise ValueError(f"unsupported nbformat version {major!r}; convert it with nbconvert")
    if major > NOTEBOOK_VERSION:
        raise ValueError(
            f"nbformat {major} is newer than this nbformat library understands; "
            "upgrade nbformat or save the notebook as version 4"
        )
    # from_dict: a converted v3 notebook comes back as nbformat.v3's own NotebookNode class
    notebook: nbformat.NotebookNode = nbformat.from_dict(
        nbformat.reads(text, as_version=NOTEBOOK_VERSION)
    )
    return notebook


def _reader_for(
    name: str, options: Options, text: str, md_config: MdConfig
) -> Callable[[str], nbformat.NotebookNode] | None:
    fmt = options.format_for(name)
    if fmt is not None:
        function = _import(fmt.reader)
        kwargs = dict(fmt.kwargs)
        return lambda source: function(source, **kwargs)
    if name.endswith(".ipynb"):
        return _read_ipynb
    if name.endswith(".md") and looks_like_myst_notebook(text):
        from myst_nb.core.read import read_myst_markdown_notebook

        def read_myst(source: str) -> nbformat.NotebookNode:
            notebook: nbformat.NotebookNode = read_myst_markdown_notebook(
                source, config=md_config, add_source_map=True, path=name
            )
            return notebook

        return read_myst
    return None


@lru_cache(maxsize=32)
def _import(dotted: str) -> Callable[..., nbformat.NotebookNode]:
    module_name, _, attribute = dotted.rpartition(".")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise NotebookReadError(
            dotted, f"cannot import the reader given in nb_custom_formats: {exc}"
        ) from None
    if not callable(function):
        raise NotebookReadError(dotted, "the nb_custom_formats reader is not callable")
    return function  # type: ignore[no-any-return]
