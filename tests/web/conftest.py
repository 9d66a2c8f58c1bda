"""The pages' tests share one application per test: the data directory of ``settings``, cheap
argon2, and a clock the test moves."""

from support.accountskit import app, clock

__all__ = ["app", "clock"]
