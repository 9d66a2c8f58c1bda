"""repolink — private Git repositories over SSH deploy keys, and the host that grants them.

Where each kind of code lives, the words it uses and the security rules it keeps are in the
repository's docs/architecture.md; the code cites its sections as ``architecture.md#security``.
"""

from repolink.errors import RepolinkError
from repolink.settings import Settings

__version__ = "0.1.0"

__all__ = ["RepolinkError", "Settings", "__version__"]
