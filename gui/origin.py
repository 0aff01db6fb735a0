"""Refuse requests that change state when they come from another web site.

Gradio's CORS middleware only decides whether a browser may *read* a response; a
cross-origin ``multipart/form-data`` POST is a "simple" request that the browser sends without
asking, so any page the user visits could drop files into Gradio's upload folder (or start a
queued job) on the local app. Gradio 6 has no setting that refuses these (``strict_cors``
only withholds the CORS headers), so this ASGI middleware does: a POST, PUT, PATCH or DELETE
whose ``Origin`` header is present and is not the app's own origin gets 403 before any route
runs. Requests without ``Origin`` (scripts, ``gradio_client``, curl) are not from a web page
and pass, as do the app's own pages.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def same_origin(origin: str, headers: Headers) -> bool:
    """Whether ``origin`` (``scheme://host[:port]``) names the host the request was sent to
    (``Host``, or ``X-Forwarded-Host`` behind a proxy). ``null`` (sandboxed frames, local
    files) is never the app."""
    netloc = urlsplit(origin).netloc.lower()
    if not netloc:
        return False
    hosts = {h.strip().lower() for key in ("host", "x-forwarded-host")
             for h in headers.get(key, "").split(",") if h.strip()}
    return netloc in hosts


class SameOriginWrites:
    """ASGI middleware: 403 for state-changing requests from another origin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not same_origin(origin, headers):
                response = PlainTextResponse(
                    f"cross-origin {scope['method']} refused: this edgebird app only accepts "
                    "requests from its own pages", status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
