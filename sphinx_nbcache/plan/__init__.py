"""Find stale: for every page, its key, its stored results, and whether one still holds.

``memo`` and ``parse`` (reading pages at most once), ``freshness`` and ``environment`` (is a
stored result still valid: the files, kernel and packages it depended on), ``verdicts`` (the
one decision: cached, failed, stale and why, ...), ``stale`` (every page's verdict in one
batch), ``ordering`` (which stale page runs first), ``diff`` (what changed since cached).
"""
