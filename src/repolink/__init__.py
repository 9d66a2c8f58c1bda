"""repolink — private Git repositories over SSH deploy keys, and the host that grants them.

Where each kind of code lives, the words it uses and the security rules it keeps are in the
repository's docs/architecture.md; the code cites its sections as ``architecture.md#security``.
"""

from typing import TYPE_CHECKING, Any

from repolink.errors import RepolinkError

if TYPE_CHECKING:
    from repolink.settings import Settings

__version__ = "0.1.0"

__all__ = ["RepolinkError", "Settings", "__version__"]


def __getattr__(name: str) -> Any:
    # `Settings` on first use: every `repolink` command imports this package, and a command
    # such as `--help` has no use for pydantic (issue 10 §2).
    if name == "Settings":
        from repolink.settings import Settings

        return Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
