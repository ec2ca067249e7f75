"""The conductor of a run: plan -> order -> submit -> store -> wait -> merge -> report.

``core`` (:class:`~sphinx_nbcache.engine.core.Engine`, driven by Sphinx, the API and the CLI
alike), ``jobs`` (a stale page -> the job an executor runs), ``runner`` (joins any executor to
the store), ``leases`` (one execution per key across builds sharing a store), ``artifacts``
(files notebooks wrote, put back), ``report`` (what a run did).
"""
