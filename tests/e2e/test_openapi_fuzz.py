"""schemathesis against a real server: no 5xx, and every response matches /openapi.json."""

import asyncio
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


# Issue 14 item 8 over real HTTP: the odd-input classes in query strings, headers and bodies of every operation.
odd_values = st.one_of(
    st.sampled_from(["²", "٣", "１２", "9" * 26, "-1", "\x00", "\ud800"]),
    st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=20),
)


def test_odd_input_classes_get_no_5xx_and_no_sql(fuzz_server: tuple[ServerProcess, str]) -> None:
    process, key = fuzz_server
    schema = httpx.get(f"{process.base_url}/openapi.json").json()
    gets = [path for path, item in schema["paths"].items() if "get" in item and "{" not in path]

    @given(path=st.sampled_from(gets), name=st.sampled_from(["limit", "before", "cursor"]), value=odd_values)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def no_server_error(path: str, name: str, value: str) -> None:
        query = f"{name}={quote(value, errors='surrogatepass')}"
        response = httpx.get(f"{process.base_url}{path}?{query}", headers={"x-api-key": key}, timeout=30)
        assert response.status_code < 500, response.text
        assert "[SQL" not in response.text

    no_server_error()
    depth = 200_000
    deep = b'{"input": {"text": ' + b"[" * depth + b"]" * depth + b"}}"
    for body in (deep, b'{"input": {"text": "\\ud800"}}', b'{"title": "a\\u0000b"}'):
        for path in ("/api/runtime/tools/example_echo", "/api/runtime/sessions"):
            response = httpx.post(f"{process.base_url}{path}", content=body, headers={"x-api-key": key}, timeout=30)
            assert response.status_code == 400, response.text
