"""Accounts (service layer): users, API tokens, who may see and do what in a project, and the
audit log. Built by the application object: ``app.users``, ``app.api_tokens``, ``app.access``,
``app.audit``."""
