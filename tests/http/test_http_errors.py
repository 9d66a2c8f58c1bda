"""The one error mapping of the HTTP APIs: every failure answers in one JSON shape."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from repolink.errors import (
    Conflict,
    GitError,
    KeyFormatError,
    NotFound,
    PermissionDenied,
    RepolinkError,
    Unauthorized,
    ValidationError,
)
from repolink.http.errors import (
    MAX_LISTED_PROBLEMS,
    describe_validation_problems,
    http_status_of,
    install_error_handlers,
)

with warnings.catch_warnings():
    # Starlette asks for another HTTP client library in its test client; httpx is ours.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

# Looks like key material; must never come back in an answer.
SECRET_LOOKING = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"


class Body(BaseModel):
    count: int
    name: str


ERRORS: dict[str, RepolinkError] = {
    "invalid": ValidationError("slug_invalid", "that is not a valid slug", "use letters"),
    "key": KeyFormatError("key_is_private", "this is a private key", "give the public half"),
    "missing": NotFound("repository_not_found", "no such repository", "list them"),
    "conflict": Conflict("repository_exists", "it exists already", "choose another"),
    "auth": Unauthorized("unauthorized", "authentication required", "send a token"),
    "denied": PermissionDenied("read_only_key", "this access key is read-only", "ask"),
    "git": GitError("git_failed", "git failed", "retry"),
}


def build_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise/{name}")
    def raise_named(name: str) -> None:
        raise ERRORS[name]

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError(f"database password is {SECRET_LOOKING}")

    @app.post("/body")
    def take_body(body: Body) -> dict[str, int]:
        return {"count": body.count}

    @app.get("/number/{value}")
    def number(value: int) -> dict[str, int]:
        return {"value": value}

    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(build_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def assert_error_shape(payload: object, code: str) -> dict[str, str]:
    assert isinstance(payload, dict)
    assert payload["type"] == "error"
    error = payload["error"]
    assert set(error) == {"code", "message", "hint"}
    assert error["code"] == code
    assert all(isinstance(value, str) for value in error.values())
    return dict(error)


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_repolink_errors_answer_with_their_status_and_code(client: TestClient, name: str) -> None:
    expected = ERRORS[name]
    response = client.get(f"/raise/{name}")
    assert response.status_code == http_status_of(expected)
    error = assert_error_shape(response.json(), expected.code)
    assert error == expected.as_dict()


def test_401_names_the_bearer_scheme(client: TestClient) -> None:
    response = client.get("/raise/auth")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_unexpected_exception_is_500_without_detail(client: TestClient) -> None:
    response = client.get("/boom")
    assert response.status_code == 500
    error = assert_error_shape(response.json(), "internal_error")
    assert SECRET_LOOKING not in response.text
    assert "RuntimeError" not in response.text
    assert "password" not in error["message"]


def test_validation_error_is_400_naming_fields_not_values(client: TestClient) -> None:
    response = client.post("/body", json={"count": SECRET_LOOKING})
    assert response.status_code == 400
    error = assert_error_shape(response.json(), "invalid_request")
    assert "body.count" in error["message"]
    assert "body.name" in error["message"]
    assert SECRET_LOOKING not in response.text


def test_invalid_json_is_400(client: TestClient) -> None:
    response = client.post(
        "/body",
        content=b'{"count": ' + SECRET_LOOKING.encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid_request")
    assert SECRET_LOOKING not in response.text


def test_bad_path_parameter_is_400(client: TestClient) -> None:
    response = client.get("/number/not-a-number")
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid_request")


def test_unknown_route_is_404_in_the_same_shape(client: TestClient) -> None:
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert_error_shape(response.json(), "not_found")


def test_wrong_method_is_405_in_the_same_shape(client: TestClient) -> None:
    response = client.delete("/body")
    assert response.status_code == 405
    assert_error_shape(response.json(), "method_not_allowed")


def test_validation_message_lists_a_bounded_number_of_problems() -> None:
    problems = [{"loc": ("body", f"field{i}"), "msg": "Field required"} for i in range(9)]
    message = describe_validation_problems(problems)
    assert message.count("Field required") == MAX_LISTED_PROBLEMS
    assert f"and {9 - MAX_LISTED_PROBLEMS} more" in message


def test_validation_message_skips_locations_that_are_not_plain_names() -> None:
    problems = [{"loc": ("body", SECRET_LOOKING + "+/="), "msg": "Extra inputs are not permitted"}]
    message = describe_validation_problems(problems)
    assert SECRET_LOOKING not in message
    assert "body: Extra inputs are not permitted" in message
