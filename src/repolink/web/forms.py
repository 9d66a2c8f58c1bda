"""Form errors: each service error shown next to the field it is about.

A handler catches the :class:`~repolink.errors.RepolinkError` a service raised for a form,
puts it into :class:`FormErrors` under the field it concerns (by its code, else the form as a
whole), and renders the form again with status :func:`status` — the template's
``macros.field_error(errors, "name")`` shows the error's code, message and fix beside the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from repolink.errors import RepolinkError

FORM = "_form"
"""The key of an error about the form as a whole (shown above its fields)."""


@dataclass(frozen=True)
class FieldError:
    code: str
    message: str
    hint: str


class FormErrors(dict[str, FieldError]):
    """Field name → the error shown beside it."""

    def add(
        self, error: RepolinkError, fields: Mapping[str, str] | None = None, default: str = FORM
    ) -> str:
        """Record ``error`` under the field ``fields`` maps its code to (else ``default``);
        the field it went to."""
        field = (fields or {}).get(error.code, default)
        self[field] = FieldError(error.code, error.message, error.hint)
        return field
