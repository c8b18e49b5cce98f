import re

import httpx
from starlette.applications import Starlette
from starlette.routing import Route


def openapi_path(path: str) -> str:
    return re.sub(r"{(\w+?)_(\w)(\w*)}", lambda m: "{" + m[1] + m[2].upper() + m[3] + "}", path)


async def test_openapi_describes_every_route(app: Starlette, client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    described = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    routes = {
        (method, openapi_path(route.path))
        for route in app.routes
        if isinstance(route, Route) and route.path != "/openapi.json"
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert routes - described == set()


async def test_every_authenticated_operation_documents_its_error_bodies(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for path, item in document["paths"].items():
        for operation in item.values():
            if "security" not in operation:
                continue
            for status in ("401", "403"):
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)
