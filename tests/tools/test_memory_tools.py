from typing import Any

import httpx
import pytest

from tests.helpers import KeyFactory


async def call(client: httpx.AsyncClient, key: str, tool: str, **arguments: Any) -> httpx.Response:
    return await client.post(f"/api/runtime/tools/{tool}", json={"input": arguments}, headers={"x-api-key": key})


async def result(client: httpx.AsyncClient, key: str, tool: str, **arguments: Any) -> Any:
    response = await call(client, key, tool, **arguments)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["isError"] is False, body
    return body["result"]


async def test_write_search_and_read_back(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    await result(client, key, "memory_write", path="/topics/x.md", content="Quarterly planning: ship the gateway.")
    await result(client, key, "memory_write", path="/topics/y.md", content="Nothing about that here.")
    found = await result(client, key, "memory_search", query="gateway planning")
    assert [hit["path"] for hit in found["results"]] == ["/topics/x.md"]
    assert "**gateway**" in found["results"][0]["snippet"]
    read = await result(client, key, "memory_read", path="/topics/x.md")
    assert read["content"] == "Quarterly planning: ship the gateway."


async def test_search_ranks_the_better_match_first(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    await result(client, key, "memory_write", path="/a.md", content="alpha beta gamma delta")
    await result(client, key, "memory_write", path="/b.md", content="alpha alpha alpha alpha beta")
    found = await result(client, key, "memory_search", query="alpha", limit=5)
    assert [hit["path"] for hit in found["results"]] == ["/b.md", "/a.md"]
    assert found["results"][0]["score"] >= found["results"][1]["score"]


async def test_search_tolerates_query_syntax_characters(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    await result(client, key, "memory_write", path="/a.md", content="plain words")
    found = await result(client, key, "memory_search", query='"plain" AND (NEAR* -words:')
    assert found["results"] == []
    assert (await result(client, key, "memory_search", query="*** ((("))["results"] == []


async def test_ls_lists_files_and_directories(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    for path in ("/MEMORY.md", "/daily/2026-11-23.md", "/topics/a.md", "/topics/deep/b.md"):
        await result(client, key, "memory_write", path=path, content="x")
    root = await result(client, key, "memory_ls", path="/")
    assert [(e["name"], e["type"]) for e in root["entries"]] == [
        ("MEMORY.md", "file"),
        ("daily", "directory"),
        ("topics", "directory"),
    ]
    topics = await result(client, key, "memory_ls", path="/topics/")
    assert [(e["path"], e["type"]) for e in topics["entries"]] == [
        ("/topics/a.md", "file"),
        ("/topics/deep", "directory"),
    ]


async def test_paths_are_normalised(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    written = await result(client, key, "memory_write", path="//topics///n.md/", content="n")
    assert written["path"] == "/topics/n.md"
    assert (await result(client, key, "memory_read", path="/topics/n.md"))["content"] == "n"


@pytest.mark.parametrize(
    "path",
    ["relative.md", "/a/../b.md", "/./a.md", "/a\x00b.md", "/a\nb.md", "/", "/" + "d/" * 20 + "x.md", "/" + "x" * 600],
)
async def test_bad_paths_are_refused_naming_the_field(client: httpx.AsyncClient, keys: KeyFactory, path: str) -> None:
    key = await keys.key(await keys.organization())
    response = await call(client, key, "memory_write", path=path, content="x")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_request"
    assert "path" in body["details"]
    listing = await result(client, key, "memory_ls", path="/")
    assert listing["entries"] == []


async def test_missing_field_is_named(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    response = await call(client, key, "memory_write", path="/a.md")
    assert response.status_code == 400
    assert set(response.json()["details"]) == {"content"}


async def test_reading_a_missing_document_is_a_failed_execution(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    response = await call(client, key, "memory_read", path="/nope.md")
    assert response.status_code == 200
    body = response.json()
    assert body["isError"] is True and body["status"] == "failed"
    assert body["error"] == "No such document: /nope.md"
    assert body["result"] is None


async def test_append_creates_then_extends(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    await result(client, key, "memory_append", path="/daily/2026-11-23.md", content="one\n")
    appended = await result(client, key, "memory_append", path="/daily/2026-11-23.md", content="two\n")
    assert appended["size"] == 8
    assert (await result(client, key, "memory_read", path="/daily/2026-11-23.md"))["content"] == "one\ntwo\n"


async def test_unicode_sizes_are_counted_in_bytes(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    written = await result(client, key, "memory_write", path="/ü.md", content="héllo ✓")
    assert written["size"] == len("héllo ✓".encode())
