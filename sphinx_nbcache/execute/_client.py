"""The nbclient client every executor drives a kernel with: bounded output, and the kernel's
"I am waiting" signal taken out of the outputs and handed to the executor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nbclient import NotebookClient

from .inkernel import WAIT_MIME

__all__ = ["BoundedClient"]


class BoundedClient(NotebookClient):
    """An nbclient client that keeps at most ``output_limit`` bytes of stream text per cell,
    so a cell printing gigabytes cannot exhaust memory (the rest is replaced by a note), and
    hands a kernel's wait signals (:data:`~sphinx_nbcache.execute.inkernel.WAIT_MIME`) to
    ``on_wait`` instead of keeping them as outputs."""

    output_limit = 0
    on_wait: Callable[[bool], Any] | None = None

    def output(
        self, outs: list[Any], msg: dict[str, Any], display_id: str | None, cell_index: int
    ) -> Any:
        if msg["msg_type"] == "display_data":
            data = msg["content"].get("data") or {}
            if WAIT_MIME in data:
                signal = data[WAIT_MIME]
                if self.on_wait is not None and isinstance(signal, dict):
                    self.on_wait(bool(signal.get("waiting")))
                return None
        limit = self.output_limit
        if limit and msg["msg_type"] == "stream":
            kept = sum(len(o.get("text", "")) for o in outs if o.get("output_type") == "stream")
            text = msg["content"].get("text", "")
            if kept + len(text) > limit:
                room = max(0, limit - kept)
                self.dropped[cell_index] = self.dropped.get(cell_index, 0) + len(text) - room
                if room == 0:
                    return None
                msg = {**msg, "content": {**msg["content"], "text": text[:room]}}
        return super().output(outs, msg, display_id, cell_index)

    @property
    def dropped(self) -> dict[int, int]:
        """Characters of stream output cut, by cell index."""
        found: dict[int, int] | None = self.__dict__.get("_nbcache_dropped")
        if found is None:
            found = self.__dict__["_nbcache_dropped"] = {}
        return found
