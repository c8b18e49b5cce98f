"""Fuzzing the credential headers through the real ASGI app.

The app is driven with hand-built ASGI scopes so the headers can hold raw bytes
(non-ASCII, 64 KiB values, repeats) that an HTTP client would refuse to send.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio.from_thread
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from auth.keys import generate_key, parse_key
from server.app import create_app
from server.state import AppState
from tests.conftest import migrate
from tests.helpers import KeyFactory, make_settings

AUTH_CODES = {"missing_api_key", "invalid_api_key", "revoked_api_key", "expired_api_key", "conflicting_credentials"}

_text = st.one_of(
    st.just(""),
    st.sampled_from([" ", "\t", "  \t "]),
    st.text(max_size=80),
    st.text(alphabet=st.characters(min_codepoint=0x80, max_codepoint=0x10FFFF), max_size=40),
)
_value_bytes = st.one_of(
    _text.map(lambda text: text.encode("utf-8")),
    st.binary(max_size=80),
    st.sampled_from([b"\xff" * 65536, b"A" * 65536, b"cg_live_" + b"x" * 65536]),
)
_scheme = st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Token", "Bearer\t", "", "ApiKey", "Bearer Bearer"])


@st.composite
def credential_headers(draw: st.DrawFn, real_key: str) -> list[tuple[bytes, bytes]]:
    parsed = parse_key(real_key)
    assert parsed is not None
    key_like = st.one_of(
        _value_bytes,
        st.just(real_key.encode()),
        st.just((real_key[:-1] + ("0" if real_key[-1] != "0" else "1")).encode()),  # bad checksum
        st.builds(lambda: generate_key().raw.encode()),  # well formed, unknown id
        st.just(real_key.encode() + b" "),
        st.just(real_key.swapcase().encode()),
    )
    authorization = st.builds(lambda scheme, token: scheme.encode("latin-1") + b" " + token, _scheme, key_like)
    header = st.one_of(
        st.tuples(st.sampled_from([b"authorization", b"Authorization", b"AUTHORIZATION"]), authorization),
        st.tuples(st.sampled_from([b"authorization"]), _value_bytes),
        st.tuples(st.sampled_from([b"x-api-key", b"X-Api-Key", b"X-API-KEY"]), key_like),
        st.tuples(st.just(b"x-api-key"), _value_bytes),
    )
    return draw(st.lists(header, max_size=5))


async def call(app: Starlette, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[str, Any]]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/capabilities",
        "raw_path": b"/capabilities",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"capgate.test"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("capgate.test", 80),
    }
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start = next(message for message in messages if message["type"] == "http.response.start")
    body = b"".join(message.get("body", b"") for message in messages if message["type"] == "http.response.body")
    return start["status"], json.loads(body)


def test_credential_header_fuzz_never_5xx_nor_argon2_for_bad_checksum(tmp_path: Path) -> None:
    app_settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'capgate.db'}")
    with anyio.from_thread.start_blocking_portal() as portal:
        portal.call(migrate, app_settings.resolved_database_url)
        app = create_app(app_settings)

        async def lifespan() -> LifespanManager:  # asgi-lifespan detects its async library when built
            return LifespanManager(app)

        with portal.wrap_async_context_manager(portal.call(lifespan)):
            state: AppState = app.state.capgate
            factory = KeyFactory(sessions=state.sessions, hasher=state.hasher, verifier=state.verifier)
            organization = portal.call(factory.organization)

            async def make_key() -> str:
                return await factory.key(organization, scopes=["runtime"])

            real_key = portal.call(make_key)

            @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
            @given(headers=credential_headers(real_key))
            def check(headers: list[tuple[bytes, bytes]]) -> None:
                runs_before = state.verifier.stats.argon2_runs
                status, body = portal.call(call, app, headers)
                assert status < 500, (status, body)
                if status == 200:
                    assert set(body) >= {"capabilities"}
                else:
                    assert status in (400, 401, 403), (status, body)
                    assert isinstance(body.get("error"), str) and body["error"]
                    assert body.get("code") in AUTH_CODES
                presented = {
                    value.decode("latin-1").strip().partition(" ")[2].strip()
                    if name.lower() == b"authorization"
                    else value.decode("latin-1").strip()
                    for name, value in headers
                }
                if all(parse_key(candidate) is None for candidate in presented):
                    assert state.verifier.stats.argon2_runs == runs_before, headers

            check()
