"""A docs project and its cache, open: the pages by name, the store, an engine per run."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from ..config import DEFAULT_CACHE_DIR, Options
from ..errors import NotFoundError
from ..notebooks.pages import Page
from ..notebooks.project import Project, find_docs_dir
from ..store import Store, StoreLocation
from .core import Engine

__all__ = ["ProjectCache", "Target", "open_project"]

Target = str | Path | Page
C = TypeVar("C", bound="ProjectCache")


def open_project(
    docs_dir: str | Path | None = None,
    cache: str | Path | None = None,
    *,
    read_only: bool = False,
) -> ProjectCache:
    """The cache of a docs folder, with the options of its ``conf.py``.

    ``docs_dir`` defaults to the nearest folder holding a ``conf.py`` at or above the current
    one (none: default options, ``.nbcache`` here). ``cache`` overrides ``nbcache_path``.
    ``read_only`` creates and repairs nothing (a cache that is not there reads as empty).
    """
    root = Path(docs_dir) if docs_dir is not None else find_docs_dir(Path.cwd())
    if root is not None and not root.is_dir():
        raise NotFoundError(
            f"no folder {str(root)!r}", "give the docs folder (the one holding conf.py)"
        )
    return ProjectCache(project=Project.load(root, cache), read_only=read_only)


class ProjectCache:
    """A cache folder, open, and optionally the docs folder whose pages it caches: what the
    Python API (:class:`~sphinx_nbcache.api.Cache`), the workflows and the CLI work on."""

    def __init__(
        self,
        path: str | Path = DEFAULT_CACHE_DIR,
        *,
        project: Project | None = None,
        read_only: bool = False,
        store: Store | None = None,
    ) -> None:
        if project is None:
            options = Options(cache_path=Path(path).resolve())
            project = Project(None, options)
        self.project = project
        self.store: Store = store or StoreLocation.of(project.options).open(read_only=read_only)

    def engine(self, options: Options | None = None) -> Engine:
        """An engine on this cache's store (one per run)."""
        return Engine(
            options or self.options,
            root=self.project.root,
            md_config=self.project.md_config,
            store=self.store,
        )

    def notices(self) -> list[str]:
        """The store's one-line notices (damage found or repaired, migration), each once."""
        notices = list(self.store.notices)
        self.store.notices.clear()
        return notices

    @property
    def options(self) -> Options:
        return self.project.options

    @property
    def path(self) -> Path:
        return self.options.cache_path

    def close(self) -> None:
        self.store.close()

    def __enter__(self: C) -> C:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- pages --------------------------------------------------------------------------------

    def pages(self, targets: Iterable[Target] | None = None) -> list[Page]:
        """Pages: every notebook of the docs folder, or the files / folders / names given."""
        if targets is None:
            return self.project.pages()
        found: dict[str, Page] = {}
        for target in targets:
            for page in self._expand(target):
                found.setdefault(page.name, page)
        return list(found.values())

    def page(self, target: Target) -> Page:
        """One page, given as a path, a page name (``examples/demo``) or a :class:`Page`."""
        if isinstance(target, Page):
            return target
        path = Path(target)
        if path.is_file():
            return self.project.page(path)
        if self.project.root is not None:
            if (self.project.root / path).is_file():
                return self.project.page(self.project.root / path)
            for page in self.project.pages():
                if page.name == Path(str(target)).as_posix().removesuffix(path.suffix):
                    return page
        raise NotFoundError(
            f"no page {str(target)!r}", "give the path of a notebook file or a page name"
        )

    def _expand(self, target: Target) -> list[Page]:
        if not isinstance(target, Page) and Path(target).is_dir():
            return Project.load(Path(target), self.path).pages()
        return [self.page(target)]
