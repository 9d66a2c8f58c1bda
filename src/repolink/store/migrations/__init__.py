"""Alembic migrations of repolink's database; run by :mod:`repolink.store.migrate`."""
