"""Workspace and repository names of the built-in host, the repository paths clients send, and
a repository's description.

Names are validated once, here; everything downstream (the database, the SSH command parser)
receives only names that passed. Repository directories on disk never use these names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from repolink.errors import ValidationError

MAX_NAME_LENGTH = 62
MAX_DESCRIPTION_LENGTH = 4000
_NAME = re.compile(r"[a-z0-9_][a-z0-9_.-]*")
_RULE = (
    "1–62 lowercase letters, digits, '-', '_' or '.', not starting with '.' or '-', "
    "without '..' and not ending in '.git'"
)


def _is_valid_name(text: str) -> bool:
    return (
        len(text) <= MAX_NAME_LENGTH
        and _NAME.fullmatch(text) is not None
        and ".." not in text
        # A slug ending in .git would make 'ws/x.git' ambiguous between two repositories.
        and not text.endswith(".git")
    )


def validate_workspace(text: str) -> str:
    """The workspace name ``text``, or :class:`ValidationError` ``workspace_invalid``."""
    if not _is_valid_name(text):
        raise ValidationError(
            "workspace_invalid",
            "that is not a valid workspace name",
            f"a workspace name is {_RULE}",
        )
    return text


def validate_slug(text: str) -> str:
    """The repository slug ``text``, or :class:`ValidationError` ``slug_invalid``."""
    if not _is_valid_name(text):
        raise ValidationError(
            "slug_invalid",
            "that is not a valid repository slug",
            f"a repository slug is {_RULE}",
        )
    return text


def validate_description(text: str) -> str:
    """A repository's description: printable text and line breaks, at most 4000 characters."""
    if len(text) > MAX_DESCRIPTION_LENGTH or not all(
        char.isprintable() or char in "\n\r\t" for char in text
    ):
        raise ValidationError(
            "description_invalid",
            f"a repository description is at most {MAX_DESCRIPTION_LENGTH} printable characters "
            "and line breaks",
            "shorten the description or remove its control characters",
        )
    return text


@dataclass(frozen=True)
class RepositoryName:
    """A validated ``workspace/slug`` pair."""

    workspace: str
    slug: str

    @property
    def full_name(self) -> str:
        return f"{self.workspace}/{self.slug}"


def parse_full_name(text: str) -> RepositoryName:
    """``WS/SLUG`` as an admin types it (CLI arguments); ``.git`` and one leading '/' tolerated."""
    name = parse_repository_path(text)
    if name is None:
        raise ValidationError(
            "repository_name_invalid",
            "a repository is named WORKSPACE/SLUG",
            f"for example 'team/app'; workspace and slug are each {_RULE}",
        )
    return name


def parse_repository_path(text: str) -> RepositoryName | None:
    """The repository a git client asks for, or ``None`` when the path is not one we serve.

    Accepted spellings: ``ws/slug``, ``ws/slug.git``, ``/ws/slug``, ``/ws/slug.git``. Anything
    else — more components, ``..``, options, other absolute paths — is ``None``.
    """
    path = text[1:] if text.startswith("/") else text
    path = path.removesuffix(".git")
    parts = path.split("/")
    if len(parts) != 2 or not all(_is_valid_name(part) for part in parts):
        return None
    return RepositoryName(parts[0], parts[1])
