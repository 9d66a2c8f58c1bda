"""The one kind of remote command the host runs: a git service on one repository.

Both the embedded SSH server and OpenSSH mode hand the client's command text to
:func:`parse_git_command`; nothing else ever interprets it, and no shell ever sees it. Refusal
messages never echo the command, which could carry anything.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Literal

from repolink.errors import ValidationError
from repolink.host.naming import RepositoryName, parse_repository_path

Verb = Literal["read", "write"]

# program → what it needs from the key's grant
GIT_SERVICES: dict[str, Verb] = {
    "git-upload-pack": "read",
    "git-upload-archive": "read",
    "git-receive-pack": "write",
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What `GIT_PROTOCOL` may carry: colon-separated key=value items such as "version=2".
_GIT_PROTOCOL = re.compile(
    r"[A-Za-z0-9._-]+(=[A-Za-z0-9._-]*)?(:[A-Za-z0-9._-]+(=[A-Za-z0-9._-]*)?)*"
)
# A git client sends a few dozen characters. The cap comes before any parsing: ``shlex`` takes
# about a second over 240 KB, long enough for a few such commands to starve every other client.
MAX_COMMAND_LENGTH = 4096
_USAGE = "clone, fetch or push with git, e.g. git clone git@HOST:WORKSPACE/SLUG.git"


@dataclass(frozen=True)
class GitCommand:
    """A parsed, allowed command: which git service, on which repository."""

    program: str
    repository: RepositoryName

    @property
    def verb(self) -> Verb:
        return GIT_SERVICES[self.program]

    @property
    def repository_path(self) -> str:
        return self.repository.full_name


def _refused(code: str, message: str, hint: str = _USAGE) -> ValidationError:
    return ValidationError(code, message, hint)


def parse_git_command(text: str | None) -> GitCommand:
    """The git service and repository asked for by an SSH ``exec`` request.

    Raises :class:`ValidationError` (``shell_refused``, ``command_too_long``,
    ``command_refused``, ``command_arguments``, ``repository_path_invalid``) for anything else.
    """
    if text is not None and len(text) > MAX_COMMAND_LENGTH:
        raise _refused(
            "command_too_long",
            f"the command is longer than {MAX_COMMAND_LENGTH} characters",
        )
    if text is None or not text.strip():
        raise _refused(
            "shell_refused", "this host serves git only; interactive shells are not provided"
        )
    if _CONTROL.search(text):
        raise _refused("command_refused", "control characters are not allowed in a command")
    try:
        words = shlex.split(text)
    except ValueError:
        raise _refused("command_refused", "the command is not well quoted") from None
    if len(words) >= 2 and words[0] == "git" and f"git-{words[1]}" in GIT_SERVICES:
        words = [f"git-{words[1]}", *words[2:]]
    if not words or words[0] not in GIT_SERVICES:
        raise _refused(
            "command_refused",
            "only git-upload-pack, git-receive-pack and git-upload-archive are allowed",
        )
    program, arguments = words[0], words[1:]
    if len(arguments) != 1:
        raise _refused("command_arguments", f"{program} takes exactly one repository path")
    path = arguments[0]
    repository = None
    if not path.startswith("-") and ".." not in path:
        repository = parse_repository_path(path)
    if repository is None:
        raise _refused(
            "repository_path_invalid",
            "a repository path looks like 'workspace/slug.git'",
        )
    return GitCommand(program, repository)


def accepted_git_protocol(value: str | None) -> str | None:
    """``value`` if it is a well-formed ``GIT_PROTOCOL`` (e.g. ``version=2``), else ``None``."""
    if value is None or len(value) > 256 or not _GIT_PROTOCOL.fullmatch(value):
        return None
    return value
