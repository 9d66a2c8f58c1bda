"""The accounts services' tests share one application per test (a module may define its own):
the data directory of ``settings``, cheap argon2, and a clock the test moves."""

from support.accountskit import app, clock

__all__ = ["app", "clock"]
