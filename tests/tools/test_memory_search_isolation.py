"""Attack: probing other organizations' memory through search scores.

With one shared full-text index, org B writing (and deleting) documents with a word moved org A's
scores for that word, so a read-only key could test whether a word occurs in other tenants' memory.
Nothing another organization does may change A's answers: paths, order, snippets or scores.
"""

import json

import httpx
from sqlalchemy import delete

from tests.helpers import KeyFactory
from tests.tools.test_memory_tools import result
from tools.memory.models import MemoryDocument

A_DOCUMENTS = {
    "/topics/launch.md": "The launch is on Tuesday; the launch checklist is in the drawer.",
    "/topics/budget.md": "Budget review before the launch, then the offsite.",
    "/daily/2026-11-30.md": "Talked about the offsite and the drawer.",
}
QUERIES = ["launch", "offsite", "drawer launch", "budget", "tuesday"]


async def answers(client: httpx.AsyncClient, key: str) -> list[str]:
    return [json.dumps(await result(client, key, "memory_search", query=q, limit=10)) for q in QUERIES]


async def test_another_orgs_writes_and_deletes_leave_search_answers_byte_identical(
    db_client: tuple[httpx.AsyncClient, KeyFactory],
) -> None:
    client, keys = db_client
    a_key = await keys.key(await keys.organization())
    b_org = await keys.organization()
    b_key = await keys.key(b_org)
    for path, content in A_DOCUMENTS.items():
        await result(client, a_key, "memory_write", path=path, content=content)
    before = await answers(client, a_key)
    assert all(json.loads(answer)["results"] for answer in before)

    for n in range(6):
        await result(client, b_key, "memory_write", path=f"/probe/{n}.md", content="launch offsite drawer " * (n + 1))
    await result(client, b_key, "memory_write", path="/topics/launch.md", content="launch launch budget tuesday")
    assert await answers(client, a_key) == before, "B's writes changed A's search answers"

    for n in range(6):
        await result(client, b_key, "memory_write", path=f"/probe/{n}.md", content="nothing to see")
    assert await answers(client, a_key) == before, "B's rewrites changed A's search answers"

    async with keys.sessions.begin() as session:
        await session.execute(delete(MemoryDocument).where(MemoryDocument.organization_id == b_org.id))  # type: ignore[arg-type]
    assert await answers(client, a_key) == before, "B's deletes changed A's search answers"


async def test_search_scores_are_rounded_relevance(db_client: tuple[httpx.AsyncClient, KeyFactory]) -> None:
    client, keys = db_client
    key = await keys.key(await keys.organization())
    await result(client, key, "memory_write", path="/a.md", content="launch " + "padding " * 200)
    found = await result(client, key, "memory_search", query="launch")
    score = found["results"][0]["score"]
    assert score > 0 and round(score, 3) == score
