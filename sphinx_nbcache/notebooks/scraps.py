"""Scraps: values a notebook glued into its outputs, read back without scrapbook installed.

Two conventions are read from the outputs of code cells:

- scrapbook's ``sb.glue(name, value, encoder=...)``: a ``display_data`` output whose data holds
  ``application/scrapbook.scrap.<json|text>+json`` = ``{"name", "data", "encoder", "version"}``
  (encoders ``json``, ``text``, ``pandas``), with ``metadata.scrapbook = {"name", "data",
  "display"}``; ``encoder="display"`` or ``display=True`` adds (or only keeps) a plain output
  whose ``metadata.scrapbook`` names the scrap: its display;
- myst-nb's ``glue(name, value)``: a display whose ``metadata.scrapbook`` has ``mime_prefix``
  (``""`` when shown, ``application/papermill.record/`` when hidden): the display only,
  read as the encoder ``"display"``.

A later glue of the same name wins, as in both libraries.
"""

from __future__ import annotations

import base64
import importlib
import io
import json
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

__all__ = ["SCRAP_PREFIX", "Scrap", "hide_payloads", "scraps_of"]

SCRAP_PREFIX = "application/scrapbook.scrap."


class Scrap(NamedTuple):
    """One glued value: its ``data`` (None for a display-only scrap), the ``encoder`` that
    stored it, and its ``display`` (``{"data": mimebundle, "metadata": {...}}``) if shown."""

    name: str
    data: Any
    encoder: str
    display: Mapping[str, Any] | None = None

    def value(self) -> Any:
        """The Python value: ``data`` decoded (a ``pandas`` scrap becomes a DataFrame)."""
        if self.encoder == "pandas" and isinstance(self.data, str):
            return _dataframe(self.name, self.data)
        return self.data

    def preview(self, width: int = 60) -> str:
        """One line for people: the data, or the display's text."""
        if self.data is not None:
            text = self.data if isinstance(self.data, str) else json.dumps(self.data)
            if self.encoder == "pandas":
                text = f"<dataframe, {len(self.data)} bytes encoded>"
        elif self.display is not None:
            bundle = self.display.get("data", {})
            plain = bundle.get("text/plain")
            text = "".join(plain) if isinstance(plain, list) else str(plain or "")
            text = text or f"<{', '.join(sorted(bundle))}>"
        else:
            text = ""
        text = " ".join(text.split())
        return text if len(text) <= width else text[: width - 3] + "..."


def scraps_of(notebook: Mapping[str, Any]) -> dict[str, Scrap]:
    """Every scrap in a notebook's outputs, by name, in the order they were first glued."""
    found: dict[str, Scrap] = {}
    for output in _outputs(notebook):
        for scrap in _scraps_in(output):
            previous = found.get(scrap.name)
            if previous is not None and scrap.data is None and previous.data is not None:
                # a display glued with its data (scrapbook's display=True): keep both
                scrap = Scrap(scrap.name, previous.data, previous.encoder, scrap.display)
            elif previous is not None and scrap.display is None and previous.display is not None:
                scrap = Scrap(scrap.name, scrap.data, scrap.encoder, previous.display)
            found[scrap.name] = scrap
    return found


#: how myst-nb marks a value glued but not shown (``glue(name, value, display=False)``)
HIDDEN_PREFIX = "application/papermill.record/"


def hide_payloads(notebook: Any) -> None:
    """Turn scrapbook's data payloads into what myst-nb's ``glue(..., display=False)``
    writes: nothing is shown where they were glued (scrapbook shows nothing either, and
    renderers warn about their mimetypes), and ``{glue}`page.md::name``` can paste them
    (their value as text, as myst-nb's own glue would show it). A ``pandas`` payload is only
    hidden. Outputs are replaced, never changed in place (they may be shared)."""
    for cell in notebook.get("cells", ()):
        outputs = cell.get("outputs")
        if cell.get("cell_type") != "code" or not outputs:
            continue
        kept, changed = [], False
        for output in outputs:
            data = output.get("data")
            if not data or not any(k.startswith(SCRAP_PREFIX) for k in data):
                kept.append(output)
                continue
            changed = True
            rest = {k: v for k, v in data.items() if not k.startswith(SCRAP_PREFIX)}
            if rest:
                kept.append(type(output)({**output, "data": type(data)(rest)}))
            kept.extend(_node(output, glue) for glue in _as_glue(data))
        if changed:
            cell["outputs"] = kept


def _node(like: Any, output: dict[str, Any]) -> Any:
    """``output`` as the same kind of object as ``like`` (nbformat's nodes, or plain dicts)."""
    if isinstance(like, dict) and type(like) is not dict:
        from nbformat import from_dict

        return from_dict(output)
    return output


def _as_glue(data: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """myst-nb's hidden glue outputs for the scrapbook payloads in ``data``."""
    for key, payload in data.items():
        if not key.startswith(SCRAP_PREFIX) or not isinstance(payload, Mapping):
            continue
        name, encoder = payload.get("name"), payload.get("encoder")
        if not isinstance(name, str) or encoder not in ("json", "text"):
            continue
        yield {
            "output_type": "display_data",
            "data": {HIDDEN_PREFIX + "text/plain": repr(payload.get("data"))},
            "metadata": {"scrapbook": {"name": name, "mime_prefix": HIDDEN_PREFIX}},
        }


def _outputs(notebook: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for cell in notebook.get("cells", ()):
        if cell.get("cell_type") == "code":
            yield from cell.get("outputs", ())


def _scraps_in(output: Mapping[str, Any]) -> Iterator[Scrap]:
    if output.get("output_type") not in ("display_data", "execute_result"):
        return
    data: Mapping[str, Any] = output.get("data") or {}
    metadata: Mapping[str, Any] = output.get("metadata") or {}
    for mimetype, payload in data.items():
        if mimetype.startswith(SCRAP_PREFIX) and isinstance(payload, Mapping):
            name = payload.get("name")
            if isinstance(name, str):
                encoder = str(payload.get("encoder") or mimetype[len(SCRAP_PREFIX) :].split("+")[0])
                yield Scrap(name, payload.get("data"), encoder)
    marker = metadata.get("scrapbook")
    if not isinstance(marker, Mapping) or not isinstance(marker.get("name"), str):
        return
    name = marker["name"]
    if "mime_prefix" in marker:  # myst-nb's glue
        prefix = str(marker.get("mime_prefix") or "")
        bundle = {k[len(prefix) :]: v for k, v in data.items() if k.startswith(prefix)}
        shown = {k: v for k, v in metadata.items() if k != "scrapbook"}
        yield Scrap(name, None, "display", {"data": bundle, "metadata": shown})
    elif marker.get("display"):  # scrapbook's display part
        bundle = {k: v for k, v in data.items() if not k.startswith(SCRAP_PREFIX)}
        if bundle:
            yield Scrap(name, None, "display", {"data": bundle, "metadata": {}})


def _dataframe(name: str, encoded: str) -> Any:
    """scrapbook's pandas encoder: base64 of a Parquet file (pandas + pyarrow to read it)."""
    try:
        pandas: Any = importlib.import_module("pandas")
    except ImportError:
        from ..errors import NotFoundError

        raise NotFoundError(
            f"scrap {name!r} holds a DataFrame", "install pandas (and pyarrow) to read it"
        ) from None
    return pandas.read_parquet(io.BytesIO(base64.b64decode(encoded)))
