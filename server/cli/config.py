"""`capgate config CLIENT`: prints a client's ready-to-paste snippet, filled in with this server's URL."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

import typer

from server.cli.client_configs import CLIENTS, DEFAULT_KEY_ENV, get_client

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def base_url_from(url: str | None) -> str:
    """The server's base URL: --url (a trailing /mcp is dropped) or the configured public base URL."""
    from server.settings import Settings

    if url is None:
        return Settings().resolved_public_base_url
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise typer.BadParameter(
            f"{url!r} is not an http(s) URL such as https://capgate.example.com", param_hint="--url"
        )
    path = parts.path.rstrip("/")
    for endpoint in ("/api/mcp", "/mcp"):
        if path.endswith(endpoint):
            path = path[: -len(endpoint)]
            break
    return f"{parts.scheme}://{parts.netloc}{path}"


def config(
    client: Annotated[str | None, typer.Argument(help="Client name, from --list.", show_default=False)] = None,
    url: Annotated[
        str | None, typer.Option(help="capgate's base URL (default: CAPGATE_PUBLIC_BASE_URL or http://HOST:PORT).")
    ] = None,
    key_env: Annotated[str, typer.Option(help="Environment variable the client reads the key from.")] = DEFAULT_KEY_ENV,
    list_clients: Annotated[bool, typer.Option("--list", help="List the clients and where each snippet goes.")] = False,
) -> None:
    """Print a ready-to-paste MCP client configuration; the key stays in an environment variable or prompt."""
    if list_clients:
        name_width, title_width = max(len(c.name) for c in CLIENTS), max(len(c.title) for c in CLIENTS)
        for known in CLIENTS:
            typer.echo(f"{known.name:<{name_width}}  {known.title:<{title_width}}  {known.where}")
        return
    if client is None:
        raise typer.BadParameter("name a client, or use --list to see them", param_hint="CLIENT")
    try:
        chosen = get_client(client)
    except KeyError as exc:
        raise typer.BadParameter(exc.args[0], param_hint="CLIENT") from None
    if not _ENV_NAME.match(key_env):
        raise typer.BadParameter(f"{key_env!r} is not an environment variable name", param_hint="--key-env")
    typer.echo(chosen.render(base_url=base_url_from(url), key_env=key_env), nl=False)
    typer.echo(f"# {chosen.title}: {chosen.instruction}", err=True)
