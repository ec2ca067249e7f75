"""The inline expressions of a page: myst-nb's ``{eval}`` roles and directives.

Prose can show values computed by the page's code (``The mean is {eval}`mean```; a block
``{eval}`` or ``{eval:figure}`` directive). Each expression is evaluated in the page's kernel at
its place: after the code cells above it, before the ones below. What is evaluated is part of
what runs, so the expressions (their text and how many code cells come before each) are part
of the page's key (:mod:`.hashing`); where they sit in the prose is not: moving one within the
prose between the same code cells, or editing the prose around it, executes nothing.

Expressions are found in the markdown cells by myst-parser's own tokenizer (roles inside inline
code, code blocks or other fences are not expressions), and inside the content of other
directives (an ``{eval}`` in a ``{note}``). Only cells whose text holds ``{eval`` are parsed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

__all__ = [
    "EXPRESSIONS_KEY",
    "Expression",
    "Values",
    "expressions_in",
    "keyed",
    "not_evaluated",
    "value_outputs",
]

#: where the values of a page's expressions travel with its merged notebook (notebook metadata)
EXPRESSIONS_KEY = "nbcache_expressions"
#: the names of myst-nb's expression role and directives
_ROLE = "eval"
_DIRECTIVES = frozenset({"eval", "eval:figure"})
_DIRECTIVE_INFO = re.compile(r"^\{([^}\s]+)\}\s*(.*)$")


class Expression(NamedTuple):
    """One ``{eval}`` of a page: what it evaluates, after how many code cells, and where."""

    source: str  # the expression, stripped
    after: int  # code cells above it (it is evaluated after these, before the next)
    cell: int  # the markdown cell holding it, index among all cells
    line: int  # its line within that cell's source (0-based)


def keyed(expressions: Sequence[Expression]) -> list[list[Any]]:
    """What of the expressions is part of the key: each one's text and place among the cells."""
    return [[e.after, e.source] for e in expressions]


def expressions_in(notebook: Mapping[str, Any]) -> tuple[Expression, ...]:
    """The inline expressions of ``notebook``, in document order."""
    found: list[Expression] = []
    after = 0
    for index, cell in enumerate(notebook.get("cells", ())):
        kind = cell.get("cell_type")
        if kind == "code":
            after += 1
            continue
        if kind != "markdown":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        if "{eval" not in source:
            continue
        for text, line in _in_markdown(source, 0):
            found.append(Expression(text, after, index, line))
    return tuple(found)


def _in_markdown(text: str, offset: int) -> Iterator[tuple[str, int]]:
    """(expression, line) of each ``{eval}`` in a markdown text, lines counted from ``offset``."""
    tokens = _parser().parse(text)
    lines = text.splitlines()
    for token in tokens:
        start = offset + (token.map[0] if token.map else 0)
        if token.type == "inline":
            for child in token.children or ():
                if child.type == "myst_role" and child.meta.get("name") == _ROLE:
                    yield child.content.strip(), _line_of(child.content, lines, token.map, offset)
        elif token.type in ("fence", "colon_fence"):
            matched = _DIRECTIVE_INFO.match(token.info.strip())
            if matched is None:
                continue  # a code block: nothing in it is an expression
            name, argument = matched.group(1), matched.group(2).strip()
            if name in _DIRECTIVES and argument:
                yield argument, start
            if "{eval" in token.content:  # a directive's content is markdown too
                body, skipped = _directive_body(token.content)
                yield from _in_markdown(body, start + 1 + skipped)


def _line_of(content: str, lines: list[str], span: list[int] | None, offset: int) -> int:
    """The line of a role inside a block (the block's first line if it cannot be told)."""
    if not span:
        return offset
    for number in range(span[0], min(span[1], len(lines))):
        if "{eval}" in lines[number] and content.strip() in lines[number]:
            return offset + number
    return offset + span[0]


def _directive_body(content: str) -> tuple[str, int]:
    """A directive's content without its options (``:name: value`` lines or a ``---`` block),
    and how many lines were skipped."""
    lines = content.splitlines()
    skipped = 0
    if lines and lines[0].strip() == "---":
        for number, line in enumerate(lines[1:], 1):
            if line.strip() == "---":
                skipped = number + 1
                break
    else:
        while skipped < len(lines) and re.match(r"^:[\w-]+:", lines[skipped]):
            skipped += 1
    return "\n".join(lines[skipped:]), skipped


@lru_cache(maxsize=1)
def _parser() -> Any:
    """myst-parser's markdown-it parser (roles as ``myst_role`` tokens; ``:::`` fences on)."""
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    return create_md_parser(MdParserConfig(enable_extensions={"colon_fence"}), RendererHTML)


# -- values -------------------------------------------------------------------------------------


def value_outputs(reply: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """One expression's value from a ``user_expressions`` reply entry, as notebook outputs: a
    ``display_data`` with its mime bundle, or an ``error``."""
    if not reply:
        return [_error("NotEvaluated", "the kernel returned nothing for it")]
    if reply.get("status") == "ok":
        return [
            {
                "output_type": "display_data",
                "data": dict(reply.get("data") or {}),
                "metadata": dict(reply.get("metadata") or {}),
            }
        ]
    return [_error(str(reply.get("ename", "Error")), str(reply.get("evalue", "")))]


def _error(ename: str, evalue: str) -> dict[str, Any]:
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": []}


def not_evaluated(expression: tuple[int, str], why: str) -> dict[str, Any]:
    """The stored entry of an expression that was never evaluated (the page stopped first)."""
    after, source = expression
    return {"after": after, "source": source, "outputs": [_error("NotEvaluated", why)]}


class Values:
    """The stored values of a page's expressions (``Outputs.expressions``), handed to the
    renderer as it asks for them: in document order, so the same text at two places gets the
    value of each place."""

    def __init__(self, stored: Sequence[Mapping[str, Any]] | None) -> None:
        self.stored = list(stored or ())
        self._next = 0

    def take(self, source: str) -> list[dict[str, Any]]:
        """The outputs of the next ``source`` expression; :class:`ExpressionError` if it has no
        value (it raised, was not evaluated, or the result holds none)."""
        from ..errors import ExpressionError

        text = source.strip()
        places = range(len(self.stored))
        later = (i for i in places if i >= self._next and self.stored[i].get("source") == text)
        found = next(later, None)
        if found is None:  # asked out of order: any place of the same text
            found = next((i for i in places if self.stored[i].get("source") == text), None)
        if found is None:
            raise ExpressionError(
                text,
                "has no value in the page's result: is the page executed? "
                "(`nbcache why PAGE` says what its result is)",
            )
        self._next = found + 1
        value = self.stored[found]
        outputs = [dict(o) for o in value.get("outputs", ())]
        error = next((o for o in outputs if o.get("output_type") == "error"), None)
        if error is not None:
            after = int(value.get("after", 0))
            where = f"after code cell {after}" if after else "before the first code cell"
            if error.get("ename") == "NotEvaluated":
                raise ExpressionError(text, f"was not evaluated ({where}): {error.get('evalue')}")
            raise ExpressionError(
                text, f"raised {error.get('ename')}: {error.get('evalue')} (evaluated {where})"
            )
        return outputs
