"""Every git and ssh process repolink starts, and what it reads back (core layer).

The runner (hardened environment, key files, time limits), the smart protocol and ref listing
on shared SSH connections, remotes, mirrors, progress and line streams, and the diagnosis of a
failed run. Nothing here knows a project or a hosted repository: callers pass paths and URLs.
"""
