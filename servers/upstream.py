"""A real HTTP upstream for the link-preview tests, run as its own process.

python -m servers.upstream PORT
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from starlette.routing import Route

hits: Counter[str] = Counter()

PAGE = """<!doctype html><html><head><title>Fallback title</title>
<meta property="og:title" content="{title}">
<meta property="og:description" content="A page about {title}.">
<meta property="og:image" content="/img/{title}.png">
<meta property="og:site_name" content="Upstream">
</head><body><p>Hello</p></body></html>"""


async def page(request: Request) -> HTMLResponse:
    hits[request.url.path] += 1
    delay_ms = int(request.query_params.get("ms", "0"))
    if delay_ms:
        await asyncio.sleep(delay_ms / 1000)
    return HTMLResponse(PAGE.format(title=request.query_params.get("t", "Dragons")))


async def title_only(_: Request) -> HTMLResponse:
    return HTMLResponse("<html><head><title> Only   a title </title></head></html>")


async def slow(_: Request) -> HTMLResponse:
    await asyncio.sleep(30)
    return HTMLResponse("<title>too late</title>")


async def huge(_: Request) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        yield b"<html><head><title>Huge page</title></head><body>"
        for _ in range(20 * 1024):  # 20 MiB if anyone reads it all
            yield b"x" * 1024

    return StreamingResponse(body(), media_type="text/html")


async def not_html(_: Request) -> JSONResponse:
    return JSONResponse({"title": "json"})


async def error(_: Request) -> HTMLResponse:
    return HTMLResponse("<title>oops</title>", status_code=500)


async def redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(request.query_params["to"], status_code=302)


async def chain(request: Request) -> RedirectResponse | HTMLResponse:
    left = int(request.query_params["n"])
    if left == 0:
        return HTMLResponse(PAGE.format(title="End of chain"))
    return RedirectResponse(f"/chain?n={left - 1}", status_code=302)


async def counts(_: Request) -> JSONResponse:
    return JSONResponse(dict(hits))


app = Starlette(
    routes=[
        Route("/page", page),
        Route("/title-only", title_only),
        Route("/slow", slow),
        Route("/huge", huge),
        Route("/json", not_html),
        Route("/error", error),
        Route("/redirect", redirect),
        Route("/chain", chain),
        Route("/hits", counts),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
