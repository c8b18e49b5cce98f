"""Fuzzing the credential headers against the real ASGI app with raw header bytes.

httpx refuses many of these headers (non-latin-1 bytes, control characters), so the
tests call the app with crafted ASGI scopes. Hypothesis drives a synchronous test; the
app, its lifespan and the requests live in an anyio blocking portal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio.from_thread
import pytest
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from auth.keys import KEY_ID_LENGTH, SECRET_LENGTH, format_key, parse_key, random_base62
from server.app import create_app
from server.settings import Settings
from server.state import AppState
from tests.conftest import migrate
from tests.helpers import KeyFactory

MESSAGES = {
    "missing_api_key": "Missing API key",
    "invalid_api_key": "Invalid API key",
    "conflicting_credentials": "Conflicting credentials",
}
CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")


@dataclass
class Fuzzed:
    portal: anyio.from_thread.BlockingPortal
    app: Starlette
    key: str

    @property
    def state(self) -> AppState:
        return self.app.state.capgate

    def get(self, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[bytes, list[bytes]], bytes]:
        return self.portal.call(self._get, headers)

    def request(
        self, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, dict[bytes, list[bytes]], bytes]:
        return self.portal.call(self._get, headers, method, path, query, body)

    async def _get(
        self,
        headers: list[tuple[bytes, bytes]],
        method: str = "GET",
        path: str = "/capabilities",
        query: bytes = b"",
        body: bytes = b"",
    ) -> tuple[int, dict[bytes, list[bytes]], bytes]:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
            "headers": [(b"host", b"capgate.test"), *headers], "client": ("127.0.0.1", 50000),
            "server": ("capgate.test", 80),
        }  # fmt: skip
        messages: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)

        await self.app(scope, receive, send)
        start = next(m for m in messages if m["type"] == "http.response.start")
        response_headers: dict[bytes, list[bytes]] = {}
        for name, value in start.get("headers", []):
            response_headers.setdefault(name.lower(), []).append(value)
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        return start["status"], response_headers, body


@pytest.fixture
def fuzzed(settings: Settings) -> Iterator[Fuzzed]:
    with anyio.from_thread.start_blocking_portal() as portal:
        portal.call(migrate, settings.resolved_database_url)
        app = create_app(settings)

        async def lifespan() -> LifespanManager:  # it looks for the running event loop when built
            return LifespanManager(app)

        with portal.wrap_async_context_manager(portal.call(lifespan)):
            state: AppState = app.state.capgate
            factory = KeyFactory(sessions=state.sessions, hasher=state.hasher, verifier=state.verifier)

            async def make_key() -> str:
                return await factory.key(await factory.organization(), scopes=["runtime", "keys:manage"])

            yield Fuzzed(portal, app, portal.call(make_key))


# Tokens stand for the real key and its near misses; the test swaps in the real values.
REAL, WRONG_SECRET, UNKNOWN_ID, BAD_CHECKSUM = "<real>", "<wrong-secret>", "<unknown-id>", "<bad-checksum>"


def concrete(token: str, key: str) -> str:
    key_id = key[8 : 8 + KEY_ID_LENGTH]
    if token == REAL:
        return key
    if token == WRONG_SECRET:
        return format_key("live", key_id, random_base62(SECRET_LENGTH))
    if token == UNKNOWN_ID:
        return format_key("live", random_base62(KEY_ID_LENGTH), random_base62(SECRET_LENGTH))
    if token == BAD_CHECKSUM:
        return key[:-1] + ("A" if key[-1] != "A" else "B")
    return token


texts = st.one_of(
    st.sampled_from(["", " ", "\t", "  \t ", "\u00a0", "\x00", "\r", REAL, WRONG_SECRET, UNKNOWN_ID, BAD_CHECKSUM]),
    st.text(max_size=40),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=50, max_size=60),
)
schemes = st.sampled_from(
    ["Bearer", "bearer", "BEARER", "Basic", "Token", "Digest", "Bearer:", "", " Bearer", "ApiKey"]
)
separators = st.sampled_from([" ", "  ", "\t", "", " \t "])


@st.composite
def header_value(draw: st.DrawFn) -> tuple[str, bytes | str]:
    """A value as text (tokens still to be replaced) or, for raw byte fuzzing, as bytes."""
    kind = draw(st.sampled_from(["real", "plain", "scheme", "bytes", "huge"]))
    if kind == "real":
        return "text", draw(st.sampled_from([REAL, f"Bearer {REAL}", f" {REAL}\t", f"bearer   {REAL} "]))
    if kind == "plain":
        return "text", draw(texts)
    if kind == "scheme":
        return "text", draw(schemes) + draw(separators) + draw(texts) + draw(st.sampled_from(["", " ", " extra"]))
    if kind == "bytes":
        return "bytes", draw(st.binary(max_size=80))
    filler = draw(st.sampled_from(["a", " ", "\u00e9", "\u2603"]))
    return "text", draw(st.sampled_from(["", "Bearer "])) + filler * (64 * 1024)


header_names = st.sampled_from(
    [b"authorization", b"x-api-key", b"Authorization", b"X-API-Key", b"x-api-key ", b"proxy-authorization", b"cookie"]
)
header_lists = st.lists(st.tuples(header_names, header_value()), max_size=4)


def encode(value: tuple[str, bytes | str], key: str) -> bytes:
    kind, raw = value
    if kind == "bytes":
        assert isinstance(raw, bytes)
        return raw
    assert isinstance(raw, str)
    for token in (REAL, WRONG_SECRET, UNKNOWN_ID, BAD_CHECKSUM):
        while token in raw:
            raw = raw.replace(token, concrete(token, key), 1)
    return raw.encode("utf-8")  # raw UTF-8 bytes: the app sees them as latin-1


def could_reach_argon2(headers: list[tuple[bytes, bytes]]) -> bool:
    """True when some header value holds a well-formed key (right length, alphabet and checksum)."""
    return any(
        parse_key(word) is not None
        for _name, value in headers
        for word in value.decode("latin-1").split()
    )  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=header_lists)
def test_fuzzed_credential_headers_get_a_catalogue_answer_and_bad_checksums_never_reach_argon2(
    fuzzed: Fuzzed, drawn: list[tuple[bytes, tuple[str, bytes | str]]]
) -> None:
    headers = [(name, encode(value, fuzzed.key)) for name, value in drawn]
    runs_before = fuzzed.state.verifier.stats.argon2_runs

    status, response_headers, body = fuzzed.get(headers)

    assert status < 500
    event(f"status {status}")
    if not could_reach_argon2(headers):
        assert fuzzed.state.verifier.stats.argon2_runs == runs_before
    if status == 200:
        assert fuzzed.key.encode() in b"".join(value for _name, value in headers)
        assert "capabilities" in json.loads(body)
        return
    assert status == 401
    document = json.loads(body)
    assert set(document) == {"error", "code"}
    event(document["code"])
    assert MESSAGES[document["code"]] == document["error"]
    assert response_headers[b"www-authenticate"] == [
        f'Bearer error="invalid_token", error_description="{document["error"]}"'.encode()
    ]
    if not any(name.lower() in CREDENTIAL_HEADERS for name, _value in headers):
        assert document["code"] == "missing_api_key"


def test_bad_checksums_and_random_strings_never_run_argon2(fuzzed: Fuzzed) -> None:
    """The count the fuzz test relies on, shown directly: a flood of near misses, zero argon2 runs."""
    runs_before = fuzzed.state.verifier.stats.argon2_runs
    for _ in range(50):
        for value in (concrete(BAD_CHECKSUM, fuzzed.key), random_base62(58), "cg_live_" + random_base62(50)):
            status, _headers, _body = fuzzed.get([(b"x-api-key", value.encode())])
            assert status == 401
    assert fuzzed.state.verifier.stats.argon2_runs == runs_before
    assert fuzzed.state.verifier.stats.checksum_rejections >= 150


# Issue 14 item 8: the classes of odd input that used to give 500s, drawn at random into every place they fit.
odd_numbers = st.one_of(
    st.sampled_from(["²", "٣", "１２", "0", "-1", "1e3", " 1", "9" * 26, "9" * 19, "\x00"]),
    st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=30),
    st.integers(min_value=0, max_value=10**30).map(str),
)
odd_texts = st.one_of(
    st.sampled_from(["\x00", "a\x00b", "\ud800", "k\udfff", "\u202e", "\ufeff"]),
    st.text(alphabet=st.characters(codec=None, exclude_categories=[]), max_size=20),
)


@st.composite
def odd_json(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["deep", "surrogate", "text"]))
    if kind == "deep":
        depth = draw(st.integers(min_value=900, max_value=60_000))
        return b'{"input": {"text": ' + b"[" * depth + b"]" * depth + b'}, "name": "n", "title": "t"}'
    text = draw(odd_texts)
    field = draw(st.sampled_from(["name", "title", "text", "content", "path"]))
    document = {field: text, "input": {field: text, "path": "/a.md", "content": text}, "scopes": ["runtime"]}
    encoded = json.dumps(document)  # escapes lone surrogates and NUL as \\uXXXX, the way clients send them
    return encoded.encode()


odd_requests = st.one_of(
    st.tuples(st.just("GET"), st.sampled_from(["/api/runtime/sessions", "/api/audit"]),
              st.sampled_from(["limit", "before"]), odd_numbers, st.just(b"")),
    st.tuples(st.just("POST"), st.sampled_from([
        "/api/runtime/tools/example_echo", "/api/runtime/tools/memory_write", "/api/runtime/sessions", "/api/keys",
    ]), st.just(""), st.just(""), odd_json()),
)  # fmt: skip


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=odd_requests, last_event_id=odd_numbers)
def test_fuzzed_odd_input_gets_a_catalogue_answer_never_a_500_or_sql(
    fuzzed: Fuzzed, drawn: tuple[str, str, str, str, bytes], last_event_id: str
) -> None:
    method, path, name, value, body = drawn
    from urllib.parse import quote

    query = f"{name}={quote(value)}".encode() if name else b""
    headers = [
        (b"x-api-key", fuzzed.key.encode()),
        (b"content-type", b"application/json"),
        (b"last-event-id", last_event_id.encode("utf-8")),
    ]
    status, _headers, answer = fuzzed.request(method, path, query, headers, body)
    assert status < 500, answer[:300]
    assert b"SELECT" not in answer and b"INSERT" not in answer and b"[SQL" not in answer
    if status >= 400:
        assert set(json.loads(answer)) <= {"error", "code", "details"}
    event(f"{method} {path} {status}")
