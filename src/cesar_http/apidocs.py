"""The interactive API docs at ``/docs``, served whole by the server itself.

FastAPI's default page loads Swagger UI from a CDN, so a server without internet access,
which Cesar is made to be, would show a blank page. The Swagger UI files (swagger-ui-dist,
Apache-2.0, see ``static/swagger-ui/LICENSE``) ship inside this package instead, as FastAPI
documents for self-hosting the docs' JavaScript and CSS.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: Where the Swagger UI files are served from.
ASSETS = "/docs/assets"
_FILES = Path(__file__).parent / "static" / "swagger-ui"


def add_docs(app: FastAPI, path: str = "/docs") -> None:
    """Serve Swagger UI at ``path`` for ``app``'s OpenAPI document, with no outside URL."""
    redirect = f"{path}/oauth2-redirect"

    @app.get(path, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
            oauth2_redirect_url=f"{root}{redirect}",
        )

    @app.get(redirect, include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.mount(ASSETS, StaticFiles(directory=_FILES), name="swagger-ui")
