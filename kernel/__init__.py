"""The shared kernel: what every app builds on and none owns (docs/architecture.md, "The kernel").

Errors and their codes, the API base class and fields, paging, queueing on commit, backoff,
the process-local metrics and the typed reading of settings groups. It imports no app of the
project and not ``config``.
"""
