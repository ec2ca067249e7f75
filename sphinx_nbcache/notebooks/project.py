"""A docs folder as the CLI and the Python API see it: its options and its notebook pages.

Sphinx is never imported for a Sphinx project. The options come from running the folder's
``conf.py`` the way Sphinx does (``__file__`` and ``tags`` set, in the folder), or, for a
jupyter-book 1 folder without one, from its ``_config.yml`` (see ``_book``), then
:meth:`Options.from_mapping`;
pages are the notebooks :func:`~sphinx_nbcache.plan.stale.pages_under` finds, minus Sphinx's
``exclude_patterns``, named like Sphinx docnames (the path relative to the folder, without
its suffix), so the CLI and a build agree on every page's name and key.
"""

from __future__ import annotations

import dataclasses
import os
import re
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..config import Options
from ..errors import ConfFileError, ConfigError
from ..options import unknown_options
from .book import BOOK_CONFIG, is_book, load_book_config, toc_docnames
from .pages import Page, pages_under
from .readers import MdConfig

__all__ = ["CONF_NAME", "Project", "find_docs_dir", "load_conf", "sphinx_pattern"]

CONF_NAME = "conf.py"


class _Tags:
    """Enough of Sphinx's ``tags`` object for a ``conf.py`` that tests or sets tags."""

    def __init__(self) -> None:
        self._tags: set[str] = set()

    def has(self, tag: str) -> bool:
        return tag in self._tags

    __contains__ = has

    def add(self, tag: str) -> None:
        self._tags.add(tag)

    def remove(self, tag: str) -> None:
        self._tags.discard(tag)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._tags))


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def load_conf(conf: str | Path) -> dict[str, Any]:
    """Run a ``conf.py`` like Sphinx does and return its namespace.

    Raises :class:`ConfFileError` naming the file, the line and the exception.
    """
    path = Path(conf).resolve()
    try:
        code = compile(path.read_bytes(), str(path), "exec")
    except OSError as exc:
        raise ConfFileError(str(path), exc.strerror or str(exc)) from None
    except SyntaxError as exc:
        raise ConfFileError(str(path), f"syntax error at line {exc.lineno}: {exc.msg}") from None
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": "conf", "tags": _Tags()}
    try:
        with _cwd(path.parent):
            exec(code, namespace)
    except (Exception, SystemExit) as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
        where = f" at line {frames[-1].lineno}" if frames else ""
        raise ConfFileError(
            str(path),
            f"{type(exc).__name__}{where}: {exc}; fix it (it must run outside Sphinx too) or "
            "pass --cache to skip reading it",
        ) from None
    return namespace


def find_docs_dir(start: str | Path) -> Path | None:
    """The nearest folder at or above ``start`` holding a ``conf.py`` or a jupyter-book
    ``_config.yml`` with its ``_toc.yml`` (not past a ``.git``)."""
    folder = Path(start).resolve()
    if folder.is_file():
        folder = folder.parent
    for candidate in (folder, *folder.parents):
        if (candidate / CONF_NAME).is_file() or is_book(candidate):
            return candidate
        if (candidate / ".git").exists():
            return None
    return None


