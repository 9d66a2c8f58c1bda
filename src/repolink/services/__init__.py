"""The service layer: what the CLI, the HTTP API, the web pages and the SSH server all call.

Each function takes an open :class:`sqlalchemy.orm.Session` (one transaction, owned by the
caller) plus whatever else it needs, and raises :class:`repolink.errors.RepolinkError`.
"""
