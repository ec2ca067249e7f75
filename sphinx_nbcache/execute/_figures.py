"""What a kernel says about its own cost: CPU seconds and peak memory.

A Python kernel is asked twice through silent ``user_expressions`` requests: once its notebook
is ready to start (the kernel idles until its first cell, so no CPU passes meanwhile) and
after its last cell (in the request that collects the tracer's notes). The difference is the
notebook's CPU time, its own and that of the processes it waited for; the peak is the kernel
process's ``ru_maxrss``. A kernel that cannot say (not Python, no ``resource`` module: Windows)
leaves both unknown.
"""

from __future__ import annotations

import ast
import asyncio
from typing import Any

from . import _trace

__all__ = ["USAGE", "ask", "collect", "figures", "parse_usage", "usage_of"]

#: (CPU seconds, peak resident bytes) of the kernel (``ru_maxrss`` is KiB, on macOS bytes)
USAGE = {
    "nbcache_usage": "(lambda r, c, s: (r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime, "
    "r.ru_maxrss * (1 if s.platform == 'darwin' else 1024)))(__import__('resource')"
    ".getrusage(0), __import__('resource').getrusage(-1), __import__('sys'))"
}


def parse_usage(reply: Any) -> tuple[float, int] | None:
    """The figures from the reply to a request holding :data:`USAGE` (None: not there)."""
    content = (reply or {}).get("content") or {}
    found = (content.get("user_expressions") or {}).get("nbcache_usage")
    if not isinstance(found, dict) or found.get("status") != "ok":
        return None
    try:
        cpu, peak = ast.literal_eval((found.get("data") or {}).get("text/plain", ""))
        return float(cpu), int(peak)
    except (ValueError, TypeError, SyntaxError):
        return None


async def ask(client: Any, expressions: dict[str, str]) -> Any:
    """The reply to a silent request evaluating ``expressions`` in the client's kernel."""
    msg_id = client.kc.execute("", silent=True, store_history=False, user_expressions=expressions)
    if asyncio.iscoroutine(msg_id):
        msg_id = await msg_id
    return await client.async_wait_for_reply(msg_id)


async def usage_of(client: Any) -> tuple[float, int] | None:
    """The kernel's figures now (None: it cannot say)."""
    try:
        return parse_usage(await ask(client, USAGE))
    except Exception:
        return None


def figures(
    before: tuple[float, int] | None, after: tuple[float, int] | None
) -> tuple[float | None, int | None]:
    """(CPU seconds between the two readings, peak bytes), each None when not known."""
    if after is None:
        return None, None
    cpu = None if before is None else round(max(0.0, after[0] - before[0]), 4)
    return cpu, after[1]


async def collect(
    client: Any, traced: bool, before: tuple[float, int] | None
) -> tuple[dict[str, Any] | None, tuple[float, int] | None]:
    """After the last cell: the tracer's notes (if it runs) and the kernel's figures (if it
    gave them ``before``), in one request; a failure to get them only loses them."""
    if not traced and before is None:
        return None, None
    expressions = {**(_trace.collect_expression() if traced else {}), **USAGE}
    try:
        reply = await ask(client, expressions)
    except Exception:
        return None, None
    report = _trace.parse_report(reply) if reply and traced else None
    return report, parse_usage(reply)
