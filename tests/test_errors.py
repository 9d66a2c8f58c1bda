from __future__ import annotations

import pytest

from repolink import errors


def test_one_line_joins_code_message_and_hint_on_a_single_line() -> None:
    exc = errors.KeyFormatError("key_is_public", "this is a public key", "paste the private\nfile")
    assert exc.one_line() == "key_is_public: this is a public key — paste the private file"
    assert "\n" not in exc.one_line()


def test_as_dict_is_what_the_api_puts_in_its_error_body() -> None:
    exc = errors.NotFound("repository_not_found", "no such repository", "check the path")
    assert exc.as_dict() == {
        "code": "repository_not_found",
        "message": "no such repository",
        "hint": "check the path",
    }


@pytest.mark.parametrize(
    ("cls", "status", "exit_code"),
    [
        (errors.KeyFormatError, 400, 2),
        (errors.URLError, 400, 2),
        (errors.ValidationError, 400, 2),
        (errors.NotFound, 404, 2),
        (errors.Conflict, 409, 2),
        (errors.Unauthorized, 401, 1),
        (errors.PermissionDenied, 403, 1),
        (errors.GitError, 502, 1),
    ],
)
def test_every_branch_has_its_http_status_and_exit_code(
    cls: type[errors.RepolinkError], status: int, exit_code: int
) -> None:
    exc = cls("some_code", "message")
    assert isinstance(exc, errors.RepolinkError)
    assert exc.http_status == status
    assert exc.exit_code == exit_code


def test_repr_names_the_code_not_the_hint() -> None:
    exc = errors.ValidationError("bad_slug", "slug is invalid", "use lowercase")
    assert repr(exc) == "ValidationError(code='bad_slug', message='slug is invalid')"
