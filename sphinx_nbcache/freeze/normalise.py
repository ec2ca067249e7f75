"""Noise taken out of frozen outputs, so re-freezing a page that did not change writes the same
bytes however often (and wherever) it ran.

Built in, in this order: the docs folder's absolute path (``<docs>``), the home folder (``~``),
temporary paths (``<tmp>``), memory addresses (``0x<address>``), the timings IPython's
``%time`` prints, and date-times of the day the page ran (``<timestamp>``; dates in data, far
from the run, are kept). Then the project's own rules (``nbcache_freeze_normalise``: regexes,
or ``[regex, replacement]`` pairs). Only text is changed: stream text, text-like mime data
(HTML, Markdown, LaTeX, SVG, plain text), error messages and tracebacks.
"""

from __future__ import annotations

import datetime
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["Normaliser"]

_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{8,16}\b")
_TIMING = re.compile(r"^(CPU times|Wall time): .*$", re.MULTILINE)
_TEMP = re.compile(r"(?:/private)?/var/folders/[^\s'\"<>)\]]+|/tmp/[^\s'\"<>)\]]+")
_DATETIME = re.compile(
    r"\b(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"
)
#: date-times this close to the run are when it ran, not data
_NEAR = datetime.timedelta(days=2)


class Normaliser:
    """The noise rules for one page's result: ``root`` is the docs folder, ``created`` when
    the result was made (seconds since the epoch), ``rules`` the project's own."""

    def __init__(self, rules: Sequence[tuple[str, str]], root: Path | None, created: float) -> None:
        places: list[tuple[str, str]] = []
        if root is not None:
            for path in dict.fromkeys((str(root), str(root.resolve()))):
                places.append((path, "<docs>"))
        temp = tempfile.gettempdir()
        #: the temporary folder with what follows it (a random name): one placeholder
        self.temps = [
            re.compile(re.escape(path) + r"(?:/[^\s'\"<>)\]]+)?")
            for path in dict.fromkeys((temp, os.path.realpath(temp)))
            if path not in ("/", "/tmp")  # /tmp is matched by _TEMP
        ]
        home = os.path.expanduser("~")
        if home not in ("/", "~"):
            places.append((home, "~"))
        #: longest first: a folder inside another is replaced as a whole
        self.places = sorted(places, key=lambda pair: len(pair[0]), reverse=True)
        self.rules = [(re.compile(pattern), replacement) for pattern, replacement in rules]
        self.day = datetime.datetime.fromtimestamp(created or 0, datetime.timezone.utc).date()

    def text(self, text: str) -> str:
        """``text`` with its noise replaced."""
        for path, name in self.places:
            text = text.replace(path, name)
        for temp in self.temps:
            text = temp.sub("<tmp>", text)
        text = _TEMP.sub("<tmp>", text)
        text = _ADDRESS.sub("0x<address>", text)
        text = _TIMING.sub(r"\1: <time>", text)
        text = _DATETIME.sub(self._when, text)
        for pattern, replacement in self.rules:
            text = pattern.sub(replacement, text)
        return text

    def _when(self, found: re.Match[str]) -> str:
        try:
            day = datetime.date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
        except ValueError:
            return found.group(0)
        if abs(day - self.day) > _NEAR:
            return found.group(0)  # a date in the data
        return "<timestamp>" if len(found.group(0)) > 10 else "<date>"
