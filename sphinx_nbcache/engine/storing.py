"""Storing an executed job's outcome: the one place it is written to the store.

:func:`store_outcome` is called by the runner's storing thread, or, for an executor that runs
apart from the build (``ProcessExecutor.store_with``), by a :class:`StoreApart` in the
executor's process, so that the build's interpreter does none of the work.
"""

from __future__ import annotations

from ..execute import Job, Outcome
from ..records import Dependencies, Record
from ..store import Store, StoreLocation

__all__ = ["StoreApart", "store_outcome"]


def store_outcome(store: Store, job: Job, outcome: Outcome) -> Outcome:
    """Store a job's outcome (blobs, then its row: one transaction): the one place."""
    record = store.put(
        _with_declared(outcome.record, job),
        outcome.outputs,
        outcome.artifacts,
        variant=job.variant,
    )
    return Outcome(record, outcome.outputs)


class StoreApart:
    """Stores outcomes where the executor runs (``ProcessExecutor.store_with``), on the store
    reopened there from its location (pickled, only that travels): the stored record returns."""

    def __init__(self, location: StoreLocation) -> None:
        self.location = location
        self._store: Store | None = None

    def __reduce__(self) -> tuple[type[StoreApart], tuple[StoreLocation]]:
        return StoreApart, (self.location,)  # not the store opened here

    def prepare(self) -> Store:
        if self._store is None:
            self._store = self.location.open()
            self._store.open()
        return self._store

    def __call__(self, job: Job, outcome: Outcome) -> Outcome:
        return Outcome(store_outcome(self.prepare(), job, outcome).record, None, stored=True)

    def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store.close()


def _with_declared(record: Record, job: Job) -> Record:
    """The record with the job's parameters, and its declared dependencies among its
    recorded files."""
    if job.parameters is not None:
        record = record._replace(parameters=dict(job.parameters))
    if not job.declared or record.status == "error":
        return record
    deps = record.dependencies or Dependencies()
    files = tuple(sorted({**dict(deps.files), **dict(job.declared)}.items()))
    return record._replace(dependencies=deps._replace(files=files))
