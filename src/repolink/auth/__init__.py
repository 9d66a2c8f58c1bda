"""Credentials of the HTTP APIs: hashed API tokens (core layer)."""
