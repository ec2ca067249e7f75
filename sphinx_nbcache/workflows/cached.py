"""A notebook page's result read from the cache, with scrapbook's reading API."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from ..notebooks.scraps import Scrap, scraps_of

if TYPE_CHECKING:
    import nbformat

    from ..records import Record

__all__ = ["CachedNotebook"]


class CachedNotebook:
    """An executed notebook from the cache, with scrapbook's reading API."""

    def __init__(self, page: str, path: Path, notebook: nbformat.NotebookNode, record: Record):
        self.page = page  #: the page's name in its project (``analysis/summary``)
        self.path = path  #: its source file
        self.notebook = notebook  #: the source with the cached outputs merged in
        self.record = record  #: the cached result
        self.scraps: dict[str, Scrap] = scraps_of(notebook)

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def cells(self) -> list[Any]:
        return list(self.notebook.cells)

    @property
    def metadata(self) -> Any:
        return self.notebook.metadata

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.record.parameters or {})

    @property
    def scrap_dataframe(self) -> Any:
        """The scraps as a pandas DataFrame (name, data, encoder, display, filename)."""
        pandas: Any = importlib.import_module("pandas")
        rows = [
            {"name": s.name, "data": s.data, "encoder": s.encoder, "display": s.display,
             "filename": self.filename}
            for s in self.scraps.values()
        ]  # fmt: skip
        return pandas.DataFrame(rows, columns=["name", "data", "encoder", "display", "filename"])

    def reglue(
        self, name: str, new_name: str | None = None, *, raise_on_missing: bool = True
    ) -> None:
        """Glue scrap ``name`` of this notebook into the running notebook (as ``new_name``),
        scrapbook-style: its data, and its display if it has one. Needs IPython."""
        scrap = self.scraps.get(name)
        if scrap is None:
            if raise_on_missing:
                raise NotFoundError(
                    f"{self.page} has no scrap {name!r}",
                    f"its scraps are {', '.join(sorted(self.scraps)) or 'none'}",
                )
            return
        display: Any = importlib.import_module("IPython.display").display
        glued = new_name or name
        if scrap.data is not None:
            kind = "text" if scrap.encoder == "text" else "json"
            payload = {"name": glued, "data": scrap.data, "encoder": scrap.encoder, "version": 1}
            display(
                {f"application/scrapbook.scrap.{kind}+json": payload},
                raw=True,
                metadata={"scrapbook": {"name": glued, "data": True, "display": False}},
            )
        if scrap.display is not None:
            metadata = {**scrap.display.get("metadata", {}), "scrapbook": {
                "name": glued, "data": False, "display": True}}  # fmt: skip
            display(dict(scrap.display.get("data", {})), raw=True, metadata=metadata)

    def __repr__(self) -> str:
        return (
            f"<CachedNotebook {self.page}: {len(self.scraps)} scraps, result {self.record.id[:10]}>"
        )
