"""A property-based run over the service's OpenAPI document (issue 11 §8): schemathesis
generates requests for every operation — valid ones and ones that break the schema — and no
answer may be a 500, carry an undocumented status or content type, or break its documented
schema. Every API of ``repolink serve`` is in the document, so every router added to
:data:`repolink.http.service_app.ROUTERS` is covered without changing this file.

Checks left out, on purpose:
- ``positive_data_acceptance``: the document cannot say everything the services check (a
  workspace name's grammar, a key's format), so a schema-valid request may rightly be refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from pydantic import SecretStr
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import APIOperation, BaseSchema

from repolink.app import Repolink
from repolink.http.service_app import OPENAPI_URL, create_service_app
from repolink.settings import Settings

pytestmark = pytest.mark.databases

TOKEN = "schema-run-admin-token"
# Statuses that rightly refuse a request breaking the schema (413: a body over the limit is
# refused before it is read, which is the point of the limit).
REFUSALS = ["400", "401", "403", "404", "405", "409", "413", "415"]
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}}
)
EXAMPLES_PER_OPERATION = 12


@pytest.fixture
def service_schema(tmp_path: Path) -> Iterator[BaseSchema]:
    settings = Settings(data_dir=tmp_path / "data", admin_token=SecretStr(TOKEN))
    with Repolink(settings) as application:
        # Something to find, so that the generated requests reach past "not found".
        application.projects.create_project("Demo", slug="demo")
        application.host.create_repository("acme", "widgets")
        app = create_service_app(application, ssh_url_base="ssh://git@127.0.0.1:2222")
        yield schemathesis.openapi.from_asgi(OPENAPI_URL, app, config=CONFIG)


def check_operation(operation: APIOperation) -> None:
    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {TOKEN}"},
            excluded_checks=[schemathesis.checks.positive_data_acceptance],
        )

    check()


# One test over every operation of the document: schemathesis's own pytest loader cannot take
# the app from a fixture under this pytest, and the app must not be built at import.
@pytest.mark.slow
def test_no_operation_answers_500_or_breaks_its_schema(service_schema: BaseSchema) -> None:
    operations = [result.ok() for result in service_schema.get_all_operations()]
    assert len(operations) > 10
    failures: list[str] = []
    for operation in operations:
        try:
            check_operation(operation)
        except Exception as exc:  # collect them all: one run names every broken operation
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
