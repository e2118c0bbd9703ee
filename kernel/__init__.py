"""The shared kernel: what every app builds on and none owns (docs/architecture.md, "The kernel").

Errors and their codes, the API base class and fields, paging, queueing on commit, backoff and
the process-local metrics. It imports no app of the project and not ``config``.
"""
