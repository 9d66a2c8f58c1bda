from __future__ import annotations

import pytest

from repolink import errors
from repolink.cli.errors import exit_code_of
from repolink.http.errors import http_status_of


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
        (errors.RateLimited, 429, 1),
        (errors.PermissionDenied, 403, 1),
        (errors.GitError, 502, 1),
        (errors.FetchError, 502, 1),
        (errors.HostAPIError, 502, 1),
        (errors.VaultError, 500, 1),
        (errors.StoreError, 503, 1),
        (errors.HostKeyError, 500, 1),
        (errors.RepolinkError, 500, 1),
    ],
)
def test_every_branch_has_its_http_status_and_exit_code(
    cls: type[errors.RepolinkError], status: int, exit_code: int
) -> None:
    exc = cls("some_code", "message")
    assert isinstance(exc, errors.RepolinkError)
    assert http_status_of(exc) == status
    assert exit_code_of(exc) == exit_code


@pytest.mark.parametrize(
    ("exc", "status", "exit_code"),
    [
        (errors.DuplicateKey("access_key_duplicate", "m"), 400, 2),  # Bitbucket's status
        (errors.InvalidURL("url_https", "m", "h"), 400, 2),
        (errors.InvalidPrivateKey("key_truncated", "m", "h"), 400, 2),
        (errors.SubmoduleURLError("url_file", "m", "h"), 400, 2),
        (errors.SubmoduleFetchError("auth_failed", "m"), 502, 1),
    ],
)
def test_the_leaves_map_through_their_nearest_branch(
    exc: errors.RepolinkError, status: int, exit_code: int
) -> None:
    assert (http_status_of(exc), exit_code_of(exc)) == (status, exit_code)


@pytest.mark.parametrize(
    ("exc", "exit_code"),
    [
        # 2: the input is wrong.
        (errors.InvalidURL("url_https", "m", "h"), 2),
        (errors.ValidationError("invalid_usage", "m"), 2),
        (errors.ValidationError("confirmation_required", "m"), 2),
        (errors.NotFound("project_not_found", "m"), 2),
        (errors.NotFound("workspace_not_found", "m"), 2),
        (errors.NotFound("repository_not_found", "m"), 2),
        (errors.NotFound("access_key_not_found", "m"), 2),
        # 1: tried and failed — the network, a host key, authentication, a remote, a host API.
        (errors.FetchError("auth_failed", "m"), 1),
        (errors.FetchError("host_key_unknown", "m"), 1),
        (errors.FetchError("repo_not_found", "m"), 1),
        (errors.GitError("dns_failed", "m"), 1),
        (errors.GitError("host_key_fingerprint_mismatch", "m"), 1),
        (errors.HostAPIError("host_api_unauthorized", "m"), 1),
        (errors.HostAPIError("host_repository_not_found", "m"), 1),
        (errors.RepolinkError("confirmation_declined", "m"), 1),
    ],
    ids=lambda value: getattr(value, "code", str(value)),
)
def test_the_exit_status_rule_by_code(exc: errors.RepolinkError, exit_code: int) -> None:
    """The rule of issue 10 §1.2 over the codes one flow meets: a remote's "not found" is a
    failed operation (1), this caller's unknown name is wrong input (2)."""
    assert exit_code_of(exc) == exit_code


def test_reason_is_a_declared_field_with_the_precise_code() -> None:
    assert errors.ValidationError("bad_slug", "m").reason is None
    refused = errors.InvalidURL("url_https", "an https URL", "use the SSH URL")
    assert (refused.code, refused.reason) == ("invalid_url", "url_https")


def test_every_error_class_lives_in_the_errors_module() -> None:
    def subclasses(cls: type[errors.RepolinkError]) -> list[type[errors.RepolinkError]]:
        found = []
        for sub in cls.__subclasses__():
            found += [sub, *subclasses(sub)]
        return found

    _import_every_module()
    outside = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in subclasses(errors.RepolinkError)
        if cls.__module__ != "repolink.errors" and cls.__module__.startswith("repolink")
    ]
    assert outside == []


def _import_every_module() -> None:
    import importlib
    import pkgutil

    import repolink

    for info in pkgutil.walk_packages(repolink.__path__, "repolink."):
        # __main__ runs the CLI when imported; migrations are scripts Alembic loads.
        if ".migrations" not in info.name and not info.name.endswith("__main__"):
            importlib.import_module(info.name)


def test_repr_names_the_code_not_the_hint() -> None:
    exc = errors.ValidationError("bad_slug", "slug is invalid", "use lowercase")
    assert repr(exc) == "ValidationError(code='bad_slug', message='slug is invalid')"


def test_recast_keeps_hint_reason_and_context() -> None:
    refused = errors.GitError(
        "host_key_unknown", "not trusted", "trust it", reason="unreported", context={"host": "h"}
    )
    fetch = refused.recast(errors.FetchError, message="fetch: not trusted")
    assert isinstance(fetch, errors.FetchError)
    assert (fetch.code, fetch.message, fetch.hint) == (
        "host_key_unknown",
        "fetch: not trusted",
        "trust it",
    )
    assert (fetch.reason, fetch.context) == ("unreported", {"host": "h"})
    assert refused.recast(errors.FetchError, code="git_failed").code == "git_failed"
