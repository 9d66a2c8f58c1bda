"""The OpenAPI documents describe the errors the APIs really answer (repolink.http.openapi)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from repolink.app import Repolink
from repolink.http.host_api import API_PREFIX, create_host_api
from repolink.http.openapi import ERROR_SCHEMA_NAME, with_error_responses
from repolink.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKEN = "openapi-test-admin-token"


def host_document(tmp_path: Path) -> dict[str, Any]:
    application = Repolink(Settings(data_dir=tmp_path, admin_token=SecretStr(TOKEN)))
    with TestClient(create_host_api(application)) as client:
        response = client.get(f"{API_PREFIX}/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for path_item in document["paths"].values()
        for method, operation in path_item.items()
        if method in {"get", "put", "post", "delete", "patch"}
    ]


def test_no_operation_documents_fastapis_422(tmp_path: Path) -> None:
    document = host_document(tmp_path)
    assert operations(document)
    for operation in operations(document):
        assert "422" not in operation["responses"]
        assert operation["responses"]["default"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"
        }
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_operations_taking_input_document_400_in_the_error_shape(tmp_path: Path) -> None:
    document = host_document(tmp_path)
    create = document["paths"][f"{API_PREFIX}/repositories/{{workspace}}/{{slug}}"]["post"]
    assert create["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
        f"/{ERROR_SCHEMA_NAME}"
    )
    error = document["components"]["schemas"][ERROR_SCHEMA_NAME]
    assert error["properties"]["error"]["required"] == ["code", "message", "hint"]


def test_a_validation_answer_matches_the_documented_shape(tmp_path: Path) -> None:
    application = Repolink(Settings(data_dir=tmp_path, admin_token=SecretStr(TOKEN)))
    with TestClient(create_host_api(application)) as client:
        response = client.get(
            f"{API_PREFIX}/repositories/acme",
            params={"pagelen": "many"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error"
    assert set(body["error"]) == {"code", "message", "hint"}


def test_documents_without_422_are_left_as_they_are() -> None:
    document = {"paths": {"/x": {"get": {"responses": {"200": {"description": "ok"}}}}}}
    responses = with_error_responses(document)["paths"]["/x"]["get"]["responses"]
    assert set(responses) == {"200", "default"}


def test_405_names_every_method_the_path_answers(tmp_path: Path) -> None:
    application = Repolink(Settings(data_dir=tmp_path, admin_token=SecretStr(TOKEN)))
    with TestClient(create_host_api(application)) as client:
        response = client.patch(
            f"{API_PREFIX}/repositories/acme/widgets",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert {"GET", "POST", "DELETE"} <= allowed
    assert "PATCH" not in allowed
