"""The build's own lines: one per notebook executed, and one summary at the end."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sphinx.util import logging

if TYPE_CHECKING:
    from ..engine.core import Engine
    from ..plan.verdicts import PageState
    from ..records import Record

__all__ = ["log_ran", "log_summary"]

logger = logging.getLogger("sphinx_nbcache")


def log_ran(record: Record) -> None:
    """The line for one notebook executed (a run that could not start is no run)."""
    if record.status == "error":  # it never ran: not counted as executed
        logger.info(f"nbcache: {record.page} {record.explain()}")
    else:
        ran = f"nbcache: ran {record.page} in {record.runtime:.2f} s"
        logger.info(f"{ran} ({record.explain()})")
    why = record.dependencies.untraced if record.dependencies is not None else None
    if why and record.page:
        logger.warning(
            f"nbcache: could not watch what this notebook reads ({why}): its cached result "
            "will not run again when files it reads or modules it imports change; declare "
            "them in nbcache_dependencies, or see why the kernel refused the tracer",
            location=record.page,
            type="nbcache",
            subtype="untraced",
        )


def log_summary(engine: Engine, planned: Iterable[PageState]) -> None:
    """What the build did: executed, from the cache, elsewhere; and where the time went."""
    executed = engine.executed
    failed = sum(1 for r in executed if not r.ok)
    ran = {r.key for r in (*executed, *engine.waited)}  # damaged entries run again too
    cached = sum(1 for s in planned if s.verdict in ("cached", "failed") and s.key not in ran)
    elsewhere = f", {len(engine.waited)} executed by another build" if engine.waited else ""
    most = engine.most_at_once
    at_once = f", at most {most} at once" if executed and most else ""
    if executed or cached or elsewhere:
        kernel_time = sum(r.runtime for r in executed)
        wall = time.perf_counter() - engine.started
        logger.info(
            f"nbcache: {len(executed)} executed ({failed} failed, {kernel_time:.1f} s of "
            f"kernel time{at_once}), {cached} from cache{elsewhere}; {wall:.1f} s since "
            "planning, "
            f"of which {engine.plan_seconds:.2f} s planning and {engine.waited_seconds:.1f} s "
            "reading waited for results"
        )