@lru_cache(maxsize=256)
def sphinx_pattern(pattern: str) -> re.Pattern[str]:
    """Sphinx's glob: ``**`` crosses folders, ``*`` and ``?`` do not, ``[...]`` is a class."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            out.append(f"[^{re.escape(body[1:])}]" if body.startswith("!") else f"[{body}]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass
class Project:
    """A docs folder (or none: then only explicit files are pages) with its options."""

    root: Path | None
    options: Options
    exclude: tuple[str, ...] = ()
    md_config: MdConfig = None
    conf: Mapping[str, Any] = field(default_factory=dict, repr=False)
    only: frozenset[str] | None = None  # docnames a jupyter-book table of contents restricts to
    #: what is odd about its options (a misspelt ``nbcache_*`` name), one line each
    notices: tuple[str, ...] = ()

    @classmethod
    def load(
        cls, root: str | Path | None, cache: str | Path | None = None, read_conf: bool = True
    ) -> Project:
        """The project in ``root``: options from its ``conf.py`` (or jupyter-book
        ``_config.yml``), if any; ``cache`` wins."""
        folder = Path(root).resolve() if root is not None else None
        values: dict[str, Any] = {}
        only = None
        if folder is not None and read_conf and (folder / CONF_NAME).is_file():
            values = load_conf(folder / CONF_NAME)
        elif folder is not None and read_conf and (folder / BOOK_CONFIG).is_file():
            values = load_book_config(folder)
            only = toc_docnames(folder, values)
        if cache is not None:
            values["nbcache_path"] = str(Path(cache).resolve())
        where = _config_file(folder) if read_conf else None
        try:
            options = Options.from_mapping(values, base_dir=folder or Path.cwd())
        except ConfigError as exc:  # conf.py ran: the value is what is wrong
            given = f"set in {where}" if where is not None else "as given"
            raise ConfigError(exc.option, f"{exc.message} ({given})") from None
        notices = tuple(
            f"{name!r} in {where} is not an option of sphinx-nbcache and is ignored; "
            + (f"did you mean {close!r}?" if close else "see the options in the documentation")
            for name, close in unknown_options(values)
        )
        exclude = [
            *_strings(values.get("exclude_patterns")),
            *_strings(values.get("templates_path")),
        ]
        exclude += [
            *_strings(values.get("html_static_path")),
            *_strings(values.get("html_extra_path")),
        ]
        return cls(folder, options, tuple(exclude), _md_config(values), values, only, notices)

    def name_of(self, path: Path) -> str:
        """The Sphinx docname of a file (its path relative to the project, no suffix)."""
        resolved = path.resolve()
        try:
            relative = resolved.relative_to(self.root) if self.root else Path(resolved.name)
        except ValueError:
            relative = Path(resolved.name)
        posix = relative.as_posix()
        fmt = self.options.format_for(posix)
        suffix = fmt.suffix if fmt is not None else relative.suffix
        return posix[: -len(suffix)] if suffix and posix.endswith(suffix) else posix

    def is_excluded(self, path: Path) -> bool:
        """True if Sphinx would not read this file (``exclude_patterns`` and asset folders)."""
        if self.root is None:
            return False
        try:
            parts = path.resolve().relative_to(self.root).parts
        except ValueError:
            return False
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return any(sphinx_pattern(p).match(x) for p in self.exclude for x in prefixes)

    def pages(self) -> list[Page]:
        """Every notebook page Sphinx would read in this project, by docname."""
        if self.root is None:
            return []
        found = pages_under(self.root, self.options)
        pages = [Page(self.name_of(p.path), p.path) for p in found if not self.is_excluded(p.path)]
        if self.only is not None:  # a jupyter-book built from its table of contents only
            toc = self.only  # lists docnames, with or without their suffix
            pages = [p for p in pages if p.name in toc or f"{p.name}{p.path.suffix}" in toc]
        return pages

    def page(self, path: str | Path) -> Page:
        """The page for one file."""
        file = Path(path).resolve()
        return Page(self.name_of(file), file)


def _config_file(folder: Path | None) -> Path | None:
    """The file the options were read from (None: none)."""
    if folder is None:
        return None
    for name in (CONF_NAME, BOOK_CONFIG):
        if (folder / name).is_file():
            return folder / name
    return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return []


def _md_config(values: Mapping[str, Any]) -> MdConfig:
    """myst-parser's config from the ``myst_*`` options (MyST notebooks are read with it)."""
    if not any(name.startswith("myst_") for name in values):
        return None
    try:
        from myst_parser.config.main import MdParserConfig

        names = {f.name for f in dataclasses.fields(MdParserConfig)}
        kwargs = {
            name[5:]: value
            for name, value in values.items()
            if name.startswith("myst_") and name[5:] in names
        }
        if isinstance(kwargs.get("enable_extensions"), list | tuple):
            kwargs["enable_extensions"] = set(kwargs["enable_extensions"])
        return MdParserConfig(**kwargs)
    except Exception:  # an unknown option value: read with myst-parser's defaults
        return None
