"""Credentials and callers: principals and roles, argon2 passwords, hashed API tokens (core
layer)."""
