"""Child process of the benchmarks: capgate or a bare Starlette app on uvicorn, same options as `capgate serve`.

    python -m bench.uvicorn_runner capgate --port P --stats FILE
    python -m bench.uvicorn_runner baseline --port P --document FILE

For capgate, SIGUSR1 writes the key verifier's counters (auth.verifier.VerifierStats) to
FILE, and so does the end of the lifespan (SIGTERM): the benchmark reads how many argon2
verifications each flood triggered without a public route for them. (uvicorn re-raises
SIGTERM once it has stopped, so code after uvicorn.run would never run.)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send


def run(app: Any, port: int) -> None:
    """The uvicorn options of `capgate serve` (server/cli/main.py), one worker."""
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=5,
    )


def baseline_app(document: dict[str, Any]) -> Starlette:
    async def capabilities(_request: Request) -> JSONResponse:
        return JSONResponse(document)

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/capabilities", capabilities), Route("/healthz", healthz)])


def serve_capgate(port: int, stats_file: Path) -> None:
    from server.app import create_app
    from server.logging_setup import configure_logging
    from server.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    dumps = 0

    def write_stats(*_args: int | FrameType | None) -> None:
        nonlocal dumps
        dumps += 1
        stats = dataclasses.asdict(app.state.capgate.verifier.stats)
        partial = stats_file.with_suffix(".tmp")
        partial.write_text(json.dumps({"dump": dumps, **stats}))
        partial.replace(stats_file)

    async def with_final_stats(scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                write_stats()
            await send(message)

        await app(scope, receive, sending if scope["type"] == "lifespan" else send)

    signal.signal(signal.SIGUSR1, write_stats)
    run(with_final_stats, port)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["capgate", "baseline"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stats", type=Path)
    parser.add_argument("--document", type=Path)
    args = parser.parse_args()
    if args.kind == "capgate":
        serve_capgate(args.port, args.stats)
    else:
        run(baseline_app(json.loads(args.document.read_text())), args.port)


if __name__ == "__main__":
    main()
