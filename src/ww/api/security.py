"""Browser-facing protections: CORS from ``WW_API_CORS_ORIGINS`` and security headers.

Every response gets the headers of ``SecurityHeadersMiddleware``, errors included: it is the
outermost middleware, and the 500 answer, which Starlette sends from outside every
middleware, carries them through ``ww.api.errors``.

- ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy:
  no-referrer``: no MIME sniffing, no framing, no URL leaked to another site.
- ``Content-Security-Policy``: ``default-src 'none'`` for JSON, which a browser never runs;
  the ``/docs`` and ``/redoc`` HTML pages get a policy allowing only this origin's scripts
  and styles plus the inline script and styles those pages are built with; the explorer
  under ``/ui`` gets a strict one (this origin's files only, nothing inline or evaluated).
- ``Cache-Control: no-store`` on every answer except the vendored ``/static/docs`` assets,
  so no proxy or browser cache keeps a memory.
- No ``Strict-Transport-Security``: the API speaks plain HTTP behind the TLS-terminating
  proxy the deployment guide requires, and HSTS belongs to that proxy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Scope

from ww.api.docs_ui import STATIC_URL
from ww.api.middleware import Headers, ResponseHeadersMiddleware
from ww.api.routers.ui import UI_URL

__all__ = [
    "CORS_ALLOWED_HEADERS",
    "CORS_ALLOWED_METHODS",
    "CORS_EXPOSED_HEADERS",
    "DOCS_CSP",
    "EXPLORER_CSP",
    "JSON_CSP",
    "JSON_HEADERS",
    "SECURITY_HEADERS",
    "SecurityHeadersMiddleware",
    "install_cors",
]

# The deployment guide's list, exactly.
CORS_ALLOWED_HEADERS: tuple[str, ...] = (
    "Authorization",
    "Content-Type",
    "X-Session-ID",
    "X-Request-ID",
    "X-API-Key",
    "X-Admin-Key",
)
CORS_ALLOWED_METHODS: tuple[str, ...] = ("GET", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS")
# Response headers a browser script may read: the API sends these beyond the safe ones.
CORS_EXPOSED_HEADERS: tuple[str, ...] = (
    "X-Request-ID",
    "Retry-After",
    "Idempotent-Replayed",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)
# Preflight answers are cached by the browser for this long (seconds).
CORS_MAX_AGE = 600

SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
JSON_CSP = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI and ReDoc: scripts and styles from this origin, the pages' own inline script
# and styles, data: images and fonts, blob: workers (ReDoc's search). 'unsafe-eval' because
# the vendored ReDoc bundle compiles schema code with `new Function` (its issues #1007 and
# #764 show a blank page without it); these pages show only this server's OpenAPI document.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "worker-src 'self' blob:; frame-ancestors 'none'"
)
# The explorer (``/ui``): nothing inline and nothing evaluated, only this origin's files and
# API; data: and blob: images for the pictures its charts may draw into. Styles set through
# the DOM (element.style) are not inline styles in CSP's sense and stay allowed.
EXPLORER_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
# What a JSON answer carries: for a response sent from outside the middleware (the 500).
JSON_HEADERS: dict[str, str] = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": JSON_CSP,
    "Cache-Control": "no-store",
}


def install_cors(app: FastAPI, origins: Sequence[str]) -> None:
    """Answer CORS preflights and tag responses for ``origins``; none: no CORS at all."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=list(CORS_ALLOWED_METHODS),
        allow_headers=list(CORS_ALLOWED_HEADERS),
        expose_headers=list(CORS_EXPOSED_HEADERS),
        allow_credentials=False,
        max_age=CORS_MAX_AGE,
    )


class SecurityHeadersMiddleware(ResponseHeadersMiddleware):
    """Add ``SECURITY_HEADERS``, a CSP and ``Cache-Control`` to every HTTP response."""

    def rewriter(self, scope: Scope) -> Callable[[Headers], Headers]:
        path = str(scope.get("path", ""))
        explorer = path == UI_URL or path.startswith(UI_URL + "/")
        return partial(secured, static=path.startswith(STATIC_URL + "/"), explorer=explorer)


def secured(headers: Headers, *, static: bool, explorer: bool = False) -> Headers:
    """``headers`` with the security headers set (replacing any the app set)."""
    ours = {k.lower().encode() for k in SECURITY_HEADERS} | {b"content-security-policy"}
    content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
    out = [(k, v) for k, v in headers if k.lower() not in ours]
    out.extend((k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items())
    if explorer:
        csp = EXPLORER_CSP
    else:
        csp = DOCS_CSP if content_type.startswith(b"text/html") else JSON_CSP
    out.append((b"content-security-policy", csp.encode()))
    if not static and not any(k.lower() == b"cache-control" for k, _ in out):
        out.append((b"cache-control", b"no-store"))
    return out
