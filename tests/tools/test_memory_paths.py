"""Memory paths: one spelling per name, nothing invisible, and a name is a document or a directory."""

import httpx
import pytest

from tests.helpers import KeyFactory
from tests.tools.test_memory_tools import call, result


async def test_paths_are_nfc_normalised(db_client: tuple[httpx.AsyncClient, KeyFactory]) -> None:
    client, keys = db_client
    key = await keys.key(await keys.organization())
    written = await result(client, key, "memory_write", path="/cafe\u0301/menu.md", content="decomposed")
    assert written["path"] == "/caf\u00e9/menu.md"
    await result(client, key, "memory_write", path="/caf\u00e9/menu.md", content="composed")
    assert (await result(client, key, "memory_read", path="/cafe\u0301/menu.md"))["content"] == "composed"
    listing = await result(client, key, "memory_ls", path="/")
    assert [entry["path"] for entry in listing["entries"]] == ["/caf\u00e9"]


@pytest.mark.parametrize(
    "path",
    [
        "/a\u200bb.md",  # zero-width space
        "/\u202egnp.md",  # right-to-left override
        "/x\u2066y\u2069.md",  # left-to-right isolate
        "/\ufeffx.md",  # byte-order mark
        "/a\u00adb.md",  # soft hyphen
        "/a\u200eb.md",  # left-to-right mark
        "/a\u00a0b.md",  # no-break space
    ],
)
async def test_invisible_and_bidi_control_characters_are_refused(
    client: httpx.AsyncClient, keys: KeyFactory, path: str
) -> None:
    key = await keys.key(await keys.organization())
    response = await call(client, key, "memory_write", path=path, content="x")
    assert response.status_code == 400, response.text
    assert "path" in response.json()["details"]
    assert (await result(client, key, "memory_ls", path="/"))["entries"] == []


async def test_a_name_is_either_a_document_or_a_directory(db_client: tuple[httpx.AsyncClient, KeyFactory]) -> None:
    client, keys = db_client
    key = await keys.key(await keys.organization())
    await result(client, key, "memory_write", path="/notes", content="a document")
    under_document = (await call(client, key, "memory_write", path="/notes/today.md", content="x")).json()
    assert (
        under_document["isError"]
        and under_document["error"] == "/notes is a document, so it cannot also be a directory"
    )
    await result(client, key, "memory_append", path="/topics/a.md", content="x")
    over_directory = (await call(client, key, "memory_append", path="/topics", content="x")).json()
    assert (
        over_directory["isError"]
        and over_directory["error"] == "/topics is a directory, so it cannot also be a document"
    )
    listing = await result(client, key, "memory_ls", path="/")
    assert [(entry["name"], entry["type"]) for entry in listing["entries"]] == [
        ("notes", "file"),
        ("topics", "directory"),
    ]
    other = await keys.key(await keys.organization())
    await result(client, other, "memory_write", path="/notes/today.md", content="another organization's directory")
