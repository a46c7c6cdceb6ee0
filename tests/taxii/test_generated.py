"""Generated requests against the server's own OpenAPI description (schemathesis): no input
produces a 5xx, and every response, error or not, is TAXII JSON with the right shape."""

import base64

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from liaison.demo import DEFAULT_ALLIANCE, DEFAULT_DOCUMENTS, DEFAULT_INTELLIGENCE, run_demo
from liaison.settings import InputLimits, Settings
from liaison.store.engine import write_transaction
from liaison.taxii.app import create_app
from liaison.taxii.credentials import issue_credentials
from tests.conftest import examples

TAXII = "application/taxii+json;version=2.1"


@pytest.fixture
def taxii_schema(tmp_path):
    settings_ = Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'liaison.db'}",
        limits=InputLimits(),
        validation_workers=1,
    )
    node = run_demo(settings_, DEFAULT_DOCUMENTS, DEFAULT_ALLIANCE, DEFAULT_INTELLIGENCE).node
    with write_transaction(node.engine) as connection:
        issued = issue_credentials(connection, "USA")
    pytest.taxii_auth = (
        "Basic " + base64.b64encode(f"{issued.username}:{issued.password}".encode()).decode()
    )
    return schemathesis.openapi.from_asgi("/taxii2/openapi.json", create_app(node))


def test_no_server_error_and_taxii_shapes(taxii_schema):
    operations = [result.ok() for result in taxii_schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=examples(25),
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case):
            response = case.call(headers={"Authorization": pytest.taxii_auth, "Accept": TAXII})
            where = f"{case.method} {case.formatted_path}"
            assert response.status_code < 500, f"{where}: {response.text}"
            content_type = response.headers["content-type"]
            if isinstance(content_type, list):
                content_type = content_type[0]
            assert content_type == TAXII, where
            if response.status_code >= 400:
                body = response.json()
                assert body["http_status"] == str(response.status_code) and body["title"]
            elif case.method == "GET":
                assert isinstance(response.json(), dict), where

        check()
