"""The regulator console: one server-rendered page at /ui (contract section 3).

The page holds no data. It asks for a token, keeps it in the tab's sessionStorage
and sends it with its own requests to the API; loading the page needs no token.
Its CSS and script (``connectors/api/static/``) are inlined into the one response
and pinned by hash in its Content-Security-Policy, so nothing else may run or load.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

_STATIC = files("connectors.api").joinpath("static")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@cache
def page() -> tuple[str, dict[str, str]]:
    """The page and its response headers, built once from the static files."""
    html = _STATIC.joinpath("console.html").read_text(encoding="utf-8")
    style = _STATIC.joinpath("console.css").read_text(encoding="utf-8")
    script = _STATIC.joinpath("console.js").read_text(encoding="utf-8")
    assert "</script" not in script and "</style" not in style
    html = html.replace("/*STYLE*/", style, 1).replace("/*SCRIPT*/", script, 1)
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src {_sha256(script)}",
            f"style-src {_sha256(style)}",
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )
    headers = {
        "Content-Security-Policy": policy,
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }
    return html, headers


def install(app: FastAPI) -> None:
    """``GET /ui``: the console page. No token: the page asks for one."""

    @app.get("/ui", include_in_schema=False)
    async def console() -> HTMLResponse:
        html, headers = page()
        return HTMLResponse(html, headers=headers)
