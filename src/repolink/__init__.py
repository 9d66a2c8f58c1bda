"""repolink — private Git repositories over SSH deploy keys, and the host that grants them."""

from repolink.errors import RepolinkError
from repolink.settings import Settings

__version__ = "0.1.0"

__all__ = ["RepolinkError", "Settings", "__version__"]
