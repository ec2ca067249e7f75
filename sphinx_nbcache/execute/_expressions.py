"""The inline expressions of a page (``{eval}``), evaluated at their places in its kernel.

Each expression is evaluated after the code cells above it and before the ones below, by a
silent ``user_expressions`` request (no output, no execution count, nothing in the history):
the expressions at one place go in one request. Their values (mime bundles, or the error
each raised) are kept with the outputs (``Outputs.expressions``); a failing expression does
not fail the page: the build warns at its line when it is shown. Expressions below a cell
that stopped the run are never evaluated, and say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..notebooks.expressions import not_evaluated, value_outputs

__all__ = ["Evaluator"]


class Evaluator:
    """The expressions of one job, ``(code cells above it, text)`` in document order."""

    def __init__(self, expressions: Sequence[tuple[int, str]]) -> None:
        self.expressions = list(expressions)
        self.values: list[dict[str, Any] | None] = [None] * len(self.expressions)
        self._next = 0  # the first expression not evaluated yet

    async def upto(self, client: Any, done: int) -> None:
        """Evaluate the expressions due once ``done`` code cells have run."""
        due = []
        while self._next < len(self.expressions) and self.expressions[self._next][0] <= done:
            due.append(self._next)
            self._next += 1
        if not due or client.kc is None:
            return
        asked = {f"e{i}": self.expressions[i][1] for i in due}
        msg_id = client.kc.execute("", silent=True, store_history=False, user_expressions=asked)
        if hasattr(msg_id, "__await__"):
            msg_id = await msg_id
        reply = await client.async_wait_for_reply(msg_id)
        found = ((reply or {}).get("content") or {}).get("user_expressions") or {}
        for i in due:
            after, source = self.expressions[i]
            outputs = value_outputs(found.get(f"e{i}"))
            self.values[i] = {"after": after, "source": source, "outputs": outputs}

    def results(self, stopped: str | None) -> tuple[dict[str, Any], ...] | None:
        """Every expression's value (None: the page has none); ``stopped``: why the ones not
        evaluated were not (the run stopped before their place)."""
        if not self.expressions:
            return None
        why = stopped or "the run ended before its place"
        return tuple(
            value if value is not None else not_evaluated(expression, why)
            for expression, value in zip(self.expressions, self.values, strict=True)
        )
