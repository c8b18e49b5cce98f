"""schemathesis against a real server: no 5xx, and every response matches /openapi.json."""

import asyncio
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.runtime_server import Keys, ServerProcess

pytestmark = pytest.mark.e2e
MAX_EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    process = ServerProcess(tmp_path_factory.mktemp("fuzz")).start()

    async def make_key() -> str:
        keys = Keys(process.database_url)
        try:
            return await keys.key()
        finally:
            await keys.close()

    try:
        yield process, asyncio.run(make_key())
    finally:
        process.stop()


def test_api_conforms_to_its_openapi_document(fuzz_server: tuple[ServerProcess, str]) -> None:
    process, key = fuzz_server
    schema = schemathesis.openapi.from_url(f"{process.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 13
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def conforms(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=process.base_url, headers={"x-api-key": key}, checks=CHECKS, timeout=30)

        conforms()
