"""The build's own lines: one per notebook executed (with the progress of the run), a "still
running" line for a notebook running a while, and one account at the end.

Plain lines through Sphinx's logger: readable in a CI log, no terminal control codes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sphinx.util import logging

if TYPE_CHECKING:
    from ..engine.core import Engine
    from ..engine.progress import Progress
    from ..engine.report import ExecutionReport
    from ..records import Record

__all__ = ["log_executing", "log_ran", "log_still_running", "log_summary", "record_label"]

logger = logging.getLogger("sphinx_nbcache")


def record_label(record: Record) -> str:
    """The page, and a variant's or a call's parameters."""
    if record.parameters is None:
        return record.page
    shown = json.dumps(dict(record.parameters), ensure_ascii=False, sort_keys=True, default=str)
    return f"{record.page} {shown if len(shown) <= 60 else shown[:57] + '...'}"


def log_executing(total: int) -> None:
    """The line before the first notebook runs."""
    logger.info(f"nbcache: executing {total} notebook{'' if total == 1 else 's'}")


def log_ran(record: Record, progress: Progress | None = None) -> None:
    """The line for one notebook executed (a run that could not start is no run), with how
    many are done of how many and which run now, for how long."""
    done = f" [{progress.line(record.key)}]" if progress is not None and progress.total else ""
    label = record_label(record)
    if record.status == "error":  # it never ran: not counted as executed
        logger.info(f"nbcache: {label} {record.explain()}{done}")
    else:
        logger.info(f"nbcache: ran {label} in {record.runtime:.2f} s ({record.explain()}){done}")
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


def log_still_running(progress: Progress) -> None:
    """Every ``nbcache_progress_interval`` seconds: the notebooks running that long."""
    line = progress.still_running()
    if line is not None:
        logger.info(f"nbcache: {line}")


def log_summary(engine: Engine, report: ExecutionReport) -> None:
    """The account of the build (every page, variant and call) and where the time went."""
    if not report.entries:
        return
    text = f"nbcache: {report.summary()}"
    timing = report.timing()
    if timing:
        text += f"; {timing}"
        text += (
            f" (planning {engine.plan_seconds:.2f} s, reading waited {engine.waited_seconds:.1f}"
            " s for results)"
        )
    logger.info(text)
